"""The hardware-tuning explorer recomputes from the package when a slider moves."""

from stmoe.book import hardware_tuning as ht
from stmoe.widgets.hardware_tuning import EXPLORER_SYSTEMS, tuning_explorer
from tests.prefetch_data import small_held_out


def test_tuning_explorer_follows_its_sliders():
    data = small_held_out()
    ex = tuning_explorer(data, sequences=2)
    ex.set(link_gbps=64, buffer=0.1, pe_side=32, lookahead=2)
    part = data.subset(2)
    hw = ht.machine("accelerator", link_gbps=64, buffer_mib=0.1 * ht.experts_mib(part), pe_side=32)
    st = [r for r in ht.tuning_rows(part, hw, lookahead=2, systems=EXPLORER_SYSTEMS) if r["system"] == "st-moe"][0]
    lat = f"{st['latency_per_token_s'] * 1e6:.2f} µs"
    assert lat in ex.readout.value and "lookahead 2" in ex.readout.value and "32x32 PEs" in ex.readout.value
    assert ex.jchart.spec["title"].startswith(f"st-moe {lat}/token")
    bars = {v["system"]: v["value"] for v in ex.jchart.spec["hconcat"][1]["data"]["values"]}
    assert abs(bars["st-moe"] - st["energy_per_token_j"] * 1e6) < 1e-9
