"""Bar charts that compare predictors (recall) and systems (speedup, energy efficiency)."""

from __future__ import annotations

from stmoe.charts import theme
from stmoe.charts.base import rows_data

MEASURES = ("speedup", "energy efficiency")


def predictor_recall_chart(rows: list[dict], title: str, chance: float | None = None):
    """Recall per predictor (rows from `stmoe.evaluate(...).rows` of one phase), with the
    chance level m/E as a rule when given."""
    import altair as alt

    data = [{"predictor": r["predictor"], "recall": r["recall"]} for r in rows]
    order = [r["predictor"] for r in sorted(data, key=lambda r: r["recall"])]
    bars = alt.Chart(rows_data(data)).mark_bar().encode(
        x=alt.X("recall:Q", scale=alt.Scale(domain=[0, 1]), title="recall at budget m"),
        y=alt.Y("predictor:N", sort=order, title=None),
        color=theme.color("predictor:N", [d["predictor"] for d in data], legend=False),
        tooltip=["predictor:N", alt.Tooltip("recall:Q", format=".3f")],
    )
    layers = [bars]
    if chance is not None:
        layers.append(theme.rule([{"chance": chance}], x="chance:Q"))
    return alt.layer(*layers).properties(title=title, width=420, height=22 * len(data))


def system_speedup_chart(rows: list[dict], title: str):
    """Speedup and energy efficiency over on-demand per system (rows from
    `stmoe.report.study.compare_systems`); systems that change routing are marked."""
    import altair as alt

    data = []
    for r in rows:
        name = r["system"] + (" *" if r["changes_routing"] else "")
        data.append({"system": name, "measure": "speedup", "value": r["speedup_vs_on_demand"]})
        data.append({"system": name, "measure": "energy efficiency", "value": r["energy_efficiency_vs_on_demand"]})
    return alt.Chart(rows_data(data)).mark_bar().encode(
        x=alt.X("value:Q", title="x over on-demand"),
        y=alt.Y("system:N", sort=[r["system"] + (" *" if r["changes_routing"] else "") for r in rows], title=None),
        yOffset="measure:N",
        color=theme.color("measure:N", MEASURES),
        tooltip=["system:N", "measure:N", alt.Tooltip("value:Q", format=".2f")],
    ).properties(title=title, width=420)
