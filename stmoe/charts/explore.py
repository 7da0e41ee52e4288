"""The chart of a design-space exploration: every point on two objectives, the Pareto front
over them (values within a relative tolerance counting as equal, `stmoe.sim.pareto`) drawn as a
line through its points."""

from __future__ import annotations

from stmoe.charts import theme
from stmoe.charts.base import rows_data
from stmoe.sim.pareto import TOLERANCE, pareto_mask, tolerance_note

AXES = {"latency_per_token_s": ("latency per token (µs)", 1e6),
        "energy_per_token_j": ("energy per token (µJ)", 1e6),
        "buffer_area_mm2": ("buffer area (mm², N5 SRAM)", 1.0)}


def pareto_chart(rows: list[dict], x: str = "buffer_area_mm2", y: str = "latency_per_token_s",
                 title: str | None = None, tolerance: float = TOLERANCE):
    """Each explored point at (x, y), coloured by system; the points on the Pareto front of
    x and y (both minimised; values within the relative `tolerance` are ties) solid and joined,
    the others faded. The tolerance is said in the title's subtitle."""
    import altair as alt

    for axis in (x, y):
        if axis not in AXES:
            raise ValueError(f"pareto_chart: axis {axis!r}; valid: {', '.join(AXES)}")
    (x_title, fx), (y_title, fy) = AXES[x], AXES[y]
    on_front = pareto_mask([[r[x], r[y]] for r in rows], tolerance)
    data = [{"x": float(r[x]) * fx, "y": float(r[y]) * fy, "system": r["system"],
             "front": bool(f), "buffer MiB": r["buffer_bytes"] / 2 ** 20,
             "link GB/s": r["link_bandwidth"] / 1e9, "lookahead": r["lookahead"]}
            for r, f in zip(rows, on_front)]
    base = alt.Chart(rows_data(data))
    colour = theme.color("system:N", [d["system"] for d in data])
    points = base.mark_point(filled=True, size=50).encode(
        x=alt.X("x:Q", title=x_title, scale=alt.Scale(type="log")),
        y=alt.Y("y:Q", title=y_title, scale=alt.Scale(type="log")),
        color=colour,
        opacity=alt.condition("datum.front", alt.value(1.0), alt.value(0.2)),
        tooltip=["system:N", "buffer MiB:Q", "link GB/s:Q", "lookahead:Q",
                 alt.Tooltip("x:Q", title=x_title, format=".3g"), alt.Tooltip("y:Q", title=y_title, format=".3g")])
    front = base.transform_filter("datum.front").mark_line(
        color=theme.RULE_COLOR, strokeDash=theme.RULE_DASH, interpolate="step-after").encode(
        x="x:Q", y="y:Q", order="x:Q")
    return (front + points).properties(
        title=alt.TitleParams(
            title or f"Pareto front: {AXES[y][0].split(' (')[0]} against {AXES[x][0].split(' (')[0]}",
            subtitle=f"front points solid; {tolerance_note(tolerance)}"),
        width=420, height=260)
