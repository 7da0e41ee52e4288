"""Compute on a systolic PE array: cycles of a matrix multiplication by dataflow, as fold counts.

One weight matrix of a layer multiplies the activations of the M tokens of a step: an (M x K) by
(K x N) GEMM; M = 1 is one decoded token (a GEMV). An R x C array maps two of M, K, N onto its
rows and columns (Sr, Sc) and streams the third through time (T), by what stays in the PEs:

======================  ==========================  ====  ====  ====
dataflow                stays in the PEs            Sr    Sc    T
======================  ==========================  ====  ====  ====
``os`` output-stat.     the M x N partial sums      M     N     K
``ws`` weight-stat.     an R x C tile of weights    K     N     M
``is`` input-stat.      an R x C tile of inputs     K     M     N
======================  ==========================  ====  ====  ====

A GEMM larger than the array runs in ceil(Sr / R) x ceil(Sc / C) folds, one after another. Each
fold takes T cycles of streaming plus R + C - 2 for the skewed wavefront to enter and leave the
array; weight- and input-stationary folds first load their stationary tile, one row a cycle (R
more). So, per fold, T + R + C - 2 (os) or T + 2R + C - 2 (ws, is).

This is SCALE-Sim's analytical model (Samajdar et al., "A Systematic Methodology for
Characterizing Scalability of DNN Accelerators using SCALE-Sim", ISPASS 2020), whose paper writes
2R + C + T - 2 per fold for every dataflow; the compute model of SCALE-Sim v3 (Raj et al.,
"SCALE-Sim v3: A modular cycle-accurate systolic accelerator simulator for end-to-end system
analysis", ISPASS 2025) gives output-stationary folds no load phase, and we follow v3, which
tests/test_systolic.py checks cycle for cycle. Like that compute model, this counts no memory
stalls: the array is fed from the buffer every cycle (`stmoe.sim.timing` takes the slower of
these cycles and reading the weights).

The cycle and time functions take ``backend``: ``"fold"`` (the formula above) or ``"scalesim"``, which
runs SCALE-Sim 3.0's own compute model (the ``scalesim`` extra) once per shape and caches it.
SCALE-Sim's whole run cannot be used: its memory model calls int() on one-element arrays, which
NumPy 2.4 refuses; so the backend drives the compute classes that run calls, and counts the rows
of their demand matrices, one per cycle.

Why a fold count and not MACs / peak: at one token the array uses one row (os) or column (is)
of its PEs, so a 128 x 128 array takes in at most 128 weights a cycle, and a bf16 Qwen3-30B-A3B
expert (4.7 M MACs, 0.29 us at 16,384 MACs a cycle and 1 GHz) takes 44 us (os).
"""

from __future__ import annotations

from functools import lru_cache
from math import ceil

import numpy as np

from stmoe.errors import ConfigError
from stmoe.sim.hardware import DATAFLOWS, Hardware, ModelDims

BACKENDS = ("fold", "scalesim")


def _spatial(m: int, k: int, n: int, dataflow: str) -> tuple[int, int, int]:
    """(Sr, Sc, T): the dims mapped onto the array's rows and columns, and the one streamed."""
    if dataflow == "os":
        return m, n, k
    if dataflow == "ws":
        return k, n, m
    if dataflow == "is":
        return k, m, n
    raise ConfigError(f"dataflow must be one of {', '.join(DATAFLOWS)}, got {dataflow!r}")


def cycles(m: int, k: int, n: int, rows: int, cols: int, dataflow: str, backend: str = "fold") -> int:
    """Cycles of an (m x k) by (k x n) matrix product on a rows x cols array (module docstring)."""
    for name, v in (("m", m), ("k", k), ("n", n), ("rows", rows), ("cols", cols)):
        if isinstance(v, bool) or not float(v).is_integer() or v < 1:
            raise ConfigError(f"{name} must be a positive whole number, got {v!r}")
    m, k, n, rows, cols = int(m), int(k), int(n), int(rows), int(cols)
    sr, sc, t = _spatial(m, k, n, dataflow)
    if backend == "scalesim":
        return _scalesim_cycles(m, k, n, rows, cols, dataflow)
    if backend != "fold":
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    load = 0 if dataflow == "os" else rows
    return ceil(sr / rows) * ceil(sc / cols) * (load + t + rows + cols - 2)


@lru_cache(maxsize=1024)
def _scalesim_cycles(m: int, k: int, n: int, rows: int, cols: int, dataflow: str) -> int:
    """SCALE-Sim 3.0's compute cycles for one shape (module docstring)."""
    try:
        from scalesim.compute.systolic_compute_is import systolic_compute_is
        from scalesim.compute.systolic_compute_os import systolic_compute_os
        from scalesim.compute.systolic_compute_ws import systolic_compute_ws
        from scalesim.scale_config import scale_config
    except ImportError:
        raise ConfigError("backend 'scalesim' needs SCALE-Sim: pip install -e '.[scalesim]'") from None
    config = scale_config()
    config.set_arr_dims(rows, cols)
    config.set_dataflow(dataflow)
    config.force_valid()
    compute = {"os": systolic_compute_os, "ws": systolic_compute_ws, "is": systolic_compute_is}[dataflow]()
    # operand matrices of addresses, as SCALE-Sim's operand_matrix makes them for a GEMM
    compute.set_params(config_obj=config, ifmap_op_mat=np.arange(m * k).reshape(m, k),
                       filter_op_mat=10 ** 7 + np.arange(k * n).reshape(k, n),
                       ofmap_op_mat=2 * 10 ** 7 + np.arange(m * n).reshape(m, n))
    lengths = {d.shape[0] for d in compute.get_demand_matrices()}
    if len(lengths) != 1:      # input, weight and output demands run in step, one row a cycle
        raise RuntimeError(f"SCALE-Sim's demand matrices disagree on the cycles: {sorted(lengths)}")
    return lengths.pop()


def matrices_cycles(matrices, tokens: int, rows: int, cols: int, dataflow: str, backend: str = "fold") -> int:
    """Cycles of `tokens` tokens through each (K, N) weight matrix of `matrices`, one matrix
    after another (a fold of the next does not overlap the last of this one)."""
    return sum(cycles(tokens, k, n, rows, cols, dataflow, backend) for k, n in matrices)


def compute_time(hw: Hardware, matrices, macs: float, tokens: int = 1, backend: str = "fold") -> float:
    """Seconds the hardware's compute takes for `tokens` tokens of a part of the model that goes
    through `matrices` ((K, N) each) and does `macs` multiply-accumulates per token in all. On a
    PE array (a hardware with a dataflow): the matrices' cycles / clock, plus any MACs outside
    them (attention over the KV cache of non-MoE layers) at peak; else the roofline's MACs / peak."""
    if isinstance(tokens, bool) or not float(tokens).is_integer() or tokens < 1:
        raise ConfigError(f"tokens per step must be a positive whole number, got {tokens!r}")
    if hw.dataflow is None:
        return float(tokens) * macs / hw.peak_macs
    outside = macs - sum(k * n for k, n in matrices)
    if outside < 0:
        raise ConfigError(f"the matrices {matrices!r} hold more than the part's {macs:g} MACs per token")
    rows, cols = hw.pe_array
    return (matrices_cycles(matrices, int(tokens), rows, cols, hw.dataflow, backend) / hw.clock_hz
            + float(tokens) * outside / hw.peak_macs)


def expert_time(hw: Hardware, dims: ModelDims, tokens: int = 1, backend: str = "fold") -> float:
    """Seconds to compute one expert (its gate, up and down matrices) for `tokens` tokens."""
    return compute_time(hw, dims.expert_matrices, dims.expert_macs, tokens, backend)


def dense_time(hw: Hardware, dims: ModelDims, tokens: int = 1, backend: str = "fold") -> float:
    """Seconds to compute one MoE layer's attention projections, router and shared experts for
    `tokens` tokens (attention over the KV cache is `ModelDims.kv_macs`, timed apart)."""
    return compute_time(hw, dims.dense_matrices, dims.dense_macs, tokens, backend)


def head_time(hw: Hardware, dims: ModelDims, tokens: int = 1, backend: str = "fold") -> float:
    """Seconds to compute the once-per-token part for `tokens` tokens: the LM head and the
    non-MoE layers (the embedding row is a lookup, no MACs)."""
    return compute_time(hw, dims.head_matrices, dims.head_macs, tokens, backend)


def compute_note(hw: Hardware, dims: ModelDims, batch: int = 1) -> str:
    """What a result's compute times assumed, in one line; batch: the tokens of a full step."""
    if hw.dataflow is None:
        return (f"compute on {hw.name}: roofline, MACs at {hw.peak_macs / 1e12:.3g} TMAC/s or weight reads, "
                f"whichever is slower; {expert_time(hw, dims) * 1e6:.3g} us of MACs per expert"
                + (f" for one token, {expert_time(hw, dims, batch) * 1e6:.3g} us for {batch}" if batch > 1 else ""))
    rows, cols = hw.pe_array
    if batch == 1:
        return (f"compute on {hw.name}: {rows}x{cols} {DATAFLOWS[hw.dataflow]} PE array at "
                f"{hw.clock_hz / 1e9:.3g} GHz, one token per step (SCALE-Sim's fold model): "
                f"{expert_time(hw, dims) * 1e6:.3g} us per expert, {dense_time(hw, dims) * 1e6:.3g} us of "
                f"attention projections, router and shared experts per layer, {head_time(hw, dims) * 1e6:.4g} us "
                f"of LM head and non-MoE layers per token; attention over the KV cache at peak MACs")
    return (f"compute on {hw.name}: {rows}x{cols} {DATAFLOWS[hw.dataflow]} PE array at "
            f"{hw.clock_hz / 1e9:.3g} GHz, up to {batch} tokens per step (SCALE-Sim's fold model): "
            f"{expert_time(hw, dims) * 1e6:.3g} us per expert for one token, {expert_time(hw, dims, batch) * 1e6:.3g} "
            f"us for {batch}; for {batch} tokens, {dense_time(hw, dims, batch) * 1e6:.3g} us of attention "
            f"projections, router and shared experts per layer, {head_time(hw, dims, batch) * 1e6:.4g} us of LM "
            "head and non-MoE layers per step; attention over the KV cache at peak MACs")
