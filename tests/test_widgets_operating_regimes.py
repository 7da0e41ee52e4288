"""The operating-regimes explorer follows its controls with the package's numbers."""

import stmoe
from stmoe.book import operating_regimes as op
from stmoe.widgets.operating_regimes import batch_explorer


def test_batch_explorer_follows_its_controls():
    ex = batch_explorer(("qwen3-30b-a3b",), batches=(1, 8, 64, 256), dtypes=("bfloat16", "int4"))
    ex.set(batch=64, dtype="int4", hardware="accelerator")
    rows, _ = op.batch_rows(stmoe.load_trace("qwen3-30b-a3b"), "accelerator", ("int4",), (64,))
    r = rows[0]
    assert f"{r['resident_us_per_token']:.1f} µs/token resident" in ex.readout.value
    assert "int4" in ex.readout.value and "B = 64" in ex.chart_title()
    marked = ex.jchart.spec["hconcat"][0]["layer"][2]["data"]["values"]
    assert {v["batch"] for v in marked} == {64}
    ex.set(batch=256)
    assert "has no step of 256 consecutive tokens of one sequence" in ex.readout.value
    ex.set(batch=8, across="sequences")
    assert "no step of B = 8" in ex.readout.value
    assert ex.last_update_s < 0.5
