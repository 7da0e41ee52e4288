"""How fast every notebook explorer answers a control change, driven from Python as a reader's
slider would drive it, on the bundled traces.

    python benchmarks/bench_widgets.py

The explorers and the changes applied to each are listed in `widget_cases.CASES`: tuples of
(label, factory, changes) where `factory()` builds the explorer and `changes` is a list of
{control: value} settings applied one after another. The baseline, measured in the same run, is
drawing the same chart once more without recomputing (`draw(result)`), so the ratio shows how much
of a response is the model and how much is Altair. The target is 250 ms per change.
"""

from __future__ import annotations

import statistics
import time

from widget_cases import CASES

TARGET_S = 0.250


def main() -> int:
    worst = 0.0
    rows = []
    for label, factory, changes in CASES:
        explorer = factory()
        times = []
        for change in changes:
            explorer.set(**change)
            times.append(explorer.last_update_s)
        start = time.perf_counter()
        explorer._draw(explorer.result)
        baseline = time.perf_counter() - start
        median, slowest = statistics.median(times), max(times)
        worst = max(worst, slowest)
        rows.append((label, len(times), median, slowest, baseline))
    print(f"{'explorer':<40} {'changes':>7} {'median ms':>10} {'max ms':>8} {'draw-only ms':>13} {'ratio':>6}")
    for label, n, median, slowest, baseline in rows:
        print(f"{label:<40} {n:>7} {median * 1e3:>10.1f} {slowest * 1e3:>8.1f} {baseline * 1e3:>13.1f} "
              f"{median / baseline:>6.1f}")
    print(f"slowest change: {worst * 1e3:.0f} ms (target {TARGET_S * 1e3:.0f} ms) ->",
          "OK" if worst <= TARGET_S else "TOO SLOW")
    return 0 if worst <= TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
