"""How long `stmoe.evaluate` takes to score st-moe on a synthetic 100,000-token x 48-layer x
top-8 trace (E = 128, split protocol: two folds of sequences, tables profiled on one half and
updated online over the other), against the previous-token baseline scored the same way in the
same process. Target: at most 10 s on one core.

    python benchmarks/bench_predict.py
"""

from __future__ import annotations

import time

from stmoe import evaluate, synthetic_trace
from stmoe.predictors import make


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main():
    made, trace = timed(lambda: synthetic_trace(100_000, 48, 128, 8, num_sequences=100, prompt_tokens=16, seed=0))
    print(f"trace: {trace.num_tokens} tokens x {trace.num_layers} layers x top-{trace.top_k} of "
          f"{trace.num_experts} experts (synthetic, generated in {made:.1f} s)")
    tiny = synthetic_trace(64, 48, 128, 8, num_sequences=2, seed=1)
    evaluate(tiny, ["st-moe", "previous-token"])  # load the compiled kernel outside the timing
    base, rb = timed(lambda: evaluate(trace, ["previous-token"], phases="decode"))
    st, rs = timed(lambda: evaluate(trace, [make("st-moe")], phases="decode"))
    print(f"previous-token: {base:.2f} s  (decode recall {rb.rows[0]['recall']:.3f})")
    print(f"st-moe:         {st:.2f} s  (decode recall {rs.rows[0]['recall']:.3f})")
    print(f"st-moe / previous-token time: {st / base:.2f}x; target st-moe <= 10 s: "
          f"{'met' if st <= 10 else 'NOT met'}")


if __name__ == "__main__":
    main()
