"""The tornado chart of `stmoe.sim.sensitivity`: per assumed constant, how far st-moe's speedup
and energy efficiency over on-demand move between the low and the high end of its range."""

from __future__ import annotations

from stmoe.charts import theme
from stmoe.charts.base import rows_data

MEASURES = (("speedup", "st-moe's speedup over on-demand"),
            ("energy_efficiency", "st-moe's energy efficiency over on-demand"))
ENDS = ("at the low end", "at the high end")


def tornado_chart(result, title: str):
    """One panel per measure, one row per constant in the result's order (largest swing first):
    a bar from the baseline (the dashed rule) to the value at each end of the range."""
    import altair as alt

    order = [r["field"] for r in result.rows]
    panels = []
    for key, label in MEASURES:
        base = float(getattr(result, key))
        data = [{"constant": r["field"], "end": end, "baseline": base, "value": float(r[f"{key}_{side}"]),
                 "range": f"{r[side]:.4g} {r['unit']}".strip()}
                for r in result.rows for end, side in zip(ENDS, ("low", "high"))]
        bars = alt.Chart(rows_data(data)).mark_bar(opacity=0.85).encode(
            x=alt.X("baseline:Q", title=label, scale=alt.Scale(zero=False)),
            x2="value:Q",
            y=alt.Y("constant:N", sort=order, title=None),
            yOffset=alt.YOffset("end:N", sort=list(ENDS)),
            color=theme.color("end:N", ENDS, title="constant set"),
            tooltip=["constant:N", "end:N", "range:N", alt.Tooltip("value:Q", format=".3f")])
        rule = theme.rule([{"baseline": base}], x="baseline:Q")
        panels.append(alt.layer(bars, rule).properties(width=300, height=30 * max(len(order), 1)))
    return alt.hconcat(*panels).properties(title=title, usermeta=theme.SVG_RENDERER)
