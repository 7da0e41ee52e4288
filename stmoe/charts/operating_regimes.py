"""Charts of the operating-regimes chapter: time per token and the share of experts a step
touches (measured and by chance) against the batch size, with the chosen batch marked; a missing expert fetched or
computed on the CPU against the tokens routed to it."""

from __future__ import annotations

from stmoe.charts import theme
from stmoe.charts.base import rows_data

REGIMES = {"resident_us_per_token": "experts resident", "streamed_us_per_token": "experts streamed"}
ROUTING = {"share_touched": "measured", "uniform_share_touched": "uniform routing (chance)"}
WHERE = {"fetch_us": "fetch to the GPU", "cpu_us": "compute on the CPU"}


def batch_chart(rows: list[dict], batch: int, title: str, nearly_all: float | None = None):
    """Two panels over the batch size B (log scale), from `stmoe.book.operating_regimes.batch_rows`
    of one trace, machine and dtype: time per token (µs, log scale) with experts resident and
    streamed, and the share of a layer's experts a step touches, measured and under independent
    uniform routing (a rule at `nearly_all`); points at `batch`."""
    import altair as alt

    lines = [{"batch": r["batch"], "regime": name, "us_per_token": r[field]}
             for r in rows for field, name in REGIMES.items()]
    x = alt.X("batch:Q", scale=alt.Scale(type="log", base=2), title="tokens per step (B)")
    color = theme.color("regime:N", list(REGIMES.values()), title="")
    y = alt.Y("us_per_token:Q", scale=alt.Scale(type="log"), title="time per token (µs)")
    here = [d for d in lines if d["batch"] == batch]
    latency = alt.layer(
        alt.Chart(rows_data(lines)).mark_line().encode(x=x, y=y, color=color),
        theme.rule([{"batch": batch}], x=x),
        alt.Chart(rows_data(here)).mark_point(filled=True, size=80).encode(
            x=x, y="us_per_token:Q", color=color,
            tooltip=["regime:N", "batch:Q", alt.Tooltip("us_per_token:Q", format=".1f")]),
    ).properties(width=300, height=220)
    shares = [{"batch": r["batch"], "routing": name, "share_touched": r[field]}
              for r in rows for field, name in ROUTING.items()]
    sy = alt.Y("share_touched:Q", scale=alt.Scale(domain=[0, 1]), title="share of a layer's experts per step")
    scolor = theme.color("routing:N", list(ROUTING.values()), title="")
    share_layers = [alt.Chart(rows_data(shares)).mark_line().encode(x=x, y=sy, color=scolor),
                    alt.Chart(rows_data([s for s in shares if s["batch"] == batch])).mark_point(
                        filled=True, size=80).encode(
                        x=x, y=sy, color=scolor,
                        tooltip=["routing:N", "batch:Q", alt.Tooltip("share_touched:Q", format=".3f")])]
    if nearly_all is not None:
        share_layers.insert(1, theme.rule([{"share_touched": nearly_all}], y="share_touched:Q"))
    share = alt.layer(*share_layers).properties(width=240, height=220)
    return alt.hconcat(latency, share).properties(title=title, usermeta=theme.SVG_RENDERER)


def cpu_chart(rows: list[dict], title: str):
    """Time to serve one missing expert (µs, log scale) against the tokens routed to it (log
    scale), fetched to the GPU or computed on the CPU, one panel column per dtype; rows from
    `stmoe.book.operating_regimes.cpu_or_fetch` with a "dtype" field added."""
    import altair as alt

    data = [{"dtype": r["dtype"], "tokens": r["tokens"], "where": name, "us": r[field]}
            for r in rows for field, name in WHERE.items()]
    return alt.Chart(rows_data(data)).mark_line(point=True).encode(
        x=alt.X("tokens:Q", scale=alt.Scale(type="log", base=2), title="tokens routed to the expert"),
        y=alt.Y("us:Q", scale=alt.Scale(type="log"), title="time (µs)"),
        color=theme.color("where:N", list(WHERE.values()), title=""),
        column=alt.Column("dtype:N", sort=list(dict.fromkeys(r["dtype"] for r in rows)), title=None),
        tooltip=["dtype:N", "where:N", "tokens:Q", alt.Tooltip("us:Q", format=".1f")],
    ).properties(width=180, height=180, title=title, usermeta=theme.SVG_RENDERER)
