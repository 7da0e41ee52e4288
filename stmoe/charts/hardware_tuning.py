"""Charts of the hardware-tuning chapter: latency and energy per token per system, design-space
sweeps, and the link-bandwidth knee."""

from __future__ import annotations

from stmoe.charts import theme
from stmoe.charts.base import rows_data

LABELS = {"latency_per_token_s": ("latency per token (µs)", 1e6),
          "energy_per_token_j": ("energy per token (µJ)", 1e6),
          "speedup_vs_on_demand": ("speedup over on-demand", 1.0),
          "link_utilisation": ("link utilisation", 1.0),
          "hit_rate": ("hit rate", 1.0),
          "stall_share": ("stall share", 1.0)}


def sweep_chart(rows: list[dict], field: str, title: str, *, log_x: bool = False, x_title: str | None = None,
                scale_x: float = 1.0):
    """One measure of a `stmoe.sim.sweeps.sweep` against the swept value, a line per system."""
    import altair as alt

    label, factor = LABELS[field]
    data = [{"value": r["value"] * scale_x, "system": r["system"], field: float(r[field]) * factor} for r in rows]
    return alt.Chart(rows_data(data)).mark_line(point=True).encode(
        x=alt.X("value:Q", title=x_title or rows[0]["parameter"],
                scale=alt.Scale(type="log") if log_x else alt.Scale(zero=False)),
        y=alt.Y(f"{field}:Q", title=label),
        color=theme.color("system:N", [d["system"] for d in data]),
        tooltip=["system:N", "value:Q", alt.Tooltip(f"{field}:Q", format=".3f")],
    ).properties(title=title, width=380, height=200)


def knee_chart(gains: list[dict], knee, title: str):
    """Prefetching's gain over the cache-only buffer and the link utilisation against link
    bandwidth (GB/s, log), with the computed knee (peak gain) and saturation point as rules."""
    import altair as alt

    data = [{"bandwidth": g["value"] / 1e9, "system": g["system"], "gain": float(g["gain"]),
             "link utilisation": float(g["link_utilisation"])} for g in gains]
    span = [min(d["bandwidth"] for d in data), max(d["bandwidth"] for d in data)]
    x = alt.X("bandwidth:Q", scale=alt.Scale(type="log", domain=span, nice=False), title="link bandwidth (GB/s)")
    marks = [{"bandwidth": knee.peak_bandwidth / 1e9, "mark": "largest gain"}]
    if knee.saturated_below is not None:
        marks.append({"bandwidth": knee.saturated_below / 1e9, "mark": "link saturated at and below"})
    # one colour scale over systems and markers draws one legend for both
    names = [d["system"] for d in data] + [m["mark"] for m in marks]
    rules = theme.rule(marks, x="bandwidth:Q", color=theme.color("mark:N", names))
    color = theme.color("system:N", names)
    dash = alt.StrokeDash("system:N", legend=None)
    gain = alt.Chart(rows_data(data)).mark_line(point=True).encode(
        x=x, y=alt.Y("gain:Q", title="speedup over the same buffer as a cache"),
        color=color, strokeDash=dash,
        tooltip=["system:N", "bandwidth:Q", alt.Tooltip("gain:Q", format=".3f")])
    util = alt.Chart(rows_data(data)).mark_line(point=True).encode(
        x=x, y=alt.Y("link utilisation:Q", scale=alt.Scale(domain=[0, 1])),
        color=color, strokeDash=dash,
        tooltip=["system:N", "bandwidth:Q", alt.Tooltip("link utilisation:Q", format=".3f")])
    return alt.vconcat(alt.layer(gain, rules).properties(width=420, height=180),
                       alt.layer(util, rules).properties(width=420, height=140)).properties(title=title)


def tuning_chart(rows: list[dict], title: str):
    """Latency and energy per token per system on one machine (rows of a one-point sweep)."""
    import altair as alt

    order = [r["system"] for r in rows]
    panels = []
    for field in ("latency_per_token_s", "energy_per_token_j"):
        label, factor = LABELS[field]
        data = [{"system": r["system"], "value": float(r[field]) * factor} for r in rows]
        panels.append(alt.Chart(rows_data(data)).mark_bar().encode(
            x=alt.X("value:Q", title=label),
            y=alt.Y("system:N", sort=order, title=None),
            color=theme.color("system:N", order, legend=False),
            tooltip=["system:N", alt.Tooltip("value:Q", format=".3f")],
        ).properties(width=220, height=22 * len(rows)))
    return alt.hconcat(*panels).properties(title=title, usermeta=theme.SVG_RENDERER)



def tuning_curve_chart(rows: list[dict], link_bandwidth: float, title: str):
    """Latency and energy per token of each system (log y) against link bandwidth (GB/s, log x;
    rows of a `bandwidth_rows` sweep on one machine), one panel each, with a rule and points at
    `link_bandwidth` (bytes/s). One faceted layer over one data set: an explorer redraws it on
    every move, and Altair's cost grows with the number of sub-charts."""
    import altair as alt

    order = list(dict.fromkeys(r["system"] for r in rows))
    panels = [LABELS[f][0] for f in CURVE_FIELDS]
    data = [{"measure": LABELS[f][0], "bandwidth": r["value"] / 1e9, "system": r["system"],
             "value": float(r[f]) * LABELS[f][1], "here": abs(r["value"] - link_bandwidth) < 1e-6 * link_bandwidth}
            for f in CURVE_FIELDS for r in rows]
    span = [min(d["bandwidth"] for d in data), max(d["bandwidth"] for d in data)]
    x = alt.X("bandwidth:Q", scale=alt.Scale(type="log", domain=span, nice=False), title="link bandwidth (GB/s)")
    y = alt.Y("value:Q", scale=alt.Scale(type="log", nice=False), title=None)
    color = theme.color("system:N", order)
    base = alt.Chart()
    lines = base.mark_line().encode(x=x, y=y, color=color)
    here = base.transform_filter("datum.here")
    rule = here.mark_rule(color=theme.RULE_COLOR, strokeDash=theme.RULE_DASH).encode(x=x)
    points = here.mark_point(filled=True, size=70).encode(
        x=x, y=y, color=color, tooltip=["system:N", "bandwidth:Q", alt.Tooltip("value:Q", format=".3f")])
    return alt.layer(lines, rule, points, data=rows_data(data)).properties(width=300, height=220).facet(
        column=alt.Column("measure:N", sort=panels, title=None)).resolve_scale(y="independent").properties(
        title=title, usermeta=theme.SVG_RENDERER)


CURVE_FIELDS = ("latency_per_token_s", "energy_per_token_j")
