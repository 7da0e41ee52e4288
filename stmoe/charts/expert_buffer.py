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


def split_chart(rows: list[dict]):
    """The split explorer's figure: hit rate, stall share and wasted MB per token for the
    cache-only buffer and st-moe at the chosen split; the key numbers in the title."""
    import altair as alt

    st = rows[-1]
    per_token = {r["system"]: r["wasted_bytes"] / r["tokens"] / 1e6 for r in rows}
    data = [{"system": r["system"], "measure": m, "value": float(v)} for r in rows
            for m, v in (("hit rate", r["hit_rate"]), ("stall share", r["stall_share"]),
                         ("wasted MB per token", per_token[r["system"]]))]
    panels = []
    for m in ("hit rate", "stall share", "wasted MB per token"):
        scale = alt.Scale(domain=[0, 1]) if m != "wasted MB per token" else alt.Scale(zero=True)
        panels.append(alt.Chart(rows_data([d for d in data if d["measure"] == m])).mark_bar().encode(
            x=alt.X("value:Q", title=m, scale=scale),
            y=alt.Y("system:N", title=None, sort=[r["system"] for r in rows]),
            color=theme.color("system:N", [r["system"] for r in rows], legend=False),
            tooltip=["system:N", alt.Tooltip("value:Q", format=".3f")],
        ).properties(width=170, height=60))
    title = (f"capacity {st['capacity']:g} experts, staging {st['share']:.0%}: hit rate {st['hit_rate']:.2f}, "
             f"stall share {st['stall_share']:.2f}, wasted {per_token[st['system']]:.2f} MB/token")
    return alt.hconcat(*panels).properties(title=title, usermeta=theme.SVG_RENDERER)
