"""The hardware-tuning explorer recomputes from the package when a slider moves."""

import pytest

from stmoe.book import hardware_tuning as ht
from stmoe.charts.hardware_tuning import LABELS
from stmoe.widgets.hardware_tuning import EXPLORER_SYSTEMS, LINK_GBPS, tuning_explorer
from tests.prefetch_data import small_held_out


def test_tuning_explorer_follows_its_sliders():
    data = small_held_out()
    ex = tuning_explorer(data, sequences=2)
    ex.set(link_gbps=64, buffer=0.1, pe_side=32, lookahead=2)
    part = data.subset(2)
    hw = ht.machine("accelerator", buffer_mib=0.1 * ht.experts_mib(part), pe_side=32)
    rows = ht.bandwidth_rows(part, hw, [g * 1e9 for g in LINK_GBPS], lookahead=2, systems=EXPLORER_SYSTEMS)
    st = next(r for r in rows if r["system"] == "st-moe" and r["value"] == 64e9)
    lat = f"{st['latency_per_token_s'] * 1e6:.2f} µs"
    assert lat in ex.readout.value and "lookahead 2" in ex.readout.value and "32x32 PEs" in ex.readout.value
    assert ex.jchart.spec["title"].startswith(f"st-moe at 64 GB/s: {lat}/token")
    label = LABELS["energy_per_token_j"][0]
    values = [v for v in ex.jchart.spec["data"]["values"] if v["measure"] == label]
    curve = {(v["system"], v["bandwidth"]): v["value"] for v in values}
    assert {b for _, b in curve} == {float(g) for g in LINK_GBPS}
    for r in rows:
        assert curve[r["system"], r["value"] / 1e9] == pytest.approx(r["energy_per_token_j"] * 1e6)
    marked = {v["system"]: v["bandwidth"] for v in values if v["here"]}
    assert set(marked) == set(EXPLORER_SYSTEMS) and set(marked.values()) == {64.0}

def test_tuning_explorer_link_moves_the_marker_only():
    ex = tuning_explorer(small_held_out(), sequences=2)
    rows = ex.result["rows"]
    ex.set(link_gbps=16)
    assert ex.result["rows"] is rows     # the same simulated curve, the marker moved
    st = ex.result["at"]["st-moe"]
    assert st["value"] == 16e9 and f"{st['latency_per_token_s'] * 1e6:.2f} µs" in ex.readout.value
