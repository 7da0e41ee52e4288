"""`stmoe analyze TRACE [--phase decode|prefill] [--json]`: how predictable the routing is."""

from __future__ import annotations

from stmoe.analysis import analyze, headline
from stmoe.cli.output import Progress, format_table, print_json
from stmoe.errors import ConfigError
from stmoe.readers.catalog import load_trace


def register(sub) -> None:
    p = sub.add_parser("analyze", help="popularity, temporal reuse, cross-layer affinity, ceiling")
    p.add_argument("trace", metavar="TRACE", help="a trace file or the name of a bundled trace")
    p.add_argument("--phase", choices=["decode", "prefill"], help="analyse one phase only")
    p.add_argument("--permutations", type=int, default=999, metavar="N",
                   help="shuffles (within sequences) in the independence test of each layer pair (default 999)")
    p.add_argument("--json", action="store_true", help="print every per-layer figure as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    if args.permutations < 1:
        # with no shuffle the test has no p-value to print (it would read as p = 1)
        raise ConfigError(f"--permutations: must be >= 1, got {args.permutations}")
    trace = load_trace(args.trace)
    if args.phase:
        trace = trace.select(phase=args.phase)
    a = analyze(trace, permutations=args.permutations, progress=Progress())
    if args.json:
        print_json(a)
        return 0

    print(f"{a['trace']}: {a['tokens']} tokens ({args.phase or 'all phases'}), "
          f"{a['num_layers']} layers, top-{a['top_k']} of {a['num_experts']}")
    rows = headline(a)
    print(format_table(rows))
    tvs = a["temporal_vs_static"]
    if tvs is not None:
        rules = [("previous decode step", tvs["previous_token"]), ("hottest k, in-sample", tvs["hottest_in_sample"]),
                 ("hottest k of the prompt", tvs["hottest_prompt_only"]), ("random", tvs["random"]),
                 (f"decode step {len(tvs['lag_overlap'])} back", tvs["lag_overlap"][-1]),
                 ("cross-layer table, in-sample", tvs["cross_layer_in_sample"])]
        print(f"\nshare of a decode step's experts each rule holds at budget {tvs['budget']} "
              f"({tvs['decode_steps']} decode steps; stmoe.analysis.temporal_vs_static)")
        print(format_table([{"rule": r, "share": v} for r, v in rules]))
    return 0
