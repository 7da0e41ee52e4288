"""`stmoe sensitivity TRACE [--hardware PRESET] [--json]`: each constant the preset assumes,
varied alone over its cited range, and how far st-moe's speedup and energy efficiency over
on-demand move (largest swing first)."""

from __future__ import annotations

from dataclasses import asdict

from stmoe.cli.output import format_table, print_json
from stmoe.predictors import predict
from stmoe.readers.catalog import load_trace
from stmoe.sim.comparison import dims_for, split_for_comparison
from stmoe.sim.hardware import PRESETS, preset
from stmoe.sim.sensitivity import sensitivity
from stmoe.sim.systems import predictions_note


def register(sub) -> None:
    p = sub.add_parser("sensitivity", help="how much the presets' assumed constants move st-moe's gains")
    p.add_argument("trace", metavar="TRACE", help="a trace file or the name of a bundled trace")
    p.add_argument("--hardware", default="accelerator", metavar="PRESET",
                   help=f"hardware preset: {', '.join(PRESETS)} (default accelerator)")
    p.add_argument("--model", help="the model's sizes from the registry (or a Hugging Face id), whatever "
                                   "the trace records")
    p.add_argument("--dtype", help="weight data type, e.g. bfloat16, int8")
    p.add_argument("--json", action="store_true", help="print every row, with sources, as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    hw = preset(args.hardware)
    trace = load_trace(args.trace)
    dims, notes = dims_for(trace, model=args.model, dtype=args.dtype)
    # profiled and simulated as `simulate` and the report do: first half profiles, second simulated
    profile, simulated, split_notes = split_for_comparison(trace)
    predictions = predict(simulated.select(phase="decode"), "st-moe", profile=profile)
    result = sensitivity(simulated, hw, dims=dims, predictions=predictions)
    result.notes[:0] = notes + split_notes
    result.notes.append(predictions_note("st-moe", trace.top_k, 1, profile))
    if args.json:
        print_json({"trace": trace.name, "model_dims": dims.source, **asdict(result)})
        return 0
    print(f"{trace.label} on {hw.name}: st-moe's speedup {result.speedup:.3f}x and energy efficiency "
          f"{result.energy_efficiency:.3f}x over on-demand; each assumed constant varied alone over its "
          f"range (sources: --json)")
    print(format_table([{"constant": r["field"], "unit": r["unit"], "preset": f"{r['value']:.4g}",
                         "low": f"{r['low']:.4g}", "high": f"{r['high']:.4g}",
                         "speedup low": r["speedup_low"], "speedup high": r["speedup_high"],
                         "swing": r["speedup_swing"],
                         "energy eff. low": r["energy_efficiency_low"],
                         "energy eff. high": r["energy_efficiency_high"],
                         "energy swing": r["energy_efficiency_swing"]} for r in result.rows]))
    for n in dict.fromkeys(result.notes):
        print(f"note: {n}")
    return 0
