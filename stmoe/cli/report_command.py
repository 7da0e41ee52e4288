"""`stmoe report [TRACE ...] [--out DIR]`: the main job. Exit status: 0 when every trace was
studied, 1 when some failed (the report lists them, with their error) or the charts could not be
rendered (the report is written without them), 2 when no trace could be studied, on a bad
argument or an output that cannot be written."""

from __future__ import annotations

import sys
import time

from stmoe.bootstrap import with_interval
from stmoe.cli.output import format_table
from stmoe.errors import ConfigError
from stmoe.report import default_traces, write_report


def register(sub) -> None:
    p = sub.add_parser("report", help="run the whole study and write an HTML report (default: bundled traces)")
    p.add_argument("traces", nargs="*", metavar="TRACE", help="trace files or names (default: all bundled)")
    p.add_argument("--out", default="report", metavar="DIR", help="output directory (default ./report)")
    p.set_defaults(run=run)


def run(args) -> int:
    start = time.perf_counter()

    def progress(msg: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f} s] {msg}", file=sys.stderr, flush=True)

    if not args.out.strip():
        raise ConfigError(f"--out: an empty directory name ({args.out!r})")
    traces = args.traces or default_traces()
    summary = write_report(traces, args.out, progress=progress)
    rows = []
    for res in summary["traces"]:
        pred = {r["predictor"]: r["recall"] for r in res["prediction"]["rows"]}
        row = {"trace": res["label"], "st-moe recall": pred.get("st-moe"),
               "stale-gate recall": pred.get("stale-gate"), "prev-token recall": pred.get("previous-token")}
        for key, block in res["systems"].items():
            if key.startswith("accelerator"):
                st = {r["system"]: r for r in block["rows"]}.get("st-moe", {})
                label = "own sizes" if key == "accelerator" else "Qwen3-sized"
                row[f"speedup ({label})"] = with_interval(st, "speedup_vs_on_demand") if st else None
                row[f"energy eff. ({label})"] = with_interval(st, "energy_efficiency_vs_on_demand") if st else None
                for field, what in (("over_best_cache", "best cache"), ("over_best_prefetcher", "prefetcher")):
                    gain = block.get(field)
                    if gain is not None:
                        row[f"vs {what} ({label})"] = (f"{gain['baseline']}: {with_interval(gain, 'speedup')} / "
                                                       f"{with_interval(gain, 'energy_efficiency')}")
        rows.append(row)
    if not rows:
        # nothing to read in the page: one line, as for any other bad input
        print("stmoe: no trace could be studied: " + "; ".join(f"{f['trace']}: {f['error']}" for f in summary["failed"]),
              file=sys.stderr)
        return 2
    print("st-moe on the accelerator preset: speedup and energy efficiency over on-demand; speedup / "
          "energy efficiency over the fastest pure cache on the same buffer (lru-cache or hot-set, no "
          "prefetching: what prediction adds over caching) and over the other prefetcher "
          "(speculative-gate), each column naming its baseline; the gains with 95% paired bootstrap "
          "intervals; recall (point estimates) at m = k on held-out tokens")
    print(format_table(rows))
    for f in summary["failed"]:
        print(f"failed: {f['trace']}: {f['error']}")
    print(f"report: {args.out}/report.html ({time.perf_counter() - start:.1f} s)")
    if summary["charts_not_rendered"]:
        print(f"stmoe: the report has no charts (their Vega-Lite specs are in {args.out}/figures): "
              f"{summary['charts_not_rendered']}", file=sys.stderr)
    return 1 if summary["failed"] or summary["charts_not_rendered"] else 0
