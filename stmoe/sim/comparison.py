"""Every system on one trace and hardware preset, relative to on-demand: the comparison the
`simulate` CLI, the report and the notebooks share."""

from __future__ import annotations

from collections.abc import Callable

from stmoe.bootstrap import with_interval
from stmoe.errors import ConfigError
from stmoe.predictors.base import check_compatible, check_disjoint
from stmoe.sim.buffer import experts_held
from stmoe.sim.hardware import model_dims, preset
from stmoe.sim.systems import PURE_CACHES, SYSTEMS, get_system, missing_input, runnable
from stmoe.sim.timing import UnitTotals, simulate
from stmoe.splits import split
from stmoe.trace import DECODE, Trace

# The production model whose expert sizes a small or synthetic trace's routing is replayed with
# when a caller asks for it by name (`reference_dims`): Qwen3-30B-A3B, from its public config.json.
REFERENCE_MODEL = "qwen3-30b-a3b"


def dims_for(trace: Trace, **given):
    """(ModelDims, notes): `stmoe.sim.hardware.model_dims` with the given sizes (model=,
    hidden=, ffn=, dtype=, context=, ...; None ones dropped) and the notes its sizes carry. A
    trace whose sizes are unknown is a ConfigError naming the flags to give, never a stand-in."""
    dims = model_dims(trace, **{k: v for k, v in given.items() if v is not None})
    return dims, list(dims.notes)


def reference_note(trace: Trace, dtype: str = "bfloat16") -> str:
    """What a result computed with `reference_dims` says about its sizes."""
    return f"routing of {trace.label} replayed with {REFERENCE_MODEL}'s sizes ({dtype})"


def buffer_note(hardware, dims, trace: Trace) -> str:
    """How much of the model the machine's buffer holds: the first thing that decides what
    prefetching can buy."""
    held, total = experts_held(hardware.buffer_bytes, dims.expert_bytes), trace.num_layers * trace.num_experts
    return (f"the {hardware.name} buffer holds {min(held, total)} of the model's {total} experts "
            f"({min(held / total, 1):.1%})")


def reference_dims(trace: Trace, **given):
    """The trace's routing with the reference model's sizes: what a small model's routing pattern
    would cost if the model were as large as a production one (said by `reference_note`)."""
    return model_dims(trace, **({"model": REFERENCE_MODEL, "dtype": "bfloat16"} | given))


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
    decode = int((parts.scored.phase == DECODE).sum())
    note = (f"profile: the first half of {trace.label}'s {unit} ({parts.profile.num_tokens} tokens) fits "
            "st-moe's tables and hot-set's pinned experts; every system is simulated on the other half's "
            f"{decode} decode tokens (its {parts.scored.num_tokens - decode} prefill tokens are not simulated)")
    return parts.profile, parts.scored, [note]


def gain_over(rows: list[dict], baseline: str, system: str = "st-moe") -> dict | None:
    """`system` against `baseline` in the same comparison: {baseline, speedup, energy_efficiency,
    their _ci_low and _ci_high, intervals}, ratios of per-token latency and energy, each with its
    paired bootstrap interval over the rows' `per_unit` totals (rows of `compare_systems`;
    intervals says how they were drawn, and that they are unreliable on fewer than
    `stmoe.bootstrap.MIN_RELIABLE_UNITS` units); None when either row is missing."""
    by = {r["system"]: r for r in rows}
    if system not in by or baseline not in by:
        return None
    base, ours = by[baseline], by[system]
    out = {"baseline": baseline,
           "speedup": base["latency_per_token_s"] / ours["latency_per_token_s"],
           "energy_efficiency": base["energy_per_token_j"] / ours["energy_per_token_j"]}
    units = UnitTotals.from_dict(base["per_unit"])
    return (out | UnitTotals.from_dict(ours["per_unit"]).gain_intervals(units)
            | {"intervals": units.describe()})


def over_best(rows: list[dict], baselines=PURE_CACHES, system: str = "st-moe") -> dict | None:
    """`gain_over` the fastest of `baselines` in the same comparison (by default the pure
    caches, `PURE_CACHES`: what the same buffer does with no prefetching; `OTHER_PREFETCHERS`
    for the other prefetcher); None when `system` or every baseline is missing."""
    candidates = [r for r in rows if r["system"] in baselines]
    if not candidates:
        return None
    return gain_over(rows, min(candidates, key=lambda r: r["latency_per_token_s"])["system"], system)


def marked(row: dict) -> str:
    """A system's name, with " *" when it changes the model's routing (its numbers are then not
    for the same model output; tables say so under the "*")."""
    return row["system"] + (" *" if row["changes_routing"] else "")


def readable(row: dict) -> dict:
    """A system's row in the units tables print (JSON keeps SI units); ratios with their 95%
    interval where the row has one; "late" is the share of requests whose prefetch was still on
    the link (neither a hit nor a miss: `SimulationResult` says how requests are counted)."""
    out = {"system": marked(row),
           "µs / token": row["latency_per_token_s"] * 1e6,
           "speedup [95% CI]": with_interval(row, "speedup_vs_on_demand"),
           "mJ / token": row["energy_per_token_j"] * 1e3,
           "energy eff. [95% CI]": with_interval(row, "energy_efficiency_vs_on_demand")}
    if row.get("baseline"):
        out |= {f"speedup vs {row['baseline']}": with_interval(row, "speedup_vs_baseline"),
                f"energy eff. vs {row['baseline']}": with_interval(row, "energy_efficiency_vs_baseline")}
    return out | {"hit rate": row["hit_rate"], "late": row["late_prefetch_rate"], "stall share": row["stall_share"],
                  "link util.": row["link_utilisation"], "wasted MB": row["wasted_bytes"] / 1e6}


def parse_baseline(text: str) -> tuple[str, str]:
    """``SYSTEM@PRESET`` (e.g. ``on-demand@gpu-pcie``) as (system, preset), both checked."""
    system, at, hardware = str(text).partition("@")
    if not at or not system or not hardware:
        raise ConfigError(f"--baseline wants SYSTEM@PRESET (e.g. on-demand@gpu-pcie), got {text!r}")
    get_system(system)
    preset(hardware)
    return system, hardware


def compare_systems(trace: Trace, hardware, systems=None, *, dims=None, predictions=None, baseline=None,
                    batch: int = 1, records: bool = False, progress: Callable[[str], None] = lambda msg: None,
                    **knobs):
    """(rows, notes): `SimulationResult.row()` of each system (`record()` if `records`) with its
    `per_unit` totals (`UnitTotals.as_dict()`: what a paired interval between two rows, such as
    `over_best`'s, is drawn from), relative to on-demand on the same machine and, given
    `baseline` (``SYSTEM@PRESET``), to that system on that machine (same trace and model
    sizes); each ratio with its paired bootstrap interval over the simulated sequences or blocks
    (a note says which). Of the default set (all SYSTEMS), a system that cannot run (`runnable`:
    adaptive gating without gate weights, the stale-gate systems without the trace's stale gate,
    hot-set without a profile) is skipped with a note; one asked for by name is refused. predictions: the predictor's output over the trace's
    decode tokens, computed once by a caller comparing several machines; only the systems of the
    `predictor` knob (st-moe) use it. batch: sequences decoded in lockstep, for every system and
    the baselines alike (`stmoe.sim.timing.simulate`)."""
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
    base = simulate(trace, hw, "on-demand", dims=dims, batch=batch)
    notes.append(base.per_unit.describe())
    other = None
    if baseline is not None:
        b_system, b_hardware = parse_baseline(baseline)
        progress(f"simulating the baseline {baseline}")
        given = {"predictions": predictions} if get_system(b_system).tunable_predictor else {}
        other = simulate(trace, b_hardware, b_system, dims=dims, batch=batch, **given, **knobs)
        notes.append(buffer_note(preset(b_hardware), dims, trace) + " (baseline)")
        notes += [n for n in other.notes if n not in notes]
    results = []
    for i, name in enumerate(names, start=1):
        if name != "on-demand":
            progress(f"simulating {name} ({i} of {len(names)})")
        given = {"predictions": predictions} if get_system(name).tunable_predictor else {}
        r = base if name == "on-demand" else simulate(trace, hw, name, dims=dims, batch=batch, **given, **knobs)
        r.relative_to(base)
        if other is not None:
            r.relative_to_baseline(other)
        notes += [n for n in r.notes if n not in notes]
        results.append((r.record() if records else r.row()) | {"per_unit": r.per_unit.as_dict()})
    return results, notes
