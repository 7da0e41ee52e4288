"""Charts of the expert-buffer chapter: replacement policies against capacity, and what
prediction-driven prefetching does to hits, stalls and wasted bytes."""

from __future__ import annotations

from stmoe.charts import theme
from stmoe.charts.base import rows_data

OUTCOMES = ("ready when needed", "in flight when needed", "fetched on demand")


def replacement_chart(rows: list[dict], title: str):
    """Hit rate against capacity (experts) per policy (rows from
    `stmoe.book.expert_buffer.replacement_curves`)."""
    import altair as alt

    data = [{"policy": r["policy"], "capacity": r["capacity"], "hit_rate": r["hit_rate"]} for r in rows]
    return alt.Chart(rows_data(data)).mark_line(point=True).encode(
        x=alt.X("capacity:Q", title="buffer capacity (experts, shared by all layers)"),
        y=alt.Y("hit_rate:Q", scale=alt.Scale(domain=[0, 1]), title="hit rate (demand only)"),
        color=theme.color("policy:N", [d["policy"] for d in data], title="policy"),
        strokeDash=alt.StrokeDash("policy:N", legend=None),
        tooltip=["policy:N", "capacity:Q", alt.Tooltip("hit_rate:Q", format=".3f")],
    ).properties(title=title, width=420, height=240)


def outcome_rows(rows: list[dict]) -> list[dict]:
    """Each system's requests split into the three outcomes (rows from `split_outcomes`)."""
    out = []
    for r in rows:
        for name, value in zip(OUTCOMES, (r["hit_rate"], r["late_prefetch_rate"], r["miss_rate"])):
            out.append({"system": r["system"], "outcome": name, "share": float(value)})
    return out


def outcome_chart(rows: list[dict], title: str):
    """Stacked bars: the share of expert requests ready, in flight or fetched on demand."""
    import altair as alt

    return alt.Chart(rows_data(outcome_rows(rows))).mark_bar().encode(
        x=alt.X("share:Q", stack="zero", scale=alt.Scale(domain=[0, 1]), title="share of expert requests"),
        y=alt.Y("system:N", title=None, sort=[r["system"] for r in rows]),
        color=theme.color("outcome:N", OUTCOMES),
        order=alt.Order("order:Q"),
        tooltip=["system:N", "outcome:N", alt.Tooltip("share:Q", format=".3f")],
    ).transform_calculate(order=f"indexof({list(OUTCOMES)!r}, datum.outcome)").properties(
        title=title, width=420)


def share_chart(rows: list[dict], title: str):
    """st-moe's hit rate, stall share and in-flight rate against the staging share (rows from
    `share_sweep`)."""
    import altair as alt

    names = {"hit_rate": "hit rate", "stall_share": "stall share", "late_prefetch_rate": "in flight when needed"}
    data = [{"share": r["share"], "measure": label, "value": float(r[f])} for r in rows for f, label in names.items()]
    return alt.Chart(rows_data(data)).mark_line(point=True).encode(
        x=alt.X("share:Q", title="prefetch staging share of the buffer"),
        y=alt.Y("value:Q", scale=alt.Scale(domain=[0, 1]), title=None),
        color=theme.color("measure:N", names.values()),
        tooltip=["measure:N", "share:Q", alt.Tooltip("value:Q", format=".3f")],
    ).properties(title=title, width=420, height=220)


def split_rows(grid: list[dict], capacity: int) -> list[dict]:
    """The rows of `stmoe.book.expert_buffer.split_grid` at one capacity, in chart units, the
    cache baselines repeated at each of st-moe's shares so that they draw as flat lines."""
    here = [r for r in grid if r["capacity"] == capacity]
    shares = [r["share"] for r in here if r["series"] == "st-moe"]
    out = []
    for r in here:
        for share in ([r["share"]] if r["share"] is not None else shares):
            out.append({"series": r["series"], "stages": r["share"] is not None, "share": share, "latency_us": r["latency_per_token_s"] * 1e6,
                        "hit_rate": r["hit_rate"], "late_prefetch_rate": r["late_prefetch_rate"]})
    return out


def split_chart(grid: list[dict], capacity: int, share: float, title: str):
    """The split explorer's figure at one capacity: latency per token against the staging share,
    st-moe's as a curve and the cache-only buffer's and the hot set's (they stage nothing) as
    flat dashed lines, with a rule and markers at `share`."""
    import altair as alt

    rows = split_rows(grid, capacity)
    series = list(dict.fromkeys(r["series"] for r in rows))
    color = theme.color("series:N", series, title=None)
    # solid for the curve, dashed for the baselines that stage nothing
    dash = alt.StrokeDash("stages:N", legend=None, scale=alt.Scale(domain=[True, False], range=[[1, 0], [6, 3]]))
    x = alt.X("share:Q", title="staging share of the buffer", axis=alt.Axis(format="%"))
    lines = alt.Chart(rows_data(rows)).mark_line().encode(
        x=x, y=alt.Y("latency_us:Q", title="latency per decode token (µs)", scale=alt.Scale(zero=False)),
        color=color, strokeDash=dash)
    here = [r for r in rows if abs(r["share"] - share) < 1e-9]
    points = alt.Chart(rows_data(here)).mark_point(filled=True, size=80).encode(
        x=x, y="latency_us:Q", color=color,
        tooltip=["series:N", alt.Tooltip("latency_us:Q", format=".1f"), alt.Tooltip("hit_rate:Q", format=".3f"),
                 alt.Tooltip("late_prefetch_rate:Q", format=".3f")])
    return alt.layer(lines, theme.rule([{"share": share}], x=x), points).properties(
        title=title, width=460, height=260, usermeta=theme.SVG_RENDERER)
