"""Bar charts that compare predictors (recall) and systems (speedup, energy efficiency)."""

from __future__ import annotations

from stmoe.charts import theme
from stmoe.charts.base import rows_data
from stmoe.sim.comparison import marked

MEASURES = ("speedup", "energy efficiency")


def recall_bars_chart(rows: list[dict], title: str, chance: float | None = None, *,
                      sort_by_recall: bool = False):
    """Recall per predictor as bars (rows: dicts with "predictor", "recall", such as
    `stmoe.evaluate(...).rows` of one phase), top to bottom in the given order or, with
    `sort_by_recall`, from the lowest recall to the highest; chance m / E as a rule when given."""
    import altair as alt

    data = [{"predictor": r["predictor"], "recall": r["recall"]} for r in rows]
    names = [d["predictor"] for d in data]
    order = [d["predictor"] for d in sorted(data, key=lambda d: d["recall"])] if sort_by_recall else names
    bars = alt.Chart(rows_data(data)).mark_bar().encode(
        x=alt.X("recall:Q", scale=alt.Scale(domain=[0, 1]), title="recall at budget m"),
        y=alt.Y("predictor:N", sort=order, title=None),
        color=theme.color("predictor:N", names, legend=False),
        tooltip=["predictor:N", alt.Tooltip("recall:Q", format=".3f")],
    )
    layers = [bars]
    if chance is not None:
        layers.append(theme.rule([{"chance": chance}], x="chance:Q"))
    return alt.layer(*layers).properties(title=title, width=420, height=24 * len(data),
                                         usermeta=theme.SVG_RENDERER)


def system_speedup_chart(rows: list[dict], title: str):
    """Speedup and energy efficiency over on-demand per system (rows from
    `stmoe.sim.comparison.compare_systems`); systems that change routing are marked."""
    import altair as alt

    data = []
    for r in rows:
        name = marked(r)
        data.append({"system": name, "measure": "speedup", "value": r["speedup_vs_on_demand"]})
        data.append({"system": name, "measure": "energy efficiency", "value": r["energy_efficiency_vs_on_demand"]})
    return alt.Chart(rows_data(data)).mark_bar().encode(
        x=alt.X("value:Q", title="x over on-demand"),
        y=alt.Y("system:N", sort=[marked(r) for r in rows], title=None),
        yOffset="measure:N",
        color=theme.color("measure:N", MEASURES),
        tooltip=["system:N", "measure:N", alt.Tooltip("value:Q", format=".2f")],
    ).properties(title=title, width=420)
