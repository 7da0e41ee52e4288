"""Every system on one trace and hardware preset, relative to on-demand: the comparison the
`simulate` CLI, the report and the notebooks share."""

from __future__ import annotations

from stmoe.errors import ConfigError
from stmoe.sim.hardware import KNOWN_MODELS, model_dims, preset
from stmoe.sim.systems import SYSTEMS, get_system
from stmoe.sim.timing import simulate
from stmoe.trace import Trace

# Expert geometry used when a trace's own model sizes are unknown (synthetic traces, or routing
# from a model stmoe has no config for): Qwen3-30B-A3B's (hidden 2048, expert FFN 768, bf16),
# from its public config.json. The routing stays the trace's; only the bytes per expert change.
REFERENCE_MODEL = "Qwen3-30B-A3B"

SYSTEM_FIELDS = ("system", "changes_routing", "latency_per_token_s", "speedup_vs_on_demand",
                 "energy_per_token_j", "energy_efficiency_vs_on_demand", "hit_rate", "stall_share",
                 "link_utilisation", "wasted_bytes")


def dims_for(trace: Trace, **given):
    """(ModelDims, notes): sizes from `given` (hidden=, ffn=, dtype=, ...), else the trace's own
    model, else the reference model's, with a note saying so."""
    given = {k: v for k, v in given.items() if v is not None}
    try:
        return model_dims(trace, **given), []
    except ConfigError:
        if "hidden" in given or "ffn" in given:
            raise
        return reference_dims(trace, **given), [
            f"model sizes of {trace.label} unknown: its routing is replayed with {REFERENCE_MODEL}'s "
            f"expert sizes ({given.get('dtype', 'bfloat16')})"]


def reference_dims(trace: Trace, **given):
    """The trace's routing with the reference model's sizes: what a small model's routing pattern
    would cost if each expert were as large as a production model's."""
    return model_dims(trace, **(dict(KNOWN_MODELS[REFERENCE_MODEL], dtype="bfloat16") | given))


def compare_systems(trace: Trace, hardware, systems=None, *, dims=None, predictions=None, **knobs):
    """(results, notes): a `SimulationResult` per system, each made relative to on-demand.
    adap-gating needs gate weights and is skipped, with a note, on traces without them.
    predictions: the predictor's output over the trace's decode tokens, computed once by a
    caller comparing several machines; only predictor-driven systems (st-moe) use it."""
    hw = preset(hardware)
    notes: list[str] = []
    if dims is None:
        dims, notes = dims_for(trace)
    names = list(systems or SYSTEMS)
    if "adap-gating" in names and trace.weights is None:
        if systems:
            raise ConfigError("adap-gating needs gate weights, and this trace has none")
        names.remove("adap-gating")
        notes.append("adap-gating skipped: the trace has no gate weights")
    held = int(hw.buffer_bytes // float(dims.expert_bytes.max()))  # as the buffer counts its slots
    total = trace.num_layers * trace.num_experts
    notes.append(f"the {hw.name} buffer holds {min(held, total)} of the model's {total} experts "
                 f"({min(held / total, 1):.1%})")
    base = simulate(trace, hw, "on-demand", dims=dims)
    results = []
    for name in names:
        given = {"predictions": predictions} if get_system(name).prefetch == "predictor" else {}
        r = base if name == "on-demand" else simulate(trace, hw, name, dims=dims, **given, **knobs)
        r.relative_to(base)
        notes += [n for n in r.notes if n not in notes]
        results.append(r)
    return results, notes


def result_rows(results) -> list[dict]:
    return [{f: getattr(r, f) for f in SYSTEM_FIELDS} for r in results]
