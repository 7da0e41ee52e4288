"""`stmoe predict TRACE [--predictor NAME ...] [--budget M] [--lookahead D]
[--protocol split|causal] [--profile TRACE] [--json]`: score predictors on a trace."""

from __future__ import annotations

from stmoe.bootstrap import with_interval
from stmoe.cli.output import Progress, format_table, print_json
from stmoe.evaluation import evaluate
from stmoe.predictors import PREDICTORS
from stmoe.readers.catalog import load_trace


def register(sub) -> None:
    p = sub.add_parser("predict", help="score expert predictors on a trace (recall, precision, exact)")
    p.add_argument("trace", metavar="TRACE", help="a trace file or the name of a bundled trace")
    p.add_argument("--predictor", action="append", metavar="NAME",
                   help=f"repeatable; default: all that apply ({', '.join(PREDICTORS)})")
    p.add_argument("--budget", type=int, metavar="M", help="experts predicted per cell (default: k)")
    p.add_argument("--lookahead", type=int, default=1, metavar="D",
                   help="issue predictions D layers ahead (default 1)")
    p.add_argument("--protocol", choices=["split", "causal"], default="split",
                   help="split: profile on other tokens; causal: learn online from the past only")
    p.add_argument("--profile", metavar="TRACE",
                   help="profile on this trace instead (split protocol; e.g. another domain)")
    p.add_argument("--json", action="store_true", help="print {info, results, per_layer} as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    trace = load_trace(args.trace)
    names = args.predictor or [n for n in PREDICTORS if n != "stale-gate" or trace.stale_gate is not None]
    result = evaluate(trace, names, budget=args.budget, protocol=args.protocol, lookahead=args.lookahead,
                      profile=load_trace(args.profile) if args.profile is not None else None,
                      progress=Progress())
    if args.json:
        print_json(result.to_dict())
        return 0
    info = result.info
    print(f"{info['trace']}: protocol {info['protocol']}"
          f"{', profile ' + info['profile'] if info['profile'] else ''}, budget {info['budget']} "
          f"(k = {info['top_k']} of {info['num_experts']}), lookahead {info['lookahead']}")
    print(format_table([{**r, "recall [95% CI]": with_interval(r, "recall")} for r in result.rows],
                       ["predictor", "phase", "budget", "recall [95% CI]", "precision", "exact", "cells"]))
    for phase, how in info["intervals"].items():
        print(f"{phase}: {how}")
    return 0
