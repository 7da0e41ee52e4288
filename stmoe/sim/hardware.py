"""Hardware descriptions: where experts live, how fast they move, what compute and energy cost.

A `Hardware` is validated on construction. Three presets (`preset(name, **overrides)`):

- ``accelerator``: the paper-like design: an on-chip SRAM expert buffer fed from off-chip HBM,
  a systolic PE array.
- ``gpu-pcie``: an A100-class GPU whose experts sit in host memory and cross PCIe 4.0 x16.
- ``edge-flash``: a phone SoC streaming experts from UFS 4.0 flash into LPDDR5X.

Constants we could not tie to a public figure are marked ASSUMPTION with the reasoning; change
them with overrides, e.g. ``preset("accelerator", link_bandwidth=128e9)``.

A token's sizes come from the model (`model_dims` -> `ModelDims`): the shape from the registry
(`stmoe.sim.models`), the bytes from ``--dtype`` when given, else what the recorder measured
(``meta["expert_bytes"]``, ``meta["dense_bytes"]``; route_trace files record both per layer).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from math import isqrt

import numpy as np

from stmoe.errors import ConfigError, HardwareError
from stmoe.sim.models import MODELS, ModelConfig, find_model, get_model

# Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm:
# 16-bit FP multiply 1.1 pJ + add 0.4 pJ; 8-bit int multiply 0.2 pJ + add 0.03 pJ;
# SRAM 64-bit read from a 1 MB array about 100 pJ (12.5 pJ/byte).
HOROWITZ_FP16_MAC_PJ = 1.1 + 0.4
HOROWITZ_INT8_MAC_PJ = 0.2 + 0.03
HOROWITZ_SRAM_1MB_PJ_PER_BYTE = 100.0 / 8

# Buffer area, for trading buffer size against latency and energy: TSMC N5's high-density 6T
# SRAM bitcell is 0.021 um^2 (TSMC, IEDM 2019, as reported by WikiChip Fuse, "TSMC
# 5-nanometer update", 2019; N3E keeps the same cell, TSMC IEDM 2022); TSMC's 40 nm high-density
# cell is 0.242 um^2 (as listed by WikiChip's 40 nm process page). ASSUMPTION: bitcells are
# 70% of a macro's area, the rest assist circuits, decoders and sense amplifiers (WikiChip's
# ballpark of 30% overhead, giving ~32 Mib/mm^2 at N5). So 1 MiB = 2^23 bits x 0.021 um^2 / 0.7
# = 0.25 mm^2 at N5, 2.9 mm^2 at 40 nm. `buffer_area_mm2` compares buffer sizes at N5 whatever
# the preset's buffer really is (HBM on gpu-pcie, LPDDR on edge-flash): a comparison of sizes,
# not a floorplan; `Hardware.sram_area_mm2` is the preset's own SRAM at its own node.
SRAM_BITCELL_UM2_BY_NODE = {5: 0.021, 40: 0.242}
SRAM_BITCELL_UM2 = SRAM_BITCELL_UM2_BY_NODE[5]
SRAM_ARRAY_EFFICIENCY = 0.7
SRAM_MM2_PER_MIB = 2 ** 23 * SRAM_BITCELL_UM2 * 1e-6 / SRAM_ARRAY_EFFICIENCY

# SRAM leakage per MiB at each node, for the static power of an on-chip expert buffer, from the
# device parameters of CACTI 7 (Balasubramonian, Kahng, Muralimanohar, Shafiee, Srinivas, "CACTI 7:
# New tools for interconnect exploration in innovative off-chip memories", ACM TACO 14(2), 2017;
# github.com/HewlettPackard/cacti, tech_params/<node>nm.dat, ITRS-derived). CACTI's standby leakage
# of a 6T cell with one read/write port (mat.cc, "Leakage current of an SRAM cell"): subthreshold
# through one off transistor of each cross-coupled inverter (Wmemcellnmos + Wmemcellpmos, with
# I_off_p = I_off_n) and through the access transistor half the time (Wmemcella / 2), plus gate
# leakage of one inverter's pair, (Wmemcellnmos + Wmemcellpmos) / 2; widths in feature sizes F are
# 2.08, 1.23, 1.31 at every node (dat lines 53-55):
#   per MiB = 2^23 cells x Vdd x F x (I_off(T) x 3.965 + I_g_on x 1.655)
# with F the node in um, the currents in A per um of width, 3.965 and 1.655 widths in F.
# Design choice (ours): the cells are CACTI's "itrs-lstp" (low standby power) devices at 360 K (the
# operating temperature of CACTI's sample configs): the flavour meant for arrays whose leakage
# matters. CACTI's sample configs use "itrs-hp" logic devices, ~0.1 uA a cell, with which 64 MiB
# would leak 51 W (the high end of SRAM_LEAKAGE_RANGE_W_PER_MIB). Per cell with lstp at 360 K:
#   45 nm 24 pA, 32 nm 32 pA, 22 nm 47 pA (at 22 nm gate leakage is a third of it)
# 40 nm is CACTI's own interpolation (parameter.cc: linear in node between 45 and 32 nm, weight 8/13
# on 45 nm; widths in F at 40 nm): 1.06 V, I_off 1.72e-10, I_g_on 2.02e-11 A/um -> 28.7 pA a cell,
# 0.255 mW per MiB. CACTI's smallest node is 22 nm (its 16nm.dat is not wired in): 0.32 mW per MiB.
# ASSUMPTION (5 nm only): beyond 22 nm the 22 nm figure is held (no per-cell figure for N5 was
# found; lstp's per-cell leakage doubles from 45 to 22 nm in CACTI's tables).
# (Vdd V; I_off_n at 300 K and at 360 K; I_g_on_n, A/um): tech_params/<node>nm.dat lines 9, 18, 24, 35
_CACTI_DEVICES = {
    "itrs-lstp": {45: (1.1, 1.01e-11, 1.3e-10, 9.47e-12), 32: (1.0, 2.06e-11, 2.4e-10, 3.73e-11),
                  22: (0.8, 2.43e-11, 3.55e-10, 4.51e-10)},
    "itrs-hp": {45: (1.0, 2.8e-7, 6.42e-7, 3.59e-8), 32: (0.9, 1.52e-7, 5.32e-7, 6.55e-8),
                22: (0.8, 1.216e-7, 4.256e-7, 1.81e-9)},
}


def _cacti_sram_w_per_mib(device: str, node_nm: int, kelvin: int) -> float:
    table = _CACTI_DEVICES[device]
    at_node = (table[node_nm] if node_nm in table else      # 40 nm: CACTI's interpolation
               tuple(8 / 13 * x45 + 5 / 13 * x32 for x45, x32 in zip(table[45], table[32])))
    vdd, off_300k, off_360k, gate = at_node
    off = {300: off_300k, 360: off_360k}[kelvin]
    return 2 ** 23 * vdd * node_nm * 1e-3 * (off * (2.08 + 1.23 + 1.31 / 2) + gate * (2.08 + 1.23) / 2)


SRAM_LEAKAGE_W_PER_MIB = {5: _cacti_sram_w_per_mib("itrs-lstp", 22, 360),
                          40: _cacti_sram_w_per_mib("itrs-lstp", 40, 360)}
# Where the figure may lie, from the same tables: low, lstp cells at 300 K; high, CACTI's
# sample-config default "itrs-hp" cells at 360 K (5 nm: 22 nm's, held as above).
SRAM_LEAKAGE_RANGE_W_PER_MIB = {
    node: (_cacti_sram_w_per_mib("itrs-lstp", cacti, 300), _cacti_sram_w_per_mib("itrs-hp", cacti, 360))
    for node, cacti in ((5, 22), (40, 40))}


def buffer_area_mm2(buffer_bytes: float) -> float:
    """Area of an expert buffer of this many bytes as N5 high-density SRAM (see SRAM_MM2_PER_MIB)."""
    return float(buffer_bytes) / 2 ** 20 * SRAM_MM2_PER_MIB


DTYPE_BYTES = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0, "int8": 1.0, "int4": 0.5}


# how a PE array moves data (`stmoe.sim.systolic`); a hardware without one (dataflow None) computes
# at a roofline
DATAFLOWS = {"os": "output-stationary", "ws": "weight-stationary", "is": "input-stationary"}

# rates per second: a value under 1 (1e-300 bytes/s, say) makes every time infinite
RATES = ("link_bandwidth", "local_bandwidth", "dense_bandwidth", "clock_hz")
OPTIONAL = ("dense_bandwidth", "dense_pj_per_byte", "sram_node_nm", "pe_rows", "pe_cols")


# The largest value any hardware constant may take: far beyond every real machine, and small
# enough that energy and time totals (constant x bytes x tokens) stay finite in float64.
MAX_VALUE = 1e30
# The most tokens of context a decoded token may read: what an int32 position counts, 200
# times the longest window of a released model (Llama 4 Scout, 10 million tokens; Meta, 2025);
# totals stay finite.
MAX_CONTEXT = 2 ** 31 - 1


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
    static_w: static power of everything but an on-chip SRAM buffer (logic, clocks; a board's
    idle power); sram_node_nm: the process node of the buffer when it is on-chip SRAM, whose
    leakage (SRAM_LEAKAGE_W_PER_MIB) `static_power_w` adds; None when the buffer is DRAM.
    dataflow: the PE array's (`DATAFLOWS`; `stmoe.sim.systolic` counts its cycles), or None for
    compute that is a roofline at peak. pe_rows x pe_cols: the array's shape (default: square,
    of macs_per_cycle PEs).
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
    sram_node_nm: float | None = None
    dataflow: str | None = None
    pe_rows: int | None = None
    pe_cols: int | None = None
    notes: str = ""

    def __post_init__(self):
        positive = ("link_bandwidth", "buffer_bytes", "local_bandwidth", "macs_per_cycle", "clock_hz",
                    "dense_bandwidth", "pe_rows", "pe_cols")
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in ("name", "notes", "dataflow") or (f.name in OPTIONAL and v is None):
                continue
            if not isinstance(v, (int, float, np.floating, np.integer)) or not np.isfinite(v):
                raise HardwareError(f"hardware {self.name!r}: {f.name} must be a finite number, got {v!r}")
            if f.name in positive and v <= 0:
                raise HardwareError(f"hardware {self.name!r}: {f.name} must be positive, got {v!r}")
            if f.name in RATES and v < 1:   # below that a token takes longer than floats can hold
                raise HardwareError(f"hardware {self.name!r}: {f.name} must be at least 1 per second, got {v!r}")
            if v < 0:
                raise HardwareError(f"hardware {self.name!r}: {f.name} must not be negative, got {v!r}")
            if v > MAX_VALUE:   # products of such constants overflow to inf in a long trace's totals
                raise HardwareError(f"hardware {self.name!r}: {f.name} must be at most {MAX_VALUE:g}, got {v!r}")
        if self.sram_node_nm is not None:
            self._node()
        _ = self.pe_array   # raises on a bad dataflow or array shape

    @property
    def pe_array(self) -> tuple[int, int] | None:
        """(rows, cols) of the PE array, or None for a hardware without one (dataflow None)."""
        rows, cols, where = self.pe_rows, self.pe_cols, f"hardware {self.name!r}"
        if self.dataflow is None:
            if rows is not None or cols is not None:
                raise HardwareError(f"{where}: pe_rows/pe_cols describe a PE array, which needs a dataflow "
                                    f"({', '.join(DATAFLOWS)}), got dataflow=None")
            return None
        if not isinstance(self.dataflow, str) or self.dataflow not in DATAFLOWS:
            raise HardwareError(f"{where}: dataflow must be one of {', '.join(DATAFLOWS)} (or None: a roofline), "
                                f"got {self.dataflow!r}")
        if (rows is None) != (cols is None):
            raise HardwareError(f"{where}: give both pe_rows and pe_cols, or neither (a square array of "
                                f"macs_per_cycle PEs), got pe_rows={rows!r}, pe_cols={cols!r}")
        if rows is None:
            side = isqrt(int(self.macs_per_cycle))
            if side * side != self.macs_per_cycle:
                raise HardwareError(f"{where}: macs_per_cycle={self.macs_per_cycle!r} is not a square number "
                                    f"of PEs: give pe_rows and pe_cols")
            return side, side
        for f, v in (("pe_rows", rows), ("pe_cols", cols)):
            if not float(v).is_integer():
                raise HardwareError(f"{where}: {f} must be a whole number, got {v!r}")
        if rows * cols != self.macs_per_cycle:
            raise HardwareError(f"{where}: pe_rows x pe_cols = {rows:g} x {cols:g} must equal "
                                f"macs_per_cycle ({self.macs_per_cycle:g})")
        return int(rows), int(cols)

    @property
    def dense_read_bandwidth(self) -> float:
        return self.local_bandwidth if self.dense_bandwidth is None else self.dense_bandwidth

    @property
    def dense_read_pj_per_byte(self) -> float:
        return self.buffer_pj_per_byte if self.dense_pj_per_byte is None else self.dense_pj_per_byte

    @property
    def sram_area_mm2(self) -> float | None:
        """The buffer's area as SRAM at its own node (None when it is not on-chip SRAM)."""
        if self.sram_node_nm is None:
            return None
        return (self.buffer_bytes / 2 ** 20 * 2 ** 23 * SRAM_BITCELL_UM2_BY_NODE[self._node()] * 1e-6
                / SRAM_ARRAY_EFFICIENCY)

    @property
    def static_power_w(self) -> float:
        """static_w plus the SRAM buffer's leakage at its node."""
        if self.sram_node_nm is None:
            return self.static_w
        return self.static_w + self.buffer_bytes / 2 ** 20 * SRAM_LEAKAGE_W_PER_MIB[self._node()]

    def _node(self) -> int:
        node = int(self.sram_node_nm)
        if node not in SRAM_LEAKAGE_W_PER_MIB or node != self.sram_node_nm:
            raise HardwareError(f"hardware {self.name!r}: sram_node_nm must be one of "
                                f"{sorted(SRAM_LEAKAGE_W_PER_MIB)}, got {self.sram_node_nm!r}")
        return node

    @property
    def peak_macs(self) -> float:
        return self.macs_per_cycle * self.clock_hz

    def with_(self, **changes) -> Hardware:
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
        # Output-stationary, a design choice (not a number: stmoe.sim.conditions varies it, the
        # sensitivity ranges do not). Decoding multiplies one token's vector by each matrix, so no
        # weight is used twice; a weight-stationary array (TPU v1's) spends R cycles loading each
        # 128x128 tile to use it once. On a bf16 Qwen3-30B-A3B expert at one token, SCALE-Sim's
        # fold model gives os 44.0 us, is 51.4 us, ws 110.3 us (stmoe.sim.systolic).
        dataflow="os",
        # HBM2 about 3.9 pJ/bit (O'Connor et al., "Fine-Grained DRAM", MICRO 2017).
        link_pj_per_byte=3.9 * 8,
        buffer_pj_per_byte=HOROWITZ_SRAM_1MB_PJ_PER_BYTE,
        mac_pj=HOROWITZ_FP16_MAC_PJ,
        # The energies above are Horowitz's 45 nm figures, so the SRAM is at 40 nm: 64 MiB is
        # 130 mm^2 of bitcells, 186 mm^2 of macros (SRAM_BITCELL_UM2_BY_NODE), leaking
        # 64 x SRAM_LEAKAGE_W_PER_MIB[40] = 16 mW (`static_power_w`; 2 mW to 51 W over
        # SRAM_LEAKAGE_RANGE_W_PER_MIB).
        sram_node_nm=40,
        # ASSUMPTION: 1 W static for the rest of the die: 16,384 FP16 MACs at ~3,000 um^2 each
        # (Horowitz ISSCC 2014, 45 nm: multiply 1,640 + add 1,360 um^2) are ~50 mm^2 of logic,
        # plus control and clock tree.
        static_w=1.0,
        # Attention weights of a 30B model (hundreds of MB) cannot sit on chip: a second HBM2
        # stack (JESD235, 256 GB/s) streams them, separate from the experts' stack.
        dense_bandwidth=256e9,
        dense_pj_per_byte=3.9 * 8,
        notes="paper-like accelerator: 64 MiB SRAM expert buffer at 40 nm fed from HBM2, 128x128 PE "
              "array, attention, KV cache and LM head streamed from a second HBM2 stack"),
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
        # NVIDIA A100 datasheet: 1,935 GB/s HBM2e on the 80GB PCIe card (2,039 GB/s on SXM).
        local_bandwidth=1.935e12,
        # NVIDIA A100 datasheet: 312 TFLOPS dense BF16 = 156 TMAC/s; 108 SMs at 1.41 GHz.
        macs_per_cycle=156e12 / 1.41e9,
        clock_hz=1.41e9,
        # DRAM read (Horowitz ISSCC 2014: 1.3-2.6 nJ per 64-bit DDR access, ~20 pJ/bit) plus
        # ASSUMPTION ~5 pJ/bit for the PCIe SerDes at both ends.
        link_pj_per_byte=(20 + 5) * 8,
        # HBM2e read, about 3.9 pJ/bit (O'Connor et al., MICRO 2017).
        buffer_pj_per_byte=3.9 * 8,
        mac_pj=HOROWITZ_FP16_MAC_PJ,
        # NVIDIA A100 datasheet: 300 W maximum board power (80GB PCIe). ASSUMPTION: ~60 W of it
        # idle/static (HBM refresh, clocks, leakage), the rest counted as dynamic energy above.
        static_w=60.0,
        notes="A100 80GB PCIe: experts in host DRAM copied over PCIe 4.0 x16 into an 8 GiB HBM expert "
              "cache, attention, KV cache and LM head resident in HBM (the 'GPU' of expert-offloading "
              "systems such as Pre-gated MoE, Hwang et al., ISCA 2024)"),
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
    """What one decoded token reads and computes, by part (per-layer arrays have the trace's L
    MoE layers). Bytes and multiply-accumulates (MACs):

    expert_*: one routed expert; dense_*: one MoE layer's attention, router and shared experts;
    kv_*: one MoE layer's KV-cache reads at `context_tokens` tokens of context; head_*: once per
    token, the LM head, the token's embedding row and the model's non-MoE layers (with their KV
    reads); lm_head_bytes: the LM head alone. source: where the sizes came from.
    *_matrices: (K, N) of each weight matrix one token goes through in that part (what a PE
    array computes, `stmoe.sim.systolic`); head_macs also holds the non-MoE layers' KV MACs."""

    expert_bytes: np.ndarray
    expert_macs: float
    dense_bytes: np.ndarray
    dense_macs: float
    kv_bytes: float
    kv_macs: float
    head_bytes: float
    head_macs: float
    lm_head_bytes: float
    bytes_per_param: float
    context_tokens: float
    source: str
    expert_matrices: tuple
    dense_matrices: tuple
    head_matrices: tuple
    model: str | None = None
    notes: tuple = ()

    def as_dict(self) -> dict:
        """The sizes as the JSON output prints them (per-layer arrays as their mean, min and max)."""
        return {"model": self.model, "source": self.source,
                "expert_bytes": float(np.mean(self.expert_bytes)),
                "expert_bytes_min_max": [float(np.min(self.expert_bytes)), float(np.max(self.expert_bytes))],
                "expert_macs": self.expert_macs,
                "dense_bytes_per_layer": float(np.mean(self.dense_bytes)), "dense_macs_per_layer": self.dense_macs,
                "kv_bytes_per_layer": self.kv_bytes, "kv_macs_per_layer": self.kv_macs,
                "context_tokens": self.context_tokens, "lm_head_bytes": self.lm_head_bytes,
                "head_bytes": self.head_bytes, "head_macs": self.head_macs,
                "bytes_per_param": self.bytes_per_param}


SIZE_FLAGS = "--model NAME (one of: {}) or --hidden/--ffn with --dtype (model= / hidden=, ffn=, dtype= in Python)"


def model_dims(trace, *, model: str | None = None, hidden: int | None = None, ffn: int | None = None,
               dtype: str | None = None, heads: int | None = None, kv_heads: int | None = None,
               head_dim: int | None = None, context: float | None = None) -> ModelDims:
    """The sizes of one decoded token of `trace`'s model.

    The shape: `model` (a `stmoe.sim.models` registry name or Hugging Face id), else the entry
    matching the trace's recorded model name, else the shape a recorder stored
    (``meta["model_config"]``); `hidden`, `ffn`, `heads`, `kv_heads`, `head_dim` override it.
    The bytes: `dtype` when given; else the recorder's measured ``meta["expert_bytes"]`` (and
    ``meta["dense_bytes"]``) when the shape is the trace's own; else the trace's dtype, else
    bfloat16, said in `source`. context: tokens of KV cache each decoded token reads (default:
    the mean over the trace's decode tokens of the tokens before them in their sequence)."""
    L, E, meta = trace.num_layers, trace.num_experts, trace.meta
    given = {"hidden": hidden, "ffn": ffn, "heads": heads, "kv_heads": kv_heads, "head_dim": head_dim}
    for k, v in given.items():
        if v is not None and (not isinstance(v, (int, np.integer)) or v <= 0):
            raise ConfigError(f"{k} must be a positive integer, got {v!r}")
    cfg = get_model(model) if model is not None else (find_model(meta.get("model"))
                                                      or find_model(meta.get("model_path")))
    recorded = meta.get("model_config") or {}
    if cfg is not None:
        how_found = "--model" if model is not None else "the trace's model name"
        where = f"the registry's {cfg.name} ({how_found})"
        shape = {"hidden": cfg.hidden, "ffn": cfg.ffn, "heads": cfg.heads, "kv_heads": cfg.kv_heads, "head_dim": cfg.head_dim}
    elif recorded.get("hidden") and recorded.get("ffn"):
        where = f"the model config the recorder stored for {meta.get('model')}"
        shape = {k: recorded.get(k) for k in given}
    elif hidden is not None and ffn is not None:
        where, shape = "arguments", {}
    else:
        raise ConfigError(f"model sizes of trace {trace.label!r} (model {meta.get('model')!r}) are unknown: give "
                          + SIZE_FLAGS.format(", ".join(MODELS)))
    overridden = sorted(k for k, v in given.items() if v is not None)
    shape |= {k: v for k, v in given.items() if v is not None}
    h, f = int(shape["hidden"]), int(shape["ffn"])
    hd = int(shape.get("head_dim") or max(h // int(shape.get("heads") or 16), 1))
    nh = int(shape.get("heads") or max(h // hd, 1))
    nkv = int(shape.get("kv_heads") or nh)
    notes = []
    if cfg is None:   # a recorder's shape or bare arguments: no registry entry to complete it
        vocab = int(recorded.get("vocab") or 0)
        cfg = ModelConfig(str(meta.get("model")), "", hidden=h, ffn=f, experts=E, k=trace.top_k, layers=L,
                          heads=nh, kv_heads=nkv, head_dim=hd, vocab=vocab, tied_embeddings=False, source=where)
        if not vocab:
            notes.append(f"the LM head of {trace.label}'s model is unknown (no vocabulary size): left out; "
                         f"give --model for a registry model")
    else:
        cfg = dataclasses.replace(cfg, hidden=h, ffn=f, heads=nh, kv_heads=nkv, head_dim=hd)
        if (cfg.moe_layers, cfg.experts) != (L, E):
            notes.append(f"{cfg.name} has {cfg.moe_layers} MoE layers of {cfg.experts} experts, trace "
                         f"{trace.label} {L} of {E}: the trace's routing is timed with {cfg.name}'s sizes")
    if overridden:
        where += f", {', '.join(overridden)} given"
    if dtype is not None and dtype not in DTYPE_BYTES:
        raise ConfigError(f"unknown dtype {dtype!r}; valid: {', '.join(DTYPE_BYTES)}")

    expert_params = 3 * h * f                      # SwiGLU: gate, up and down projections
    dense_params = cfg.attention_params() + h * E + cfg.shared_experts * 3 * h * cfg.shared_ffn
    measured = meta.get("expert_bytes")
    own_shape = model is None and not overridden
    if dtype is None and own_shape and measured is not None and len(measured) == L and all(measured):
        expert_bytes = np.asarray(measured, dtype=np.float64)
        bpp = float(expert_bytes.mean() / expert_params)   # the recorder's bytes per parameter
        dense = meta.get("dense_bytes")
        if dense is not None and len(dense) == L and all(dense):
            dense_bytes = np.asarray(dense, dtype=np.float64)
            how = "expert and dense bytes measured by the recorder"
        else:
            dense_bytes = np.full(L, dense_params * bpp)
            how = "expert bytes measured by the recorder, dense bytes at their bytes per parameter"
        how += f" ({bpp:.3g} bytes/parameter; LM head at that rate)"
        kv_elem = 2.0
    else:
        if dtype is not None:
            how = dtype
        elif meta.get("dtype") in DTYPE_BYTES:
            dtype, how = meta["dtype"], f"{meta['dtype']} (the trace's)"
        else:
            dtype, how = "bfloat16", "bfloat16 (default; give --dtype)"
        bpp = DTYPE_BYTES[dtype]
        expert_bytes = np.full(L, expert_params * bpp)
        dense_bytes = np.full(L, dense_params * bpp)
        kv_elem = 4.0 if dtype == "float32" else 2.0
    # KV cache in 16-bit floats unless the weights are float32 (llama.cpp's and vLLM's default
    # cache types are fp16/bf16 whatever the weights' quantisation)
    ctx = mean_context(trace) if context is None else check_context(context)
    kv_bytes = ctx * cfg.kv_elements_per_token() * kv_elem
    kv_macs = ctx * cfg.kv_macs_per_token()
    lm_head_params = cfg.vocab * h
    dense_layer_params = cfg.dense_layers * (cfg.attention_params() + 3 * h * cfg.dense_ffn)
    head_bytes = (lm_head_params + h + dense_layer_params) * bpp + cfg.dense_layers * kv_bytes
    head_macs = lm_head_params + dense_layer_params + cfg.dense_layers * kv_macs
    ctx_how = (f"{ctx:.0f} tokens of context (mean over the trace's decode tokens; give --context)"
               if context is None else f"{ctx:.0f} tokens of context (given)")
    attention = cfg.attention_matrices()
    shared = cfg.shared_experts * ((h, cfg.shared_ffn), (h, cfg.shared_ffn), (cfg.shared_ffn, h))
    dense_layer = (*attention, (h, cfg.dense_ffn), (h, cfg.dense_ffn), (cfg.dense_ffn, h))
    head = (((h, cfg.vocab),) if cfg.vocab else ()) + cfg.dense_layers * dense_layer
    return ModelDims(expert_bytes=expert_bytes, expert_macs=float(expert_params), dense_bytes=dense_bytes,
                     dense_macs=float(dense_params), kv_bytes=float(kv_bytes), kv_macs=float(kv_macs),
                     head_bytes=float(head_bytes), head_macs=float(head_macs),
                     lm_head_bytes=float(lm_head_params * bpp), bytes_per_param=bpp, context_tokens=ctx,
                     source=f"{where}; {how}; {ctx_how}", model=cfg.name if cfg.hf_id else None,
                     expert_matrices=((h, f), (h, f), (f, h)), dense_matrices=(*attention, (h, E), *shared),
                     head_matrices=head,
                     notes=tuple(notes))


PLAIN_DECIMAL = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*", re.ASCII)


def check_context(tokens, as_given: str | None = None) -> float:
    """`tokens` of KV cache a decoded token reads, as a plain float, when it is a number from 0
    to `MAX_CONTEXT`; else a ConfigError quoting `as_given`, the value as the user typed it
    (a command line's "-5", not the float "-5.0"; default: repr of `tokens`)."""
    try:
        # float() also reads "1_000" and non-ASCII digits; a typed value is a plain decimal
        ctx = np.nan if isinstance(tokens, str) and not PLAIN_DECIMAL.fullmatch(tokens) else float(tokens)
    except (TypeError, ValueError):
        ctx = np.nan
    if not 0 <= ctx <= MAX_CONTEXT:   # also refuses nan
        shown = as_given or repr(tokens)   # an empty text shows as ''
        raise ConfigError(f"context must be a number of tokens from 0 to {MAX_CONTEXT}, got {shown}")
    return ctx


def mean_context(trace) -> float:
    """Mean number of earlier tokens in their sequence over the trace's decode tokens (all
    tokens if it has none): the KV cache a decoded token reads."""
    seq = np.asarray(trace.sequence)
    if seq.size == 0:
        return 0.0
    starts = np.r_[True, seq[1:] != seq[:-1]]
    first = np.maximum.accumulate(np.where(starts, np.arange(seq.size), 0))
    pos = np.arange(seq.size) - first
    decode = np.asarray(trace.phase) == 1
    return float(pos[decode].mean() if decode.any() else pos.mean())
