"""How a layer's requests spread over its experts, and the popularity statistics per layer."""

from __future__ import annotations

import numpy as np

from stmoe.charts import theme
from stmoe.charts.base import rows_data


def expert_share_rows(counts: np.ndarray, by_id: bool = False) -> list[dict]:
    """One layer's experts, most requested first (or in expert-id order when `by_id`): {rank,
    expert, share} (share of the layer's requests; all zero when the layer has none)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    order = np.arange(counts.size) if by_id else np.argsort(-counts, kind="stable")
    return [{"rank": i + 1, "expert": int(e), "share": float(counts[e] / total) if total else 0.0}
            for i, e in enumerate(order)]


def expert_share_chart(counts: np.ndarray, title: str, by_id: bool = False):
    """Bars of each expert's share of one layer's requests, sorted by share (or by expert id, so
    two traces or phases can be compared expert by expert), with the uniform share 1/E as a
    dashed rule."""
    import altair as alt

    rows = expert_share_rows(counts, by_id)
    x = (alt.X("expert:O", title="expert id") if by_id else
         alt.X("rank:O", title="experts, most requested first", axis=alt.Axis(labels=False, ticks=False)))
    bars = alt.Chart(rows_data(rows)).mark_bar(color=theme.MARK_COLOR).encode(
        x=x,
        y=alt.Y("share:Q", title="share of the layer's requests"),
        tooltip=["expert:N", alt.Tooltip("share:Q", format=".3f")])
    uniform = theme.rule([{"share": 1.0 / len(rows)}], y="share:Q")
    return alt.layer(bars, uniform).properties(
        title=title, width=460, height=220, usermeta=theme.SVG_RENDERER)


def layer_stat_chart(rows: list[dict], stat: str, title: str, baselines: dict | None = None):
    """One popularity statistic per layer, a line per group (rows: {group, layer, <stat>}, e.g.
    trace and phase), with each group's chance level as a dashed rule when `baselines` maps
    group -> value."""
    import altair as alt

    data = [{"group": r["group"], "layer": r["layer"], stat: r[stat]} for r in rows]
    color = theme.color("group:N", [d["group"] for d in data] + list(baselines or ()))
    lines = alt.Chart(rows_data(data)).mark_line(point=True).encode(
        x=alt.X("layer:Q", title="MoE layer"), y=alt.Y(f"{stat}:Q", title=stat.replace("_", " ")),
        color=color, tooltip=["group:N", "layer:Q", alt.Tooltip(f"{stat}:Q", format=".3f")])
    layers = [lines]
    if baselines:
        base = [{"group": g, stat: v} for g, v in baselines.items()]
        layers.append(theme.rule(base, y=f"{stat}:Q", color=color))
    return alt.layer(*layers).properties(title=title, width=460, height=220)


def training_curve_rows(training: dict) -> list[dict]:
    """{step, loss, curve} rows from a bundled trace's `meta["training"]`: the training loss
    (averaged per evaluation interval) and the held-out loss of each domain."""
    rows = [{"step": r["step"], "loss": r["loss"], "curve": "training"}
            for r in training.get("train_curve", [])]
    for r in training.get("heldout_curve", []):
        rows += [{"step": r["step"], "loss": v, "curve": f"held-out {k}"}
                 for k, v in r.items() if k != "step"]
    return rows


def training_curve_chart(training: dict, title: str = "Bundled model: language-model loss by step"):
    """Training and held-out loss (nats per token) against the training step."""
    import altair as alt

    rows = training_curve_rows(training)
    if not rows:
        raise ValueError("training: no loss curve in this trace's meta (not a bundled trace?)")
    return alt.Chart(rows_data(rows)).mark_line(point=True).encode(
        x=alt.X("step:Q", title="training step"),
        y=alt.Y("loss:Q", title="loss (nats / token)", scale=alt.Scale(zero=False)),
        color=theme.color("curve:N", [r["curve"] for r in rows]),
        tooltip=["curve:N", "step:Q", alt.Tooltip("loss:Q", format=".3f")],
    ).properties(title=title, width=460, height=240, usermeta=theme.SVG_RENDERER)
