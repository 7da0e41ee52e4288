"""Charts of routing correlation (notebook 02): temporal reuse by layer, reuse distance, the
layer-to-layer transition heat map, mutual information against its shuffled baseline, and
the gap between in-sample and held-out scoring."""

from __future__ import annotations

import numpy as np

from stmoe.charts import theme
from stmoe.charts.base import MAX_ROWS, rows_data


def reuse_by_layer_chart(reuse, chance: float, title: str):
    """Bars of reuse[l] (share of R(t, l) already in R(t-1, l)) with chance k / E as a rule."""
    import altair as alt

    data = [{"layer": l, "reuse": float(r)} for l, r in enumerate(reuse)]
    bars = alt.Chart(rows_data(data)).mark_bar(color=theme.MARK_COLOR).encode(
        x=alt.X("layer:O", title="layer"),
        y=alt.Y("reuse:Q", scale=alt.Scale(domain=[0, 1]), title="share reused from the previous token"),
        tooltip=["layer:O", alt.Tooltip("reuse:Q", format=".3f")],
    )
    rule = theme.rule([{"chance": chance}], y="chance:Q")
    return alt.layer(bars, rule).properties(title=title, width=420, height=220)


def reuse_distance_chart(distance_hist, title: str):
    """Share of repeat requests by reuse distance d = 1..D (tokens since the same expert was
    last used at the same layer)."""
    import altair as alt

    hist = np.asarray(distance_hist, dtype=float)
    share = hist / max(hist.sum(), 1.0)
    data = [{"distance": d + 1, "share": float(s)} for d, s in enumerate(share)]
    return alt.Chart(rows_data(data)).mark_bar(color=theme.MARK_COLOR).encode(
        x=alt.X("distance:Q", title="reuse distance (tokens)", bin=False),
        y=alt.Y("share:Q", title="share of repeat requests"),
        tooltip=["distance:Q", alt.Tooltip("share:Q", format=".3f")],
    ).properties(title=title, width=420, height=200)


def heatmap_experts(counts_from, counts_to, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Which experts a heat map shows: all of them when E x E fits in `limit` cells, else the
    most used experts of each layer (in id order), as many as fit."""
    E = len(counts_from)
    n = min(E, int(np.sqrt(limit)))
    if n == E:
        return np.arange(E), np.arange(E)
    return (np.sort(np.argsort(-np.asarray(counts_from), kind="stable")[:n]),
            np.sort(np.argsort(-np.asarray(counts_to), kind="stable")[:n]))


def transition_heatmap(P, title: str, *, rows=None, cols=None, layer: int | None = None):
    """Heat map of P[i, j] = P(j at layer l+1 | i at layer l) for experts `rows` (layer l) and
    `cols` (layer l+1), all by default.

    The data is the flat row-major list of the shown cells and Vega derives each cell's expert
    ids: a list of 1024 numbers is validated about ten times faster than 1024 records, which
    is what lets the explorer redraw within its time budget."""
    import altair as alt

    P = np.asarray(P, dtype=float)
    rows = np.arange(P.shape[0]) if rows is None else np.asarray(rows)
    cols = np.arange(P.shape[1]) if cols is None else np.asarray(cols)
    if len(rows) * len(cols) > MAX_ROWS:
        raise ValueError(f"heat map of {len(rows)} x {len(cols)} cells; choose at most {MAX_ROWS} "
                         "(see heatmap_experts)")
    values = [float(v) for v in P[np.ix_(rows, cols)].ravel()]
    ids = {"from": f"{[int(i) for i in rows]}[floor((datum.cell - 1) / {len(cols)})]",
           "to": f"{[int(j) for j in cols]}[(datum.cell - 1) % {len(cols)}]"}
    src = "layer l" if layer is None else f"layer {layer}"
    dst = "layer l + 1" if layer is None else f"layer {layer + 1}"
    return alt.Chart(alt.Data(values=values)).transform_window(cell="row_number()").transform_calculate(
        **ids, p="datum.data").mark_rect().encode(
        x=alt.X("to:O", title=f"expert at {dst}", axis=alt.Axis(labels=len(cols) <= 32)),
        y=alt.Y("from:O", title=f"expert at {src}", axis=alt.Axis(labels=len(rows) <= 32)),
        color=alt.Color("p:Q", title="P(j | i)", scale=alt.Scale(scheme=theme.HEATMAP_SCHEME)),
        tooltip=["from:O", "to:O", alt.Tooltip("p:Q", format=".3f")],
    ).properties(title=title, width=360, height=360, usermeta=theme.SVG_RENDERER)


def mutual_information_chart(mi_bits, baseline_bits, title: str):
    """Mutual information between consecutive layers' experts, observed and with layer l+1's
    tokens shuffled (what finite samples give with no link at all)."""
    import altair as alt

    data = [{"layer pair": f"{l}->{l + 1}", "pair": l, "kind": kind, "bits": float(v)}
            for l, (m, b) in enumerate(zip(mi_bits, baseline_bits))
            for kind, v in (("observed", m), ("shuffled tokens", b))]
    return alt.Chart(rows_data(data)).mark_line(point=True).encode(
        x=alt.X("pair:Q", title="layer l (pair l -> l + 1)", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("bits:Q", title="mutual information (bits)"),
        color=theme.color("kind:N", ("observed", "shuffled tokens")),
        tooltip=["layer pair:N", "kind:N", alt.Tooltip("bits:Q", format=".3f")],
    ).properties(title=title, width=420, height=220)


def fit_gap_chart(rows: list[dict], title: str):
    """Recall of a table scored on its own profile tokens against held-out tokens.
    rows: dicts with "trace", "scoring" ("in-sample" / "held-out") and "recall"."""
    import altair as alt

    data = [{"trace": r["trace"], "scoring": r["scoring"], "recall": r["recall"]} for r in rows]
    return alt.Chart(rows_data(data)).mark_bar().encode(
        x=alt.X("recall:Q", scale=alt.Scale(domain=[0, 1]), title="recall at budget k"),
        y=alt.Y("trace:N", title=None),
        yOffset="scoring:N",
        color=theme.color("scoring:N", [d["scoring"] for d in data]),
        tooltip=["trace:N", "scoring:N", alt.Tooltip("recall:Q", format=".3f")],
    ).properties(title=title, width=420)
