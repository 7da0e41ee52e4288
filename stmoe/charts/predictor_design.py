"""Charts of predictor recall (notebook 03) against budget or a knob; the recall explorer's
bars are `stmoe.charts.comparison.recall_bars_chart`."""

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
