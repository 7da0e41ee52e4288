"""`stmoe simulate TRACE [--hardware PRESET] [--system NAME ...] [--baseline SYSTEM@PRESET] [--batch B]
[--json]`: latency, energy, hit rate, stalls and link use of each system on a trace (decode
tokens), relative to on-demand (and to a baseline on any machine); `--sweep PARAM=V1,V2,...`
varies one knob instead; `--batch B` decodes B sequences in lockstep. Model sizes: `--model`,
`--hidden/--ffn`, `--dtype` win over what the trace records."""

from __future__ import annotations

from stmoe.bootstrap import describe
from stmoe.cli.output import Progress, format_table, print_json
from stmoe.errors import ConfigError
from stmoe.readers.catalog import load_trace
from stmoe.sim.comparison import compare_systems, dims_for, readable, split_for_comparison
from stmoe.sim.hardware import PRESETS, check_context, preset
from stmoe.sim.models import MODELS
from stmoe.sim.sweeps import sweep
from stmoe.sim.systems import SYSTEMS, get_system, predictions_note, runnable
from stmoe.sim.timing import decode_tokens, lockstep, lockstep_notes


def register(sub) -> None:
    p = sub.add_parser("simulate", help="simulate expert loading, stalls and energy per system")
    p.add_argument("trace", metavar="TRACE", help="a trace file or the name of a bundled trace")
    p.add_argument("--hardware", default="accelerator", metavar="PRESET",
                   help=f"hardware preset: {', '.join(PRESETS)} (default accelerator)")
    p.add_argument("--system", action="append", metavar="NAME",
                   help=f"a system to simulate (repeatable; default all): {', '.join(SYSTEMS)}")
    p.add_argument("--lookahead", type=int, default=1, help="layers ahead a prediction is issued (default 1)")
    p.add_argument("--budget", type=int, default=None, help="experts predicted per layer (default k)")
    p.add_argument("--predictor", default="st-moe", help="predictor behind the st-moe system (default st-moe)")
    p.add_argument("--profile", default=None, metavar="TRACE",
                   help="trace st-moe and hot-set are profiled on (other tokens than the simulated "
                        "ones); default: the first half of TRACE's sequences, the other half simulated")
    p.add_argument("--baseline", metavar="SYSTEM@PRESET",
                   help="also compare every system with this system on this preset, e.g. on-demand@gpu-pcie "
                        "(default: none)")
    p.add_argument("--model", help=f"the model's sizes from the registry ({', '.join(MODELS)}; or a Hugging "
                                   "Face id), whatever the trace records (default: the trace's model)")
    # kept as typed: `run` converts it (`check_context`), so an error quotes "-5", not "-5.0"
    p.add_argument("--context", metavar="TOKENS", help="tokens of KV cache each decoded token reads "
                                                      "(default: the trace's mean)")
    p.add_argument("--hidden", type=int, help="model hidden size, for models stmoe does not know "
                                              "(default: the model's)")
    p.add_argument("--ffn", type=int, help="expert FFN size, for models stmoe does not know (default: the model's)")
    p.add_argument("--dtype", help="weight data type, e.g. bfloat16, int8 (default: the trace's, else bfloat16)")
    p.add_argument("--batch", type=int, default=1, metavar="B",
                   help="sequences decoded in lockstep: each step loads the union of their experts once "
                        "(default 1)")
    p.add_argument("--sweep", metavar="PARAM=V1,V2,...",
                   help="vary one knob (link_bandwidth, buffer_bytes, lookahead, prefetch_share, ...) "
                        "instead of comparing systems (default: none)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    trace = load_trace(args.trace)
    hw = preset(args.hardware)
    context = None if args.context is None else check_context(args.context, as_given=args.context.strip())
    dims, notes = dims_for(trace, model=args.model, hidden=args.hidden, ffn=args.ffn, dtype=args.dtype,
                           context=context)
    profile, trace, split_notes = split_for_comparison(trace, load_trace(args.profile) if args.profile is not None else None)
    notes += split_notes
    knobs = dict(lookahead=args.lookahead, budget=args.budget, profile=profile,
                 predictor=args.predictor, batch=args.batch)
    names = args.system or list(SYSTEMS)
    if args.sweep is not None:
        if args.baseline is not None:
            raise ConfigError("--baseline compares systems; it does not combine with --sweep")
        if not args.system:
            names, skipped = runnable(names, trace, profile)
            notes += skipped
        param, eq, vals = args.sweep.partition("=")
        if not eq:
            raise ConfigError(f"--sweep wants PARAM=V1,V2,..., got {args.sweep!r}")
        try:
            values = [float(v) for v in vals.split(",")]
        except ValueError:
            raise ConfigError(f"--sweep values must be numbers, got {vals!r}") from None
        param = param.strip()
        rows = sweep(trace, param, values, systems=names, hardware=hw, dims=dims, progress=Progress(), **knobs)
        if any(get_system(n).tunable_predictor for n in names):
            notes.append(predictions_note(args.predictor, args.budget or trace.top_k, args.lookahead, profile))
        simulated = decode_tokens(trace, "decode")[0]
        steps, _, unit, units = lockstep(simulated, args.batch)
        notes.append(describe(units, count=int(unit.max(initial=-1)) + 1))   # units are 0..U-1
        if args.batch > 1:
            notes += lockstep_notes(simulated, args.batch, steps)
        if args.json:
            print_json({"trace": trace.name, "hardware": hw.name, "dims": dims.as_dict(), "sweep": param,
                        "rows": rows, "notes": notes})
            return 0
        print(f"{trace.label} on {hw.name}, {param} swept; {_tokens(rows[0])}; model sizes from {dims.source}")
        print(format_table([{param: f"{r['value']:g}", **readable(r)} for r in rows]))
        _footer(rows, notes)
        return 0
    results, more = compare_systems(trace, hw, args.system, dims=dims, baseline=args.baseline,
                                    records=args.json, progress=Progress(), **knobs)
    notes += more
    if args.json:
        print_json({"trace": trace.name, "hardware": hw.name, "dims": dims.as_dict(),
                    "baseline": args.baseline, "results": results, "notes": notes})
        return 0
    print(f"{trace.label} on {hw.name} ({hw.notes}); {_tokens(results[0])}; model sizes from {dims.source}")
    print(format_table([readable(r) for r in results]))
    _footer(results, notes)
    return 0


def _tokens(row: dict) -> str:
    """The tokens simulated and the batch, as the header says them."""
    return (f"{row['tokens']} decode tokens, batch {row['batch']}"
            + (f" ({row['steps']} steps)" if row["batch"] > 1 else ""))


def _footer(rows: list[dict], notes: list[str]) -> None:
    if any(r["changes_routing"] for r in rows):
        print("* changes the model's routing (replayed here on the trace's routing)")
    for n in dict.fromkeys(notes):
        print(f"note: {n}")
