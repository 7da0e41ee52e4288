"""The paper-gap chart draws exactly the gains stmoe.book.reproduction computes."""

import pytest

import stmoe
from stmoe.book import reproduction as R
from stmoe.charts import render_svg
from stmoe.charts.reproduction import paper_gap_chart
from stmoe.sim.hardware import model_dims


@pytest.fixture(scope="module")
def gain_rows():
    trace = stmoe.synthetic_trace(1200, 4, 16, 2, num_sequences=6, prompt_tokens=16, seed=5)
    rows, _ = R.compare(trace, "accelerator", dims=model_dims(trace, hidden=128, ffn=64, dtype="float32"))
    return R.gains(rows)


def test_spec_holds_measured_and_paper_gains(gain_rows):
    spec = paper_gap_chart(gain_rows, "gap").to_dict()
    assert spec["facet"]["column"]["field"] == "measure"
    bars, rule = spec["spec"]["layer"]
    assert bars["mark"]["type"] == "bar" and rule["mark"]["type"] == "rule"
    assert bars["encoding"]["x"]["field"] == "gain" and bars["encoding"]["yOffset"]["field"] == "source"
    values = {(v["baseline"], v["measure"], v["source"]): v["gain"] for v in spec["data"]["values"]}
    for g in gain_rows:
        assert values[f"vs {g['baseline']}", g["measure"], "measured"] == pytest.approx(g["measured"])
        assert values[f"vs {g['baseline']}", g["measure"], "paper (reported)"] == g["paper"]
    assert spec["usermeta"]["embedOptions"]["renderer"] == "svg"


def test_renders_offline(gain_rows):
    svg = render_svg(paper_gap_chart(gain_rows, "st-moe gap title"))
    assert svg.startswith("<svg") and "st-moe gap title" in svg
