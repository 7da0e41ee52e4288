"""`stmoe report [TRACE ...] [--out DIR]`: the main job."""

from __future__ import annotations

import sys
import time

from stmoe.cli.output import format_table


def register(sub) -> None:
    p = sub.add_parser("report", help="run the whole study and write an HTML report (default: bundled traces)")
    p.add_argument("traces", nargs="*", metavar="TRACE", help="trace files or names (default: all bundled)")
    p.add_argument("--out", default="report", metavar="DIR", help="output directory (default ./report)")
    p.set_defaults(run=run)


def run(args) -> int:
    from stmoe.report import default_traces, write_report

    start = time.perf_counter()

    def progress(msg: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f} s] {msg}", file=sys.stderr, flush=True)

    traces = args.traces or default_traces()
    summary = write_report(traces, args.out, progress=progress)
    rows = []
    for res in summary["traces"]:
        pred = {r["predictor"]: r["recall"] for r in res["prediction"]["rows"]}
        acc = {r["system"]: r for r in res["systems"].get("accelerator", {}).get("rows", [])}
        rows.append({"trace": res["label"], "st-moe recall": pred.get("st-moe"),
                     "prev-token recall": pred.get("previous-token"),
                     "st-moe speedup (accel.)": acc.get("st-moe", {}).get("speedup_vs_on_demand"),
                     "st-moe energy eff. (accel.)": acc.get("st-moe", {}).get("energy_efficiency_vs_on_demand")})
    print(format_table(rows) if rows else "no trace could be studied")
    for f in summary["failed"]:
        print(f"failed: {f['trace']}: {f['error']}")
    print(f"report: {args.out}/report.html ({time.perf_counter() - start:.1f} s)")
    return 1 if not summary["traces"] else 0
