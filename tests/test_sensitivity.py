"""`stmoe.sim.sensitivity`: every assumed constant has a cited range, and the swings come from
real simulations."""

import dataclasses
import re
from pathlib import Path

import pytest

import stmoe.sim.hardware as hardware_module
from stmoe.sim.hardware import PRESETS, Hardware
from stmoe.sim.sensitivity import RANGES, Range, ranges_for, sensitivity
from stmoe.sim.timing import simulate
from tests.prefetch_data import small_held_out

FIELD = re.compile(r"^\s*(\w+)=")
PRESET = re.compile(r'^\s*"([\w-]+)": Hardware\(')


def marked_in_source() -> dict[tuple[str, str], bool]:
    """(preset, field) -> whether the comments just above the field's line in hardware.py's
    PRESETS say ASSUMPTION."""
    marked, name, comments = {}, None, []
    for line in Path(hardware_module.__file__).read_text().splitlines():
        if (m := PRESET.match(line)):
            name, comments = m[1], []
        elif name and line.strip().startswith("#"):
            comments.append(line)
        elif name and (m := FIELD.match(line)):
            marked[(name, m[1])] = any("ASSUMPTION" in c for c in comments)
            comments = []
    return marked


def test_every_assumption_has_a_cited_range():
    marked = marked_in_source()
    assert {p for p, _ in marked} == set(PRESETS)    # the parser saw every preset
    fields = {f.name for f in dataclasses.fields(Hardware)}
    assumed = {key for key, is_marked in marked.items() if is_marked}
    assert assumed, "no constant marked ASSUMPTION found: the parser no longer reads hardware.py"
    ranged = {(r.preset, r.field) for r in RANGES}
    assert not assumed - ranged, f"constants marked ASSUMPTION without a range in RANGES: {assumed - ranged}"
    assert len(ranged) == len(RANGES)
    for r in RANGES:
        assert r.field in fields and r.preset in PRESETS
        assert marked.get((r.preset, r.field), False) == r.marked, f"{r.preset}.{r.field}: fix `marked`"
        assert r.low < getattr(PRESETS[r.preset], r.field) < r.high, f"{r.preset}.{r.field}"
        assert r.source and r.why


def direct_ratios(data, hw):
    """st-moe over on-demand, simulated here without the module."""
    pred = data.predictions_for(1)
    base = simulate(data.scored, hw, "on-demand", dims=data.dims)
    st = simulate(data.scored, hw, "st-moe", dims=data.dims, predictions=pred)
    return base.latency_per_token_s / st.latency_per_token_s, base.energy_per_token_j / st.energy_per_token_j


def test_swings_come_from_simulations():
    data = small_held_out()
    result = sensitivity(data.scored, "gpu-pcie", predictions=data.predictions_for(1), dims=data.dims)
    assert [r["field"] for r in result.rows] and \
        sorted(r["relative_swing"] for r in result.rows) == [r["relative_swing"] for r in result.rows][::-1]
    assert (result.speedup, result.energy_efficiency) == pytest.approx(direct_ratios(data, PRESETS["gpu-pcie"]))
    row = next(r for r in result.rows if r["field"] == "link_latency")
    low = direct_ratios(data, PRESETS["gpu-pcie"].with_(link_latency=row["low"]))
    assert (row["speedup_low"], row["energy_efficiency_low"]) == pytest.approx(low)
    assert row["speedup_swing"] == pytest.approx(row["speedup_high"] - row["speedup_low"])
    assert row["speedup_swing"] != 0


def test_constant_without_effect_has_no_swing():
    data = small_held_out()
    result = sensitivity(data.scored, "gpu-pcie", predictions=data.predictions_for(1), dims=data.dims)
    rows = {r["field"]: r for r in result.rows}
    # 4 GiB already holds every expert of the small model: a larger buffer changes nothing
    assert rows["buffer_bytes"]["speedup_swing"] == 0 and rows["buffer_bytes"]["energy_efficiency_swing"] == 0
    # static power costs energy, never time
    assert rows["static_w"]["speedup_swing"] == 0 and rows["static_w"]["energy_efficiency_swing"] != 0


def test_wider_range_swings_more():
    data = small_held_out()
    cited = next(r for r in ranges_for("accelerator") if r.field == "dense_bandwidth")
    wider = dataclasses.replace(cited, low=cited.low / 2, high=cited.high * 2)
    swing = [abs(sensitivity(data.scored, "accelerator", predictions=data.predictions_for(1), dims=data.dims,
                             ranges=[r]).rows[0]["speedup_swing"]) for r in (cited, wider)]
    assert 0 < swing[0] < swing[1]


def test_overridden_constant_is_not_varied_and_says_so():
    data = small_held_out()
    hw = PRESETS["gpu-pcie"].with_(static_w=70.0)
    result = sensitivity(data.scored, hw, predictions=data.predictions_for(1), dims=data.dims)
    assert "static_w" not in {r["field"] for r in result.rows}
    assert any(n.startswith("static_w not varied: set to 70 here") for n in result.notes)
    # a range that leaves no room for one expert is skipped with the reason
    tiny = Range("gpu-pcie", "buffer_bytes", 1.0, 2 ** 34, "test", "test")
    result = sensitivity(data.scored, "gpu-pcie", predictions=data.predictions_for(1), dims=data.dims,
                         ranges=[tiny])
    assert result.rows == [] and any("buffer_bytes not varied" in n and "smaller than one expert" in n
                                     for n in result.notes)


def test_unknown_hardware_has_no_ranges():
    from stmoe.errors import ConfigError

    with pytest.raises(ConfigError, match="no sensitivity ranges for hardware 'mine'"):
        ranges_for(PRESETS["accelerator"].with_(name="mine"))
    data = small_held_out()
    with pytest.raises(ConfigError, match="a range of gpu-pcie's static_w given for hardware 'accelerator'"):
        sensitivity(data.scored, "accelerator", predictions=data.predictions_for(1), dims=data.dims,
                    ranges=[r for r in ranges_for("gpu-pcie") if r.field == "static_w"])
