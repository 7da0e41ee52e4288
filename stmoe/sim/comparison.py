"""Every system on one trace and hardware preset, relative to on-demand: the comparison the
`simulate` CLI, the report and the notebooks share."""

from __future__ import annotations

from collections.abc import Callable

from stmoe.errors import ConfigError
from stmoe.predictors.base import check_compatible, check_disjoint
from stmoe.sim.buffer import experts_held
from stmoe.sim.hardware import KNOWN_MODELS, model_dims, preset
from stmoe.sim.systems import SYSTEMS, get_system, missing_input, runnable
from stmoe.sim.timing import simulate
from stmoe.splits import split
from stmoe.trace import Trace

# Expert geometry used when a trace's own model sizes are unknown (synthetic traces, or routing
# from a model stmoe has no config for): Qwen3-30B-A3B's (hidden 2048, expert FFN 768, bf16),
# from its public config.json. The routing stays the trace's; only the bytes per expert change.
REFERENCE_MODEL = "Qwen3-30B-A3B"


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
            f"model sizes of {trace.label} unknown: {reference_note(trace, given.get('dtype', 'bfloat16'))}"]


def reference_note(trace: Trace, dtype: str = "bfloat16") -> str:
    """What a result computed with `reference_dims` says about its sizes."""
    return f"routing of {trace.label} replayed with {REFERENCE_MODEL}'s expert sizes ({dtype})"


def buffer_note(hardware, dims, trace: Trace) -> str:
    """How much of the model the machine's buffer holds: the first thing that decides what
    prefetching can buy."""
    held, total = experts_held(hardware.buffer_bytes, dims.expert_bytes), trace.num_layers * trace.num_experts
    return (f"the {hardware.name} buffer holds {min(held, total)} of the model's {total} experts "
            f"({min(held / total, 1):.1%})")


def reference_dims(trace: Trace, **given):
    """The trace's routing with the reference model's sizes: what a small model's routing pattern
    would cost if each expert were as large as a production model's."""
    return model_dims(trace, **(dict(KNOWN_MODELS[REFERENCE_MODEL], dtype="bfloat16") | given))


def split_for_comparison(trace: Trace, profile: Trace | None = None) -> tuple[Trace | None, Trace, list[str]]:
    """(profile, simulated tokens, notes) of a comparison: `profile` and the whole of `trace`
    when a profile is given, else `stmoe.splits.split`'s halves of `trace` (the predictor's
    tables and hot-set's pinned experts are fitted on the first half of its sequences, every
    system simulated on the other), with a note saying so. A given profile must be of the same
    model and hold other tokens (refused otherwise)."""
    if profile is not None:
        check_compatible(profile, trace)
        check_disjoint(profile, trace)
        return profile, trace, []
    parts = split(trace)
    unit = "sequences" if len(trace.sequence_ids()) >= 2 else "tokens (one sequence)"
    note = (f"profile: the first half of {trace.label}'s {unit} ({parts.profile.num_tokens} tokens) fits "
            "st-moe's tables and hot-set's pinned experts; every system is simulated on the other "
            f"{parts.scored.num_tokens} tokens")
    return parts.profile, parts.scored, [note]


def marked(row: dict) -> str:
    """A system's name, with " *" when it changes the model's routing (its numbers are then not
    for the same model output; tables say so under the "*")."""
    return row["system"] + (" *" if row["changes_routing"] else "")


def readable(row: dict) -> dict:
    """A system's row in the units tables print (JSON keeps SI units)."""
    return {"system": marked(row),
            "µs / token": row["latency_per_token_s"] * 1e6, "speedup": row["speedup_vs_on_demand"],
            "mJ / token": row["energy_per_token_j"] * 1e3, "energy eff.": row["energy_efficiency_vs_on_demand"],
            "hit rate": row["hit_rate"], "stall share": row["stall_share"], "link util.": row["link_utilisation"],
            "wasted MB": row["wasted_bytes"] / 1e6}


def compare_systems(trace: Trace, hardware, systems=None, *, dims=None, predictions=None,
                    progress: Callable[[str], None] = lambda msg: None, **knobs):
    """(rows, notes): `SimulationResult.row()` of each system, relative to on-demand. Of the
    default set (all SYSTEMS), a system that cannot run (`runnable`: adaptive gating without
    gate weights, the stale-gate systems without the trace's stale gate, hot-set without a
    profile) is skipped with a note; one asked for by name is refused.
    predictions: the predictor's output over the trace's decode tokens, computed once by a
    caller comparing several machines; only the systems of the `predictor` knob (st-moe) use it."""
    hw = preset(hardware)
    notes: list[str] = []
    if dims is None:
        dims, notes = dims_for(trace)
    for name in systems or ():
        missing = missing_input(name, trace, knobs.get("profile"))
        if missing:
            raise ConfigError(missing)
    names, skipped = runnable(systems or SYSTEMS, trace, knobs.get("profile"))
    notes += skipped + [buffer_note(hw, dims, trace)]
    progress("simulating on-demand")
    base = simulate(trace, hw, "on-demand", dims=dims)
    results = []
    for i, name in enumerate(names, start=1):
        if name != "on-demand":
            progress(f"simulating {name} ({i} of {len(names)})")
        given = {"predictions": predictions} if get_system(name).tunable_predictor else {}
        r = base if name == "on-demand" else simulate(trace, hw, name, dims=dims, **given, **knobs)
        r.relative_to(base)
        notes += [n for n in r.notes if n not in notes]
        results.append(r.row())
    return results, notes
