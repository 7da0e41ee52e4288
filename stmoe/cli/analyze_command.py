"""`stmoe analyze TRACE [--phase decode|prefill] [--json]`: how predictable the routing is."""

from __future__ import annotations

import numpy as np

from stmoe.cli.output import format_table, print_json


def register(sub) -> None:
    p = sub.add_parser("analyze", help="popularity, temporal reuse, cross-layer affinity, ceiling")
    p.add_argument("trace", metavar="TRACE", help="a trace file or the name of a bundled trace")
    p.add_argument("--phase", choices=["decode", "prefill"], help="analyse one phase only")
    p.add_argument("--permutations", type=int, default=99, metavar="N",
                   help="shuffles in the independence test of each layer pair (default 99)")
    p.add_argument("--json", action="store_true", help="print every per-layer figure as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    from stmoe.analysis import analyze
    from stmoe.datasets import load_trace
    from stmoe.errors import ConfigError

    if args.permutations < 0:
        raise ConfigError(f"--permutations: must be >= 0, got {args.permutations}")
    trace = load_trace(args.trace)
    if args.phase:
        trace = trace.select(phase=args.phase)
    a = analyze(trace, permutations=args.permutations)
    if args.json:
        print_json(a)
        return 0

    def spread(values):
        v = np.asarray(values, dtype=float)
        return f"{np.nanmean(v):.3f} (layers {np.nanmin(v):.3f}..{np.nanmax(v):.3f})"

    pop, tem, spa, ceil = a["popularity"], a["temporal"], a["spatial"], a["ceiling"]
    print(f"{a['trace']}: {a['tokens']} tokens{' (' + args.phase + ')' if args.phase else ''}, "
          f"{a['num_layers']} layers, top-{a['top_k']} of {a['num_experts']}")
    rows = [
        {"measure": "entropy (bits)", "value": spread(pop["entropy_bits"]),
         "reference": f"uniform {pop['max_entropy_bits']:.2f}"},
        {"measure": "gini", "value": spread(pop["gini"]), "reference": "0 = even"},
        {"measure": "top-10% experts' share", "value": spread(pop["top10_share"]), "reference": "0.1 = even"},
        {"measure": "reuse of previous token's experts", "value": spread(tem["reuse"]),
         "reference": f"chance {tem['chance']:.3f}"},
        {"measure": "MI layer l -> l+1 (bits)", "value": spread(spa["mi_bits"]),
         "reference": f"shuffled {np.nanmean(spa['baseline_bits']):.3f}"},
        {"measure": "permutation p-value (max over layers)", "value": f"{max(spa['p_value'], default=1):.3f}",
         "reference": f"{spa['permutations']} shuffles"},
        {"measure": "ceiling, top-1 of layer l-1", "value": f"{ceil['spatial_top1']['ceiling']:.3f}",
         "reference": f"budget {ceil['spatial_top1']['budget']}"},
        {"measure": "ceiling, top-1 of token t-1", "value": f"{ceil['temporal_top1']['ceiling']:.3f}",
         "reference": f"budget {ceil['temporal_top1']['budget']}"},
    ]
    print(format_table(rows))
    return 0
