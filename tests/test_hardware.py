"""Hardware descriptions: presets, validation, model sizes."""

import numpy as np
import pytest

import stmoe
import stmoe.sim.timing
from stmoe.errors import ConfigError, HardwareError, StmoeError
from stmoe.sim.hardware import MAX_CONTEXT, PRESETS, check_context, model_dims, preset


def test_presets_are_valid_and_overridable():
    for name in ("accelerator", "gpu-pcie", "edge-flash"):
        hw = preset(name)
        assert hw.name == name and hw.peak_macs > 0
    assert preset("gpu-pcie", link_bandwidth=64e9).link_bandwidth == 64e9
    # the link is the slow path on every preset: that is what makes expert loading stall
    assert all(h.link_bandwidth < h.local_bandwidth for h in PRESETS.values())


@pytest.mark.parametrize("field,value,match", [
    ("link_bandwidth", 0.0, "link_bandwidth must be positive"),
    ("link_bandwidth", -5e9, "link_bandwidth must be positive"),
    ("buffer_bytes", 0, "buffer_bytes must be positive"),
    ("link_latency", -1e-6, "link_latency must not be negative"),
    ("clock_hz", float("nan"), "clock_hz must be a finite number"),
])
def test_bad_hardware_is_rejected(field, value, match):
    with pytest.raises(HardwareError, match=match):
        preset("accelerator", **{field: value})


def test_unknown_preset_and_field():
    with pytest.raises(HardwareError, match="unknown hardware preset 'tpu'.*accelerator"):
        preset("tpu")
    with pytest.raises(HardwareError, match="unknown hardware field"):
        preset("accelerator", bandwith=1e9)
    assert issubclass(HardwareError, StmoeError)


def test_buffer_smaller_than_one_expert(qwen):
    tr = stmoe.load_trace(qwen)
    with pytest.raises(HardwareError, match="smaller than one expert"):
        stmoe.sim.timing.simulate(tr, preset("accelerator", buffer_bytes=1e6), "on-demand")


def test_expert_bytes_from_recorder_or_dims(qwen):
    tr = stmoe.load_trace(qwen)
    d = model_dims(tr)
    assert np.array_equal(d.expert_bytes, np.asarray(tr.meta["expert_bytes"], float))
    assert d.expert_macs == 3 * 2048 * 768
    syn = stmoe.synthetic_trace(50, 4, 16, 2, seed=0)
    with pytest.raises(ConfigError, match="are unknown: give --model NAME"):
        model_dims(syn)
    d = model_dims(syn, hidden=1024, ffn=512, dtype="int8")
    assert d.expert_bytes.tolist() == [3 * 1024 * 512] * 4
    with pytest.raises(ConfigError, match="unknown dtype 'fp7'"):
        model_dims(syn, hidden=1024, ffn=512, dtype="fp7")


def test_dense_bandwidth_defaults_to_local_and_is_validated():
    gpu = preset("gpu-pcie")
    assert gpu.dense_bandwidth is None and gpu.dense_read_bandwidth == gpu.local_bandwidth
    assert preset("accelerator").dense_read_bandwidth == 256e9
    with pytest.raises(HardwareError, match="dense_bandwidth must be positive"):
        preset("gpu-pcie", dense_bandwidth=0.0)


@pytest.mark.parametrize("field", ["link_bandwidth", "dense_bandwidth", "local_bandwidth", "clock_hz"])
def test_rates_below_one_per_second_are_refused(field):
    """1e-300 bytes/s is positive but makes every time infinite and the JSON invalid."""
    with pytest.raises(HardwareError, match=f"{field} must be at least 1 per second"):
        preset("accelerator", **{field: 1e-300})


def test_pe_array_shape_and_dataflow():
    acc = preset("accelerator")
    assert acc.dataflow == "os" and acc.pe_array == (128, 128)
    assert preset("accelerator", macs_per_cycle=64 ** 2).pe_array == (64, 64)
    assert preset("accelerator", pe_rows=64, pe_cols=256).pe_array == (64, 256)
    assert preset("accelerator", dataflow="ws").pe_array == (128, 128)
    assert all(preset(n).pe_array is None for n in ("gpu-pcie", "edge-flash"))


@pytest.mark.parametrize("overrides,match", [
    ({"dataflow": "rs"}, "dataflow must be one of os, ws, is \\(or None: a roofline\\), got 'rs'"),
    ({"dataflow": 1.0}, "dataflow must be one of os, ws, is"),
    ({"pe_rows": 64}, "give both pe_rows and pe_cols, or neither"),
    ({"pe_rows": 64, "pe_cols": 128}, "pe_rows x pe_cols = 64 x 128 must equal macs_per_cycle \\(16384\\)"),
    ({"pe_rows": 0.5, "pe_cols": 32768}, "pe_rows must be a whole number, got 0.5"),
    ({"pe_rows": -128, "pe_cols": -128}, "pe_rows must be positive"),
    ({"macs_per_cycle": 1000}, "macs_per_cycle=1000 is not a square number of PEs: give pe_rows and pe_cols"),
    ({"dataflow": None, "pe_rows": 128, "pe_cols": 128}, "pe_rows/pe_cols describe a PE array, which needs a dataflow"),
])
def test_bad_pe_array_is_one_line(overrides, match):
    with pytest.raises(HardwareError, match=match):
        preset("accelerator", **overrides)


def test_sram_leakage_is_cactis_low_standby_power_cell():
    from stmoe.sim.hardware import SRAM_LEAKAGE_RANGE_W_PER_MIB, SRAM_LEAKAGE_W_PER_MIB
    # CACTI 7 tech_params, itrs-lstp at 360 K, interpolated to 40 nm as CACTI does (8/13 on 45 nm):
    # Vdd, I_off_n, I_g_on_n; a cell leaks I_off through 2.08 + 1.23 + 1.31/2 F and I_g through
    # (2.08 + 1.23)/2 F of width
    vdd = 8 / 13 * 1.1 + 5 / 13 * 1.0
    i_off = 8 / 13 * 1.3e-10 + 5 / 13 * 2.4e-10
    i_gate = 8 / 13 * 9.47e-12 + 5 / 13 * 3.73e-11
    cell_a = 0.040 * (3.965 * i_off + 1.655 * i_gate)
    assert cell_a == pytest.approx(28.7e-12, rel=2e-3)
    assert SRAM_LEAKAGE_W_PER_MIB[40] == pytest.approx(2 ** 23 * cell_a * vdd, rel=1e-12)
    hw = preset("accelerator")
    assert hw.static_power_w == pytest.approx(1.0 + 64 * 2 ** 23 * cell_a * vdd)
    # beyond CACTI's smallest node (22 nm) the 22 nm figure is held
    assert SRAM_LEAKAGE_W_PER_MIB[5] == pytest.approx(2 ** 23 * 0.8 * 0.022 * (3.965 * 3.55e-10 + 1.655 * 4.51e-10))
    # the range runs from the same cells at 300 K to CACTI's high-performance cells at 360 K
    low, high = SRAM_LEAKAGE_RANGE_W_PER_MIB[40]
    assert low == pytest.approx(2 ** 23 * vdd * 0.040 * (3.965 * (8 / 13 * 1.01e-11 + 5 / 13 * 2.06e-11)
                                                         + 1.655 * i_gate))
    assert high == pytest.approx(2 ** 23 * (8 / 13 * 1.0 + 5 / 13 * 0.9) * 0.040
                                 * (3.965 * (8 / 13 * 6.42e-7 + 5 / 13 * 5.32e-7)
                                    + 1.655 * (8 / 13 * 3.59e-8 + 5 / 13 * 6.55e-8)))
    assert all(lo < SRAM_LEAKAGE_W_PER_MIB[n] < hi for n, (lo, hi) in SRAM_LEAKAGE_RANGE_W_PER_MIB.items())


def test_context_is_checked_and_quoted_as_given():
    assert type(check_context(np.int64(7))) is float and check_context(" 7 ") == 7.0
    assert check_context(MAX_CONTEXT) == MAX_CONTEXT
    with pytest.raises(ConfigError, match=r"from 0 to 2147483647, got -5\.0$"):
        check_context(-5.0)
    with pytest.raises(ConfigError, match=r"got -5$"):
        check_context("-5", as_given="-5")
    with pytest.raises(ConfigError, match=r"got None$"):
        check_context(None)
