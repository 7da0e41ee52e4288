"""Hardware descriptions: where experts live, how fast they move, what compute and energy cost.

A `Hardware` is validated on construction. Three presets (`preset(name, **overrides)`):

- ``accelerator``: the paper-like design: an on-chip SRAM expert buffer fed from off-chip HBM,
  a systolic PE array.
- ``gpu-pcie``: an A100-class GPU whose experts sit in host memory and cross PCIe 4.0 x16.
- ``edge-flash``: a phone SoC streaming experts from UFS 4.0 flash into LPDDR5X.

Constants we could not tie to a public figure are marked ASSUMPTION with the reasoning; change
them with overrides, e.g. ``preset("accelerator", link_bandwidth=128e9)``.

Expert size comes from the model (`ModelDims`): the trace's ``meta["expert_bytes"]`` when a
recorder measured it (the route_trace format does, per layer), else hidden and FFN sizes and a
data type.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from stmoe.errors import ConfigError, HardwareError

# Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm:
# 16-bit FP multiply 1.1 pJ + add 0.4 pJ; 8-bit int multiply 0.2 pJ + add 0.03 pJ;
# SRAM 64-bit read from a 1 MB array about 100 pJ (12.5 pJ/byte).
HOROWITZ_FP16_MAC_PJ = 1.1 + 0.4
HOROWITZ_INT8_MAC_PJ = 0.2 + 0.03
HOROWITZ_SRAM_1MB_PJ_PER_BYTE = 100.0 / 8

# Buffer area, for trading buffer size against latency and energy: TSMC N5's high-density 6T
# SRAM bitcell is 0.021 um^2 (TSMC, IEDM 2019, as reported by WikiChip Fuse, "TSMC
# 5-nanometer update", 2019; N3E keeps the same cell, TSMC IEDM 2022). ASSUMPTION: bitcells are
# 70% of a macro's area, the rest assist circuits, decoders and sense amplifiers (WikiChip's
# ballpark of 30% overhead, giving ~32 Mib/mm^2). So 1 MiB = 2^23 bits x 0.021 um^2 / 0.7
# = 0.25 mm^2. The area is that of an on-chip SRAM of the buffer's size, whatever the preset's
# buffer really is (HBM on gpu-pcie, LPDDR on edge-flash): a comparison of sizes, not a floorplan.
SRAM_BITCELL_UM2 = 0.021
SRAM_ARRAY_EFFICIENCY = 0.7
SRAM_MM2_PER_MIB = 2 ** 23 * SRAM_BITCELL_UM2 * 1e-6 / SRAM_ARRAY_EFFICIENCY


def buffer_area_mm2(buffer_bytes: float) -> float:
    """Area of an expert buffer of this many bytes as N5 high-density SRAM (see SRAM_MM2_PER_MIB)."""
    return float(buffer_bytes) / 2 ** 20 * SRAM_MM2_PER_MIB


DTYPE_BYTES = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0, "int8": 1.0, "int4": 0.5}


# rates per second: a value under 1 (1e-300 bytes/s, say) makes every time infinite
RATES = ("link_bandwidth", "local_bandwidth", "dense_bandwidth", "clock_hz")


@dataclass(frozen=True)
class Hardware:
    """One machine. SI units throughout (bytes, seconds, bytes/s, joules, watts).

    link_*: the path experts are fetched over (DRAM->SRAM, host->GPU, flash->DRAM).
    buffer_bytes: the fast memory that holds experts (split into cache and prefetch staging by
    `stmoe.sim.buffer.BufferSpec.prefetch_share`). local_bandwidth: how fast compute reads weights
    that are already in fast memory. dense_bandwidth: how fast attention and router weights
    are read (default: local_bandwidth; they never use the expert link) and at what energy per
    byte (default: buffer_pj_per_byte).
    macs_per_cycle x clock_hz: peak multiply-accumulates/s.
    """

    name: str
    link_bandwidth: float
    link_latency: float
    buffer_bytes: float
    local_bandwidth: float
    macs_per_cycle: float
    clock_hz: float
    link_pj_per_byte: float
    buffer_pj_per_byte: float
    mac_pj: float
    static_w: float
    dense_bandwidth: float | None = None
    dense_pj_per_byte: float | None = None
    notes: str = ""

    def __post_init__(self):
        positive = ("link_bandwidth", "buffer_bytes", "local_bandwidth", "macs_per_cycle", "clock_hz",
                    "dense_bandwidth")
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in ("name", "notes") or (f.name.startswith("dense_") and v is None):
                continue
            if not isinstance(v, (int, float, np.floating, np.integer)) or not np.isfinite(v):
                raise HardwareError(f"hardware {self.name!r}: {f.name} must be a finite number, got {v!r}")
            if f.name in positive and v <= 0:
                raise HardwareError(f"hardware {self.name!r}: {f.name} must be positive, got {v!r}")
            if f.name in RATES and v < 1:   # below that a token takes longer than floats can hold
                raise HardwareError(f"hardware {self.name!r}: {f.name} must be at least 1 per second, got {v!r}")
            if v < 0:
                raise HardwareError(f"hardware {self.name!r}: {f.name} must not be negative, got {v!r}")

    @property
    def dense_read_bandwidth(self) -> float:
        return self.local_bandwidth if self.dense_bandwidth is None else self.dense_bandwidth

    @property
    def dense_read_pj_per_byte(self) -> float:
        return self.buffer_pj_per_byte if self.dense_pj_per_byte is None else self.dense_pj_per_byte

    @property
    def peak_macs(self) -> float:
        return self.macs_per_cycle * self.clock_hz

    def with_(self, **changes) -> "Hardware":
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise HardwareError(f"unknown hardware field(s) {sorted(unknown)}; valid: "
                                f"{', '.join(f.name for f in dataclasses.fields(self))}")
        return dataclasses.replace(self, **changes)

    def check_fits(self, expert_bytes) -> None:
        largest = float(np.max(expert_bytes))
        if self.buffer_bytes < largest:
            raise HardwareError(f"hardware {self.name!r}: buffer_bytes={self.buffer_bytes:.0f} is smaller "
                                f"than one expert ({largest:.0f} bytes)")


PRESETS = {
    "accelerator": Hardware(
        name="accelerator",
        # JEDEC JESD235 HBM2: 2.0 Gb/s per pin x 1024 pins = 256 GB/s per stack.
        link_bandwidth=256e9,
        # ASSUMPTION: ~100 ns DRAM access plus DMA set-up per expert transfer.
        link_latency=100e-9,
        # ASSUMPTION: 64 MiB of on-chip SRAM for experts (for scale: Groq's LPU has 230 MB,
        # Graphcore's Colossus MK2 900 MB of on-chip SRAM, per their public product pages).
        buffer_bytes=64 * 2 ** 20,
        # ASSUMPTION: banked SRAM feeding a 128x128 array one 128-byte row per bank per cycle,
        # 32 banks at 1 GHz = 4 TB/s.
        local_bandwidth=4e12,
        # A 128x128 systolic array (TPU v1 has 256x256, Jouppi et al., ISCA 2017) at 1 GHz.
        macs_per_cycle=128 * 128,
        clock_hz=1e9,
        # HBM2 about 3.9 pJ/bit (O'Connor et al., "Fine-Grained DRAM", MICRO 2017).
        link_pj_per_byte=3.9 * 8,
        buffer_pj_per_byte=HOROWITZ_SRAM_1MB_PJ_PER_BYTE,
        mac_pj=HOROWITZ_FP16_MAC_PJ,
        # ASSUMPTION: 5 W leakage and clocking for a ~100 mm^2 accelerator die.
        static_w=5.0,
        # Attention weights of a 30B model (hundreds of MB) cannot sit on chip: a second HBM2
        # stack (JESD235, 256 GB/s) streams them, separate from the experts' stack.
        dense_bandwidth=256e9,
        dense_pj_per_byte=3.9 * 8,
        notes="paper-like accelerator: SRAM expert buffer fed from HBM2, 128x128 PE array, "
              "attention weights streamed from a second HBM2 stack"),
    "gpu-pcie": Hardware(
        name="gpu-pcie",
        # PCI-SIG PCIe 4.0: 16 GT/s x 16 lanes, 128b/130b = 31.5 GB/s per direction; ~25 GB/s
        # achieved host-to-device copies (ASSUMPTION: 80% efficiency, typical pinned-memory
        # bandwidthTest results).
        link_bandwidth=25e9,
        # ASSUMPTION: ~10 us per cudaMemcpyAsync launch + DMA set-up.
        link_latency=10e-6,
        # ASSUMPTION: 8 GiB of the 80 GB HBM reserved for an expert cache.
        buffer_bytes=8 * 2 ** 30,
        # NVIDIA A100 80GB datasheet: 2,039 GB/s HBM2e.
        local_bandwidth=2.039e12,
        # NVIDIA A100 datasheet: 312 TFLOPS dense BF16 = 156 TMAC/s; 108 SMs at 1.41 GHz.
        macs_per_cycle=156e12 / 1.41e9,
        clock_hz=1.41e9,
        # DRAM read (Horowitz ISSCC 2014: 1.3-2.6 nJ per 64-bit DDR access, ~20 pJ/bit) plus
        # ASSUMPTION ~5 pJ/bit for the PCIe SerDes at both ends.
        link_pj_per_byte=(20 + 5) * 8,
        # HBM2e read, about 3.9 pJ/bit (O'Connor et al., MICRO 2017).
        buffer_pj_per_byte=3.9 * 8,
        mac_pj=HOROWITZ_FP16_MAC_PJ,
        # ASSUMPTION: ~60 W idle/static of a 400 W A100 SXM board.
        static_w=60.0,
        notes="A100-class GPU, experts in host DRAM over PCIe 4.0 x16"),
    "edge-flash": Hardware(
        name="edge-flash",
        # JEDEC UFS 4.0 / Samsung UFS 4.0 announcement (2022): up to 4,200 MB/s sequential read.
        link_bandwidth=4.2e9,
        # ASSUMPTION: ~100 us flash read latency per request (UFS random-read class).
        link_latency=100e-6,
        # ASSUMPTION: 2 GiB of the phone's LPDDR5X given to the expert cache.
        buffer_bytes=2 * 2 ** 30,
        # JEDEC LPDDR5X-8533 on a 64-bit bus: 68.3 GB/s.
        local_bandwidth=68.3e9,
        # ASSUMPTION: an NPU of ~8 TMAC/s (16 TOPS int8 class) at 1 GHz.
        macs_per_cycle=8e3,
        clock_hz=1e9,
        # Samsung UFS 4.0 announcement: 6.0 MB/s per mA sequential read; at 2.5 V VCC this is
        # 2.5 V x 1 mA / 6.0 MB/s = 417 pJ/byte.
        link_pj_per_byte=2.5 * 1e-3 / 6.0e6 * 1e12,
        # LPDDR: ~20 pJ/bit DRAM access (Horowitz ISSCC 2014, upper bound for a mobile part).
        buffer_pj_per_byte=20 * 8,
        mac_pj=HOROWITZ_INT8_MAC_PJ,
        # ASSUMPTION: 1 W SoC static power while decoding.
        static_w=1.0,
        notes="phone SoC streaming experts from UFS 4.0 flash into LPDDR5X"),
}


def preset(name: str, **overrides) -> Hardware:
    """A preset by name, with optional field overrides (validated)."""
    if isinstance(name, Hardware):
        return name.with_(**overrides) if overrides else name
    if name not in PRESETS:
        raise HardwareError(f"unknown hardware preset {name!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[name].with_(**overrides) if overrides else PRESETS[name]


@dataclass(frozen=True)
class ModelDims:
    """Per-token work and weight bytes of one MoE model (per layer arrays have length L)."""

    expert_bytes: np.ndarray     # bytes of one expert's weights, per layer
    expert_macs: float           # MACs of one expert for one token
    dense_bytes: np.ndarray      # attention + router weight bytes, per layer
    dense_macs: float            # attention + router MACs per token and layer (no KV term)
    source: str


# Public model configs (Hugging Face config.json of each model):
# Qwen/Qwen3-30B-A3B: hidden 2048, moe_intermediate 768, 32 query / 4 KV heads of 128.
# ibm-granite/granite-3.0-1b-a400m-instruct: hidden 1024, intermediate 512, 16 / 8 heads of 64.
KNOWN_MODELS = {
    "Qwen3-30B-A3B": dict(hidden=2048, ffn=768, heads=32, kv_heads=4, head_dim=128),
    "ibm-granite/granite-3.0-1b-a400m-instruct": dict(hidden=1024, ffn=512, heads=16, kv_heads=8,
                                                      head_dim=64),
    # the bundled traces' model (scripts/bundled_model.json)
    "stmoe-bundled-qwen3moe-8x32": dict(hidden=192, ffn=128, heads=6, kv_heads=2, head_dim=32),
}


def model_dims(trace, *, hidden: int | None = None, ffn: int | None = None,
               dtype: str | None = None, heads: int | None = None, kv_heads: int | None = None,
               head_dim: int | None = None) -> ModelDims:
    """The model's sizes: given arguments win, then the trace's model (KNOWN_MODELS), and
    measured ``meta["expert_bytes"]`` wins over hidden x ffn x dtype for the expert size."""
    L, E = trace.num_layers, trace.num_experts
    # a recorded trace carries its model's sizes (stmoe.record stores meta["model_config"])
    known = KNOWN_MODELS.get(str(trace.meta.get("model"))) or trace.meta.get("model_config") or {}
    given = dict(hidden=hidden, ffn=ffn, heads=heads, kv_heads=kv_heads, head_dim=head_dim)
    dims = {k: (v if v is not None else known.get(k)) for k, v in given.items()}
    source = f"model config of {trace.meta.get('model')}" if known else "arguments"
    if dims["hidden"] is None or dims["ffn"] is None:
        raise ConfigError(f"model dimensions of trace {trace.name!r} (model "
                          f"{trace.meta.get('model')!r}) are unknown: give the hidden and expert FFN sizes "
                          f"(--hidden/--ffn, or hidden=/ffn= in Python, and a dtype); known models: "
                          f"{', '.join(KNOWN_MODELS)}")
    for k, v in dims.items():
        if v is not None and int(v) <= 0:
            raise ConfigError(f"{k} must be a positive integer, got {v!r}")
    h, f = int(dims["hidden"]), int(dims["ffn"])
    hd = int(dims["head_dim"] or max(h // int(dims["heads"] or 16), 1))
    nh, nkv = int(dims["heads"] or max(h // hd, 1)), int(dims["kv_heads"] or dims["heads"] or max(h // hd, 1))
    dtype = dtype or str(trace.meta.get("dtype") or "bfloat16")
    if dtype not in DTYPE_BYTES:
        raise ConfigError(f"unknown dtype {dtype!r}; valid: {', '.join(DTYPE_BYTES)}")
    expert_params = 3 * h * f                      # SwiGLU: gate, up and down projections
    dense_params = h * hd * (2 * nh + 2 * nkv) + h * E   # q, o, k, v and the router
    measured = trace.meta.get("expert_bytes")
    if measured is not None and all(b for b in measured) and len(measured) == L:
        expert_bytes = np.asarray(measured, dtype=np.float64)
        scale = expert_bytes.mean() / expert_params  # the recorder's bytes per parameter
        source += "; expert bytes measured by the recorder"
    else:
        scale = DTYPE_BYTES[dtype]
        expert_bytes = np.full(L, expert_params * scale)
        source += f"; {dtype}"
    return ModelDims(expert_bytes=expert_bytes, expert_macs=float(expert_params),
                     dense_bytes=np.full(L, dense_params * scale), dense_macs=float(dense_params),
                     source=source)
