"""Our st-moe gains over each baseline beside the ones ST-MoE reports (rows from
`stmoe.book.reproduction.gains`)."""

from __future__ import annotations

from stmoe.charts import theme
from stmoe.charts.base import rows_data

SOURCES = ("measured", "paper (reported)")


def paper_gap_chart(gain_rows: list[dict], title: str):
    """Grouped bars, one panel per measure (speedup, energy efficiency): for each baseline the
    measured gain next to the paper's, with a rule at 1 (no gain)."""
    import altair as alt

    data = []
    for r in gain_rows:
        label = f"vs {r['baseline']}"
        data.append({"baseline": label, "measure": r["measure"], "source": "measured", "gain": r["measured"]})
        data.append({"baseline": label, "measure": r["measure"], "source": "paper (reported)", "gain": r["paper"]})
    order = list(dict.fromkeys(d["baseline"] for d in data))
    base = alt.Chart(rows_data(data))
    bars = base.mark_bar().encode(
        x=alt.X("gain:Q", title="st-moe gain (x)"),
        y=alt.Y("baseline:N", sort=order, title=None),
        yOffset=alt.YOffset("source:N", sort=list(SOURCES)),
        color=theme.color("source:N", SOURCES),
        tooltip=["baseline:N", "measure:N", "source:N", alt.Tooltip("gain:Q", format=".2f")],
    )
    one = theme.rule(base, x=alt.datum(1.0))
    return (alt.layer(bars, one).properties(width=260, height=40 * len(order))
            .facet(column=alt.Column("measure:N", title=None, sort=["speedup", "energy efficiency"]))
            .properties(title=title, usermeta=theme.SVG_RENDERER))
