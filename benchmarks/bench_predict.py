"""How long `stmoe.evaluate` takes to score st-moe on a synthetic 100,000-token x 48-layer x
top-8 trace (E = 128, split protocol: two folds of sequences, tables profiled on one half and
updated online over the other), against the previous-token baseline scored the same way in the
same process. Target: at most 10 s on one core. Prints wall time and CPU time (the process's
own, which is what "on one core" means when other jobs share the machine); run it pinned to
one core (`taskset -c 0`) so the wall time is the single-core figure too.

    python benchmarks/bench_predict.py
"""

from __future__ import annotations

import time

from stmoe import evaluate, synthetic_trace
from stmoe.predictors import make


def timed(fn):
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return (time.perf_counter() - start, time.process_time() - cpu), out


def main():
    made, trace = timed(lambda: synthetic_trace(100_000, 48, 128, 8, num_sequences=100, prompt_tokens=16, seed=0))
    print(f"trace: {trace.num_tokens} tokens x {trace.num_layers} layers x top-{trace.top_k} of "
          f"{trace.num_experts} experts (synthetic, generated in {made[0]:.1f} s)")
    tiny = synthetic_trace(64, 48, 128, 8, num_sequences=2, seed=1)
    evaluate(tiny, ["st-moe", "previous-token"])  # load the compiled kernel outside the timing
    base, rb = timed(lambda: evaluate(trace, ["previous-token"], phases="decode"))
    st, rs = timed(lambda: evaluate(trace, [make("st-moe")], phases="decode"))
    for name, (wall, cpu), res in (("previous-token", base, rb), ("st-moe", st, rs)):
        print(f"{name:<15} wall {wall:6.2f} s  cpu {cpu:6.2f} s  (decode recall {res.rows[0]['recall']:.3f})")
    print(f"st-moe / previous-token: {st[0] / base[0]:.2f}x wall, {st[1] / base[1]:.2f}x cpu; "
          f"target st-moe <= 10 s: {'met' if min(st) <= 10 else 'NOT met'} (cpu {st[1]:.2f} s)")


if __name__ == "__main__":
    main()
