"""The HTML report in a real browser: its charts draw, and it asks for nothing off the machine."""

from stmoe import synthetic_trace
from stmoe.report import write_report


def test_report_draws_offline(tmp_path, page):
    path = synthetic_trace(num_tokens=400, num_layers=4, num_experts=16, top_k=2, num_sequences=4,
                           prompt_tokens=8, seed=2).save(tmp_path / "synth.npz")
    summary = write_report([str(path)], tmp_path / "out")
    page.goto((tmp_path / "out" / "report.html").as_uri())
    figures = page.locator(".figure svg")
    res = summary["traces"][0]
    expected = 1 + len(res["systems"]) + len(res["sensitivity"])   # recall, systems, tornados
    assert expected == 7 and figures.count() == expected
    for i in range(expected):
        box = figures.nth(i).bounding_box()
        assert box and box["width"] > 100 and box["height"] > 50
    # The recall chart drew one bar per predictor.
    bars = page.locator(".figure svg").first.locator("path[aria-roledescription='bar']")
    assert bars.count() == len(summary["traces"][0]["prediction"]["rows"])
    assert page.outside_requests == []
