"""The whole study on one trace: what it holds, how predictable it is, and what each system
gains on each hardware preset. Plain data out (JSON-serialisable), for the report and the CLI."""

from __future__ import annotations

from typing import Callable

from stmoe.trace import DECODE, Trace

# Expert geometry used when a trace's own model sizes are unknown (synthetic traces, or routing
# from a model stmoe has no config for): Qwen3-30B-A3B's (hidden 2048, expert FFN 768, bf16),
# from its public config.json. The routing stays the trace's; only the bytes per expert change.
REFERENCE_MODEL = "Qwen3-30B-A3B"

PREDICTORS = ("popularity", "previous-token", "history", "cct", "st-moe", "random", "oracle")
PRESETS = ("accelerator", "gpu-pcie", "edge-flash")
SYSTEM_FIELDS = ("system", "changes_routing", "latency_per_token_s", "speedup_vs_on_demand",
                 "energy_per_token_j", "energy_efficiency_vs_on_demand", "hit_rate", "stall_share",
                 "link_utilisation", "wasted_bytes")


def dims_for(trace: Trace):
    """The trace's own model sizes, or the reference model's with a note saying so."""
    from stmoe.errors import ConfigError
    from stmoe.hardware import KNOWN_MODELS, model_dims

    try:
        return model_dims(trace), []
    except ConfigError:
        ref = KNOWN_MODELS[REFERENCE_MODEL]
        dims = model_dims(trace, hidden=ref["hidden"], ffn=ref["ffn"], heads=ref["heads"],
                          kv_heads=ref["kv_heads"], head_dim=ref["head_dim"], dtype="bfloat16")
        return dims, [f"model sizes of {trace.label} unknown: its routing is replayed with "
                      f"{REFERENCE_MODEL}'s expert sizes (bf16)"]


def compare_systems(trace: Trace, hardware: str, systems=None, **knobs) -> tuple[list[dict], list[str]]:
    """Each system on one preset, relative to on-demand. adap-gating needs gate weights and is
    skipped, with a note, on traces without them."""
    from stmoe.hardware import model_dims, preset
    from stmoe.systems import SYSTEMS
    from stmoe.timing import simulate

    hw = preset(hardware)
    dims, notes = knobs.pop("dims", None), []
    if dims is None:
        dims, notes = dims_for(trace)
    names = list(systems or SYSTEMS)
    if "adap-gating" in names and trace.weights is None:
        names.remove("adap-gating")
        notes.append("adap-gating skipped: the trace has no gate weights")
    base = simulate(trace, hw, "on-demand", dims=dims)
    rows = []
    for name in names:
        r = base if name == "on-demand" else simulate(trace, hw, name, dims=dims, **knobs)
        r.relative_to(base)
        notes += [n for n in r.notes if n not in notes]
        rows.append({f: getattr(r, f) for f in SYSTEM_FIELDS})
    return rows, notes


def study(trace: Trace, *, presets=PRESETS, predictors=PREDICTORS,
          progress: Callable[[str], None] = lambda msg: None) -> dict:
    from stmoe.evaluation import evaluate

    out: dict = {"summary": trace.summary(), "label": trace.label, "meta": trace.meta}
    progress(f"{trace.label}: scoring {len(predictors)} predictors")
    phases = ("decode",) if (trace.phase == DECODE).any() else ("prefill",)
    result = evaluate(trace, predictors, protocol="split", phases=phases)
    out["prediction"] = {"protocol": result.info, "rows": result.rows, "per_layer": result.per_layer}
    if (trace.phase == DECODE).any():
        out["systems"] = {}
        for name in presets:
            progress(f"{trace.label}: simulating systems on {name}")
            rows, notes = compare_systems(trace, name)
            out["systems"][name] = {"rows": rows, "notes": notes}
    else:
        out["systems"] = {}
        out.setdefault("notes", []).append("no decode tokens: systems are simulated on decode only")
    return out
