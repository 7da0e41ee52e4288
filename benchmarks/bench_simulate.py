"""Speed of the hardware model, each figure against a baseline measured in the same run.

1. The whole simulation (predictor, buffer, timing) of the st-moe system on a synthetic
   Qwen3-30B-A3B-shaped trace (48 layers, 128 experts, top-8): expert requests per second,
   against the target of 3.5 million per second on one core (issue 11), by wall-clock time and
   by this process's CPU time (the one-core figure when other jobs share the machine). The
   predictor is profiled (tables built, weights tuned) on other tokens first, as a deployment
   would do offline; what is timed is predicting the served stream, then the buffer and timing
   model.
2. The LRU buffer alone against libCacheSim's LRU (C, its own trace reader) on the same request
   stream and cache size: our time / libCacheSim's time, against the target of at most 2.

    python benchmarks/bench_simulate.py [--tokens N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from timing_util import best_of, best_times

import stmoe
from stmoe.sim.buffer import NEVER, next_request, replay, request_stream
from stmoe.sim.hardware import model_dims
from stmoe.sim.timing import simulate

TARGET = 3.5e6  # expert requests per second, whole simulation, one core (issue 11)


def main():
    from stmoe.predictors import make

    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=8000)
    args = ap.parse_args()
    trace = stmoe.synthetic_trace(args.tokens, 48, 128, 8, num_sequences=8, prompt_tokens=16, seed=0)
    dec = trace.select(phase="decode")
    profile = stmoe.synthetic_trace(2000, 48, 128, 8, num_sequences=4, prompt_tokens=16, seed=1)
    dims = model_dims(trace, hidden=2048, ffn=768, dtype="bfloat16")
    # Profiling (table building and st-moe's weight tuning on the profile) happens offline,
    # before serving; the runtime cost per request is predicting on the served stream.
    predictor = make("st-moe").fit(profile)
    predictor.predict_trace(profile.select(sequences=[0]), 8, 1)  # compile, and tune on the profile
    simulate(profile, "accelerator", "st-moe", dims=dims,
             predictions=predictor.predict_trace(profile.select(phase="decode"), 8, 1))  # compile
    t_pred, cpu_pred = best_times(lambda: predictor.predict_trace(dec, 8, 1))
    pred = predictor.predict_trace(dec, 8, 1)
    run = lambda: simulate(trace, "accelerator", "st-moe", dims=dims, predictions=pred)  # noqa: E731
    requests = run().requests
    t_sim, cpu_sim = best_times(run)
    rate, cpu_rate = requests / (t_pred + t_sim), requests / (cpu_pred + cpu_sim)
    print(f"whole simulation at run time: {requests:,} expert requests in {t_pred:.3f} s predicting + "
          f"{t_sim:.3f} s buffer and timing = {rate / 1e6:.2f} M requests/s; target {TARGET / 1e6:g} M/s -> "
          f"ratio {rate / TARGET:.2f} (>= 1 passes); by CPU time {cpu_pred:.3f} s + {cpu_sim:.3f} s = "
          f"{cpu_rate / 1e6:.2f} M/s -> ratio {cpu_rate / TARGET:.2f}; buffer and timing alone "
          f"{requests / t_sim / 1e6:.2f} M/s")

    import libcachesim as lcs

    objs = request_stream(trace.expert_ids, trace.num_experts)
    capacity = 48 * 128 // 4
    nxt = next_request(objs)
    rec = np.zeros(objs.size, np.dtype([("t", "<u4"), ("id", "<u8"), ("size", "<u4"), ("next", "<i8")]))
    rec["t"], rec["id"], rec["size"] = np.arange(objs.size), objs.astype(np.uint64) + 1, 1
    rec["next"] = np.where(nxt == NEVER, -1, nxt)
    replay(objs[:1000], capacity, "lru")                 # compile / load the numba cache
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stream.oracleGeneral"
        rec.tofile(path)
        theirs = {}

        def lcs_lru():
            reader = lcs.TraceReader(str(path), lcs.TraceType.ORACLE_GENERAL_TRACE)
            theirs["miss"] = lcs.LRU(capacity).process_trace(reader)[0]

        t_lcs = best_of(lcs_lru)
    ours = {}
    t_ours = best_of(lambda: ours.setdefault("hits", replay(objs, capacity, "lru")))
    same = round((1 - theirs["miss"]) * objs.size) == ours["hits"]
    print(f"LRU buffer alone: {objs.size:,} requests, {capacity} slots: ours {t_ours:.3f} s "
          f"({objs.size / t_ours / 1e6:.1f} M/s), libCacheSim {t_lcs:.3f} s "
          f"({objs.size / t_lcs / 1e6:.1f} M/s); ours/libCacheSim time = {t_ours / t_lcs:.2f} "
          f"(<= 2 passes); same hit count: {same}")


if __name__ == "__main__":
    main()
