"""How long loading a large native trace takes (100,000 tokens x 48 layers x top-8, with gate
weights), against the baseline of reading the same bytes from disk, in the same process.

    python benchmarks/bench_load.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from timing_util import best_of

from stmoe import Trace, load_trace


def main():
    T, L, k, E = 100_000, 48, 8, 128
    rng = np.random.default_rng(0)
    # Cells drawn from 4096 distinct expert sets: incompressible enough to be honest.
    ids = np.stack([rng.permutation(E)[:k] for _ in range(4096)])[rng.integers(0, 4096, T * L)]
    ids = ids.reshape(T, L, k).astype(np.int16)
    weights = rng.dirichlet(np.ones(k), size=(T, L)).astype(np.float32)
    trace = Trace(ids, num_experts=E, phase=np.ones(T, dtype=np.uint8),
                  sequence=np.repeat(np.arange(100), T // 100), weights=weights,
                  meta={"name": "bench", "synthetic": True})
    with tempfile.TemporaryDirectory() as tmp:
        path = trace.save(Path(tmp) / "bench.npz")
        size = path.stat().st_size
        raw = best_of(lambda: path.read_bytes())
        load = best_of(lambda: load_trace(path))
    print(f"trace: {T} tokens x {L} layers x top-{k}, E={E}, with weights; file {size / 1e6:.1f} MB")
    print(f"load_trace: {load:.3f} s  (reading the file's bytes alone: {raw:.3f} s, ratio {load / raw:.1f}x)")
    print("target: under 1 s ->", "OK" if load < 1.0 else "TOO SLOW")


if __name__ == "__main__":
    main()
