"""Every system on one trace and hardware preset, relative to on-demand: the comparison the
`simulate` CLI, the report and the notebooks share."""

from __future__ import annotations

from collections.abc import Callable

from stmoe.bootstrap import describe, with_interval
from stmoe.errors import ConfigError
from stmoe.sim.buffer import experts_held
from stmoe.sim.hardware import model_dims, preset
from stmoe.sim.systems import SYSTEMS, get_system, runnable
from stmoe.sim.timing import simulate
from stmoe.trace import Trace

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


def marked(row: dict) -> str:
    """A system's name, with " *" when it changes the model's routing (its numbers are then not
    for the same model output; tables say so under the "*")."""
    return row["system"] + (" *" if row["changes_routing"] else "")


def readable(row: dict) -> dict:
    """A system's row in the units tables print (JSON keeps SI units); ratios with their 95%
    interval where the row has one."""
    out = {"system": marked(row),
           "µs / token": row["latency_per_token_s"] * 1e6,
           "speedup [95% CI]": with_interval(row, "speedup_vs_on_demand"),
           "mJ / token": row["energy_per_token_j"] * 1e3,
           "energy eff. [95% CI]": with_interval(row, "energy_efficiency_vs_on_demand")}
    if row.get("baseline"):
        out |= {f"speedup vs {row['baseline']}": with_interval(row, "speedup_vs_baseline"),
                f"energy eff. vs {row['baseline']}": with_interval(row, "energy_efficiency_vs_baseline")}
    return out | {"hit rate": row["hit_rate"], "stall share": row["stall_share"],
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
                    records: bool = False, progress: Callable[[str], None] = lambda msg: None, **knobs):
    """(rows, notes): `SimulationResult.row()` of each system (`record()` if `records`), relative
    to on-demand on the same machine and, given `baseline` (``SYSTEM@PRESET``), to that system on
    that machine (same trace and model sizes); each ratio with its paired bootstrap interval
    over the simulated sequences or blocks (a note says which). adap-gating needs gate weights
    and is skipped, with a note, on traces without them. predictions: the predictor's output
    over the trace's decode tokens, computed once by a caller comparing several machines; only
    predictor-driven systems (st-moe) use it."""
    hw = preset(hardware)
    notes: list[str] = []
    if dims is None:
        dims, notes = dims_for(trace)
    if systems and "adap-gating" in systems and trace.weights is None:
        raise ConfigError(f"adap-gating needs gate weights, and trace {trace.label} has none")
    names, skipped = runnable(systems or SYSTEMS, trace)
    notes += skipped + [buffer_note(hw, dims, trace)]
    progress("simulating on-demand")
    base = simulate(trace, hw, "on-demand", dims=dims)
    notes.append(describe(base.per_unit.units))
    other = None
    if baseline is not None:
        b_system, b_hardware = parse_baseline(baseline)
        progress(f"simulating the baseline {baseline}")
        given = {"predictions": predictions} if get_system(b_system).prefetch == "predictor" else {}
        other = simulate(trace, b_hardware, b_system, dims=dims, **given, **knobs)
        notes.append(buffer_note(preset(b_hardware), dims, trace) + " (baseline)")
        notes += [n for n in other.notes if n not in notes]
    results = []
    for i, name in enumerate(names, start=1):
        if name != "on-demand":
            progress(f"simulating {name} ({i} of {len(names)})")
        given = {"predictions": predictions} if get_system(name).prefetch == "predictor" else {}
        r = base if name == "on-demand" else simulate(trace, hw, name, dims=dims, **given, **knobs)
        r.relative_to(base)
        if other is not None:
            r.relative_to_baseline(other)
        notes += [n for n in r.notes if n not in notes]
        results.append(r.record() if records else r.row())
    return results, notes
