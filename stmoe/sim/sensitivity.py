"""How much the presets' assumed constants drive the results: each constant a preset marks
ASSUMPTION (`stmoe.sim.hardware`) is set, one at a time, to the low and the high end of a range,
and st-moe's speedup and energy efficiency over on-demand are measured at both ends.

`RANGES` is the one table of those ranges, each with its source and why. A range's ends are
public figures where we found one; where we did not, the row says so and the range is the
preset's value halved and doubled. A test checks that every constant marked ASSUMPTION in
`hardware.py` has a range here, and that every range is for such a constant (or says it is not).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stmoe.errors import ConfigError, HardwareError
from stmoe.predictors import predict
from stmoe.sim.comparison import buffer_note, dims_for
from stmoe.sim.hardware import PRESETS, SRAM_LEAKAGE_RANGE_W_PER_MIB, Hardware, ModelDims, preset
from stmoe.sim.systems import predictions_note
from stmoe.sim.timing import simulate
from stmoe.trace import DECODE, Trace

HALVED_AND_DOUBLED = "no public figure found: the preset's value halved and doubled"


@dataclass(frozen=True)
class Range:
    """Where one preset's constant may plausibly lie. `marked`: the constant is marked
    ASSUMPTION in `stmoe/sim/hardware.py` (False for a cited value that rests on a design choice
    of ours, said in `why`)."""

    preset: str
    field: str
    low: float
    high: float
    source: str
    why: str
    marked: bool = True


RANGES: tuple[Range, ...] = (
    # accelerator
    Range("accelerator", "link_latency", 50e-9, 500e-9,
          "low: one DRAM row cycle alone, the DMA set-up overlapped (tRC is ~50 ns across DRAM "
          "generations, e.g. 55 ns in Qimonda's DDR2-533 HYS72T datasheet, 2006; HBM keeps the DRAM "
          "core's timing); high: a GPU's global-memory access takes ~200 ns (Zhang, Lipton, Li, Smola, "
          "'Dive into Deep Learning', 2023, ch. Hardware), and a DMA descriptor fetch, the data "
          "access and the completion write are two to three such round trips",
          "how long a fetch waits before its first byte moves: hidden by a prefetch, paid by a miss"),
    Range("accelerator", "buffer_bytes", 40e6, 230e6,
          "low: the A100's 40 MB L2 (NVIDIA A100 Tensor Core GPU Architecture whitepaper, 2020); "
          "high: Groq's LPU, 230 MB of on-chip SRAM (Groq product page)",
          "on-chip SRAM of shipped large accelerators: how much of the model the buffer holds"),
    Range("accelerator", "local_bandwidth", 2.039e12, 47.5e12,
          "low: the A100 80GB's HBM2e, 2,039 GB/s (NVIDIA datasheet), the least an on-chip buffer "
          "would be built to beat; high: Graphcore's Colossus MK2 IPU, 47.5 TB/s to its 900 MB of "
          "on-chip SRAM (Graphcore product page)",
          "sets an expert's compute time (a roofline on weight reads), for every system"),
    Range("accelerator", "static_w", 0.5, 2.0, HALVED_AND_DOUBLED,
          "leakage and clocking of the die beside the buffer: energy only, never latency"),
    Range("accelerator", "dense_bandwidth", 128e9, 460e9,
          "low: a first-generation HBM stack, 1 Gb/s per pin x 1024 = 128 GB/s (JEDEC JESD235, "
          "2013); high: an HBM2E stack at 3.6 Gb/s per pin, 460 GB/s (SK hynix HBM2E announcement, "
          "2019)",
          "the rate is JESD235's, but a second stack for attention weights is our design choice "
          "(the paper does not say where they live); it sets attention time for every system",
          marked=False),
    # gpu-pcie
    Range("gpu-pcie", "link_bandwidth", 15.75e9, 31.5e9,
          "high: PCIe 4.0 x16's 31.5 GB/s per direction (PCI-SIG), 100% efficiency; low: half of it, "
          "since copies from pageable host memory are staged through a pinned buffer (NVIDIA CUDA "
          "C++ Best Practices Guide, 'Pinned Memory'); the 50% is ours",
          "the preset's 80% efficiency of host-to-device copies"),
    Range("gpu-pcie", "link_latency", 5e-6, 21e-6,
          "low: 5-7 us per cudaMemcpyAsync measured by Wu et al., 'DualPath' (arXiv 2602.21548, "
          "2026), lower end; high: an expert as three copies (gate, up and down matrices) at their "
          "upper 7 us each",
          "per-copy software and DMA overhead: hidden by a prefetch, paid by a miss"),
    Range("gpu-pcie", "buffer_bytes", 4 * 2 ** 30, 16 * 2 ** 30, HALVED_AND_DOUBLED,
          "how much HBM a deployment leaves to the expert cache beside attention weights and KV cache"),
    Range("gpu-pcie", "link_pj_per_byte", (20 + 1.93) * 8, (40.6 + 5) * 8,
          "DRAM access 1.3-2.6 nJ per 64-bit access, 20-41 pJ/bit (Horowitz, ISSCC 2014); low: one "
          "PCIe Gen4 transmitter at 1.93 pJ/bit (Bae et al., Electronics 10(1):68, 2021), receiver "
          "not counted; high: Horowitz's upper DRAM figure plus the preset's 5 pJ/bit SerDes",
          "energy per byte moved over the link: energy only"),
    Range("gpu-pcie", "static_w", 50.0, 147.0,
          "low: the idle-with-context increment alone is 26-50 W on HBM GPUs (Vadari, 'The Model "
          "Parking Tax', arXiv 2605.23918, 2026), its top taken as the least; high: an A100 SXM "
          "measured drawing 146.7 W at 0% reported utilisation (Bains, 'The Ghost Power Anomaly', "
          "white paper, 2026)",
          "board power drawn whatever the work: energy only"),
    # edge-flash
    Range("edge-flash", "link_latency", 50e-6, 200e-6, HALVED_AND_DOUBLED,
          "flash random-read latency per expert request"),
    Range("edge-flash", "buffer_bytes", 1 * 2 ** 30, 4 * 2 ** 30, HALVED_AND_DOUBLED,
          "how much of the phone's LPDDR5X is given to the expert cache"),
    Range("edge-flash", "macs_per_cycle", 5.5e3, 17.5e3,
          "an NPU at 1 GHz doing 2 ops per MAC: low, Apple A14's 11 TOPS (Apple, 2020); high, "
          "Apple A17 Pro's 35 TOPS (Apple, 2023)",
          "the NPU's peak: compute time of experts and attention"),
    Range("edge-flash", "static_w", 0.5, 2.0, HALVED_AND_DOUBLED,
          "SoC static power while decoding: energy only"),
)

UNITS = {"link_latency": "s", "buffer_bytes": "B", "local_bandwidth": "B/s", "link_bandwidth": "B/s",
         "dense_bandwidth": "B/s", "static_w": "W", "link_pj_per_byte": "pJ/B", "macs_per_cycle": "MAC/cycle"}


def ranges_for(hardware) -> list[Range]:
    """The ranges of a preset (by name, or a `Hardware` named after a preset)."""
    name = hardware.name if isinstance(hardware, Hardware) else str(hardware)
    mine = [r for r in RANGES if r.preset == name]
    if not mine:
        raise ConfigError(f"no sensitivity ranges for hardware {name!r}; presets with ranges: "
                          f"{', '.join(dict.fromkeys(r.preset for r in RANGES))}")
    return mine


@dataclass
class Sensitivity:
    """st-moe over on-demand on one trace and machine (`speedup`, `energy_efficiency`), and per
    varied constant (`rows`, largest swing first) the same two ratios at the low and high end of
    its range. A row's swing is its value at high minus at low; `relative_swing`, the sort key, is
    the larger of the two swings' sizes, each as a fraction of its baseline ratio."""

    hardware: str
    speedup: float
    energy_efficiency: float
    rows: list[dict]
    notes: list[str] = field(default_factory=list)


def _ratios(trace: Trace, hw: Hardware, dims: ModelDims, predictions) -> tuple[float, float]:
    base = simulate(trace, hw, "on-demand", dims=dims)
    st = simulate(trace, hw, "st-moe", dims=dims, predictions=predictions)
    return (base.latency_per_token_s / st.latency_per_token_s,
            base.energy_per_token_j / st.energy_per_token_j)


def sensitivity(trace: Trace, hardware="accelerator", *, predictions=None, dims: ModelDims | None = None,
                ranges=None) -> Sensitivity:
    """Vary each of the preset's ranged constants (`ranges_for`, or `ranges`) one at a time over
    its range and measure st-moe against on-demand on the trace's decode tokens.

    predictions: st-moe's choices over the decode tokens, computed once and reused by every run
    (default: the st-moe predictor online, no profile, budget k, lookahead 1). A constant the
    caller has set away from the preset's value (a `Hardware` with overrides) is not varied."""
    hw = preset(hardware)
    if not (trace.phase == DECODE).any():
        raise ConfigError(f"trace {trace.label} has no decode tokens to simulate")
    notes: list[str] = []
    if dims is None:
        dims, notes = dims_for(trace)
    if predictions is None:
        predictions = predict(trace.select(phase="decode"), "st-moe")
        notes.append(predictions_note("st-moe", trace.top_k, 1, None))
    notes.append(buffer_note(hw, dims, trace))
    speedup, efficiency = _ratios(trace, hw, dims, predictions)
    rows = []
    reference = PRESETS.get(hw.name)
    for r in ranges_for(hw) if ranges is None else ranges:
        if r.preset != hw.name:
            raise ConfigError(f"ranges: a range of {r.preset}'s {r.field} given for hardware {hw.name!r}")
        value = getattr(hw, r.field)
        if reference is not None and value != getattr(reference, r.field):
            notes.append(f"{r.field} not varied: set to {value:.4g} here, not the {hw.name} preset's "
                         f"assumed {getattr(reference, r.field):.4g}")
            continue
        try:
            low = _ratios(trace, hw.with_(**{r.field: r.low}), dims, predictions)
            high = _ratios(trace, hw.with_(**{r.field: r.high}), dims, predictions)
        except HardwareError as exc:   # e.g. a buffer below one expert at the low end
            notes.append(f"{r.field} not varied: {exc}")
            continue
        swing = (high[0] - low[0], high[1] - low[1])
        rows.append({"field": r.field, "unit": UNITS.get(r.field, ""), "value": float(value),
                     "low": r.low, "high": r.high,
                     "speedup_low": low[0], "speedup_high": high[0], "speedup_swing": swing[0],
                     "energy_efficiency_low": low[1], "energy_efficiency_high": high[1],
                     "energy_efficiency_swing": swing[1],
                     "relative_swing": max(abs(swing[0]) / speedup, abs(swing[1]) / efficiency),
                     "marked_assumption": r.marked, "source": r.source, "why": r.why})
        if not r.marked:
            notes.append(f"{r.field} is not marked ASSUMPTION in the preset, and varied because {r.why}")
    rows.sort(key=lambda row: -row["relative_swing"])
    notes.append("each constant varied alone, the others kept as given; rows sorted by the "
                 "larger of the speedup and energy-efficiency swings, each relative to its baseline")
    notes.append("SRAM_ARRAY_EFFICIENCY (ASSUMPTION) is not varied: it changes the buffer's area, "
                  "never latency or energy")
    if hw.sram_node_nm is not None:
        leak = hw.static_power_w - hw.static_w
        low, high = (hw.buffer_bytes / 2 ** 20 * w for w in SRAM_LEAKAGE_RANGE_W_PER_MIB[int(hw.sram_node_nm)])
        notes.append("SRAM_LEAKAGE_W_PER_MIB (CACTI 7's low-standby-power cells at 360 K) is not varied: "
                     f"the buffer leaks {leak:.3g} W of the {hw.static_power_w:.3g} W static power, "
                     f"{low:.3g} W to {high:.3g} W over SRAM_LEAKAGE_RANGE_W_PER_MIB (the same cells at "
                     "300 K to CACTI's high-performance cells at 360 K); static_w's row shows what "
                     "moving static power does to energy")
    return Sensitivity(hw.name, float(speedup), float(efficiency), rows, notes)

