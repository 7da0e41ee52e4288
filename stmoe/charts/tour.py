"""The tour's one figure: latency per decode token of each system against link bandwidth, at one
buffer size, with the reader's chosen bandwidth marked."""

from __future__ import annotations

from stmoe.charts import theme
from stmoe.charts.base import rows_data

SYSTEM_ORDER = ("on-demand", "lru-cache", "hot-set", "speculative-gate", "st-moe", "oracle", "all-resident")


def latency_rows(grid: list[dict], buffer_share: float) -> list[dict]:
    """The rows of `stmoe.book.tour.latency_grid` at one buffer size, in chart units."""
    return [{"bandwidth_gbs": r["value"] / 1e9, "system": r["system"],
             "latency_ms": r["latency_per_token_s"] * 1e3, "speedup": r["speedup_vs_on_demand"],
             "hit_rate": r["hit_rate"]}
            for r in grid if r["buffer_share"] == buffer_share]


def latency_chart(grid: list[dict], buffer_share: float, bandwidth: float, title: str):
    """Lines of latency (ms per token, log scale) over link bandwidth (GB/s, log scale), one per
    system, a rule and points at `bandwidth` (bytes/s)."""
    import altair as alt

    rows = latency_rows(grid, buffer_share)
    order = [s for s in SYSTEM_ORDER if any(r["system"] == s for r in rows)] + \
        sorted({r["system"] for r in rows} - set(SYSTEM_ORDER))
    x = alt.X("bandwidth_gbs:Q", scale=alt.Scale(type="log"), title="link bandwidth (GB/s)")
    color = theme.color("system:N", order)
    base = alt.Chart(rows_data(rows))
    lines = base.mark_line().encode(
        x=x, y=alt.Y("latency_ms:Q", scale=alt.Scale(type="log"), title="latency per decode token (ms)"),
        color=color)
    here = [r for r in rows if abs(r["bandwidth_gbs"] - bandwidth / 1e9) < 1e-9]
    points = alt.Chart(rows_data(here)).mark_point(filled=True, size=70).encode(
        x=x, y="latency_ms:Q", color=color,
        tooltip=["system:N", alt.Tooltip("latency_ms:Q", format=".3f"),
                 alt.Tooltip("speedup:Q", format=".2f"), alt.Tooltip("hit_rate:Q", format=".2f")])
    rule = theme.rule([{"bandwidth_gbs": bandwidth / 1e9}], x=x)
    return alt.layer(lines, rule, points).properties(
        title=title, width=460, height=280, usermeta=theme.SVG_RENDERER)
