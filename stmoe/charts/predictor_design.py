"""Charts of predictor recall (notebook 03): against budget, against a knob, and the bars the
recall explorer redraws."""

from __future__ import annotations

from stmoe.charts import theme
from stmoe.charts.base import rows_data


def recall_curves_chart(rows: list[dict], x: str, title: str, x_title: str | None = None):
    """Lines of recall against `x` (e.g. "budget", "history_length"), one per `series`.
    rows: dicts with keys x, "recall", "series"."""
    import altair as alt

    data = [{x: r[x], "recall": r["recall"], "series": r["series"]} for r in rows]
    return alt.Chart(rows_data(data)).mark_line(point=True).encode(
        x=alt.X(f"{x}:Q", title=x_title or x.replace("_", " ")),
        y=alt.Y("recall:Q", scale=alt.Scale(domain=[0, 1]), title="recall"),
        color=theme.color("series:N", [d["series"] for d in data]),
        tooltip=["series:N", f"{x}:Q", alt.Tooltip("recall:Q", format=".3f")],
    ).properties(title=title, width=420, height=260)


def recall_bars_chart(rows: list[dict], title: str, chance: float | None = None):
    """Recall per predictor as bars (rows: dicts with "predictor", "recall"), in the given
    order, with chance m / E as a dashed rule when given."""
    import altair as alt

    data = [{"predictor": r["predictor"], "recall": r["recall"]} for r in rows]
    bars = alt.Chart(rows_data(data)).mark_bar().encode(
        x=alt.X("recall:Q", scale=alt.Scale(domain=[0, 1]), title="recall at budget m"),
        y=alt.Y("predictor:N", sort=[r["predictor"] for r in data], title=None),
        color=theme.color("predictor:N", [d["predictor"] for d in data], legend=False),
        tooltip=["predictor:N", alt.Tooltip("recall:Q", format=".3f")],
    )
    layers = [bars]
    if chance is not None:
        layers.append(theme.rule([{"chance": chance}], x="chance:Q"))
    return alt.layer(*layers).properties(title=title, width=420, height=24 * len(data),
                                         usermeta=theme.SVG_RENDERER)
