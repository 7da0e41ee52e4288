"""`stmoe report` on small traces made here: files written, failures reported, offline HTML."""

import json
import re

import pytest

from stmoe import synthetic_trace
from stmoe.cli import main
from stmoe.report import write_report


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    path = synthetic_trace(num_tokens=600, num_layers=6, num_experts=16, top_k=2, num_sequences=4,
                           prompt_tokens=8, seed=5).save(tmp / "synth.npz")
    bad = tmp / "broken.csv"
    bad.write_text("# route_trace v1\n")
    messages = []
    summary = write_report([str(path), str(bad)], tmp / "out", progress=messages.append)
    return tmp / "out", summary, messages


def test_report_contents(report_dir):
    out, summary, messages = report_dir
    assert [t["label"] for t in summary["traces"]] == ["synthetic-seed5 (synthetic)"]
    assert len(summary["failed"]) == 1 and "broken.csv" in summary["failed"][0]["error"]
    assert any("simulating systems on accelerator" in m for m in messages)
    assert any("analysing routing structure" in m for m in messages)
    page = (out / "report.html").read_text()
    assert "broken.csv" in page and "(synthetic)" in page and "reuse of previous token" in page
    # recall chart, one system chart and one tornado per preset, at Qwen3-30B-A3B's sizes since
    # the synthetic trace has none of its own, which the notes say
    assert page.count("<svg") == 7 and page.count("Sensitivity to the") == 3
    assert "own model sizes are unknown" in page
    # Self-contained: no scripts, no external resources.
    assert "<script" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?https?://""", page)
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert len(figures) == 14 and all(n.endswith((".svg", ".png")) for n in figures)
    saved = json.loads((out / "summary.json").read_text())
    res = saved["traces"][0]
    recall = {r["predictor"]: r["recall"] for r in res["prediction"]["rows"]}
    assert recall["oracle"] == 1.0
    assert set(res["systems"]) == {"accelerator", "gpu-pcie", "edge-flash"}
    assert all(n.startswith("routing of synthetic-seed5 (synthetic) replayed with qwen3-30b-a3b's sizes")
               for n in (res["systems"][p]["notes"][0] for p in res["systems"]))
    acc = {r["system"]: r for r in res["systems"]["accelerator"]["rows"]}
    assert acc["on-demand"]["speedup_vs_on_demand"] == 1.0
    assert acc["all-resident"]["speedup_vs_on_demand"] >= acc["st-moe"]["speedup_vs_on_demand"]
    sens = res["sensitivity"]["gpu-pcie"]
    assert sens["speedup"] == pytest.approx(
        {r["system"]: r for r in res["systems"]["gpu-pcie"]["rows"]}["st-moe"]["speedup_vs_on_demand"])
    assert {r["field"] for r in sens["rows"]} >= {"link_latency", "static_w"}
    # the cache baselines beside st-moe, profiled on the other half of the trace's sequences
    assert {"lru-cache", "hot-set"} <= set(acc)
    notes = res["systems"]["accelerator"]["notes"]
    assert any(n.startswith("profile: the first half of") for n in notes)
    assert any(n.startswith("speculative-gate skipped:") for n in notes)   # a synthetic trace has no stale gate
    # intervals: in the saved rows and printed beside the figures in the page's tables
    st = acc["st-moe"]
    assert st["speedup_vs_on_demand_ci_low"] <= st["speedup_vs_on_demand"] <= st["speedup_vs_on_demand_ci_high"]
    assert f"{st['speedup_vs_on_demand']:.3f} [{st['speedup_vs_on_demand_ci_low']:.3f}, " in page
    # what prediction adds over caching: st-moe over the fastest cache baseline, paired interval
    cache = res["systems"]["accelerator"]["over_best_cache"]
    assert cache["baseline"] in ("lru-cache", "hot-set")
    assert res["systems"]["accelerator"]["over_best_prefetcher"] is None   # speculative-gate skipped
    assert cache["speedup_ci_low"] <= cache["speedup"] <= cache["speedup_ci_high"]
    assert (f"fastest pure cache (no prefetching) on the same buffer ({cache['baseline']}): "
            f"{cache['speedup']:.3f} [{cache['speedup_ci_low']:.3f}, {cache['speedup_ci_high']:.3f}]x speedup") in page
    assert "a difference under 0.5% called negligible" in page
    cct = next(r for r in res["prediction"]["rows"] if r["predictor"] == "cct")
    assert f"{cct['recall']:.3f} [{cct['recall_ci_low']:.3f}, {cct['recall_ci_high']:.3f}]" in page
    assert "bootstrap over 4 sequences" in page and "layer pairs significant after Holm" in page


def test_report_cli_exit_codes(tmp_path, capsys):
    """2 when no trace could be studied (no empty summary header), 1 when some failed."""
    bad = tmp_path / "empty.csv"
    bad.write_text("")
    assert main(["report", str(bad), "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    # one line on stderr (after the progress lines), nothing on stdout
    last = captured.err.strip().splitlines()[-1]
    assert last.startswith("stmoe: no trace could be studied:") and "empty.csv" in last and "file is empty" in last
    assert captured.out == ""
    good = synthetic_trace(64, 3, 8, 2, num_sequences=4, prompt_tokens=8, seed=0).save(tmp_path / "t.npz")
    assert main(["report", str(good), str(bad), "--out", str(tmp_path / "out2")]) == 1
    out = capsys.readouterr().out
    assert "st-moe on the accelerator preset" in out and "no trace could be studied" not in out
    assert re.search(r"(lru-cache|hot-set): \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\] / ", out)   # named, with intervals
    assert re.search(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", out.split("speedup (own sizes)")[1])


@pytest.mark.parametrize(("value", "lo", "hi", "words"), [
    (1.003, 1.002, 1.003, "a real but negligible difference (under 0.5%)"),
    (1.003, 0.999, 1.006, "no difference the intervals can resolve"),
    (1.04, 0.98, 1.09, "no difference the intervals can resolve"),
    (1.04, 1.02, 1.06, "faster"),
    (0.97, 0.95, 0.99, "slower"),
    (1.003, None, None, "a negligible difference (under 0.5%) (no interval: too few units)")])
def test_the_verdict_follows_both_the_interval_and_the_tolerance(value, lo, hi, words):
    from stmoe.report import _difference
    assert _difference({"speedup": value, "speedup_ci_low": lo, "speedup_ci_high": hi}, "speedup") == words


@pytest.mark.parametrize("out", ["afile", "afile/sub"])
def test_report_out_must_be_a_directory(tmp_path, capsys, out):
    (tmp_path / "afile").write_text("keep me")
    trace = synthetic_trace(64, 3, 8, 2, num_sequences=2, prompt_tokens=8, seed=0).save(tmp_path / "t.npz")
    assert main(["report", str(trace), "--out", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "afile" in err and "not a directory" in err
    assert (tmp_path / "afile").read_text() == "keep me"


def test_study_says_where_the_papers_gains_would_hold():
    from stmoe import load_trace
    from stmoe.report import _conditions_section
    from stmoe.report.study import PAPER_GRID, study
    code = load_trace("tiny-moe-code")
    trace = code.select(sequences=code.sequence_ids()[:4])
    block = study(trace, presets=("accelerator",), predictors=("popularity",))["paper_conditions"]
    # the simulated half holds 2 sequences: too few for a batch of 8, left out and said
    assert block["grid"]["batch"] == [1] and 8 in PAPER_GRID["batch"]
    assert "batch 8 left out of the grid: the simulated half holds 2 sequence(s)" in block["notes"]
    points = len(PAPER_GRID["buffer_bytes"]) * len(PAPER_GRID["dense_bandwidth"]) * len(PAPER_GRID["baseline_hardware"])
    assert block["summary"]["all"]["of"] == points
    for target, v in block["summary"].items():
        assert 0 <= v["points"] <= points and set(v["needs"]) <= set(PAPER_GRID), target
    page = _conditions_section(block)
    assert "Where the paper's gains would hold" in page and "2.5x / 2.5x over on-demand" in page
    assert f"{block['summary']['all']['points']} of {points} points" in page


def test_a_trace_with_a_very_long_name_still_gets_its_report(tmp_path):
    """Found by the session-3 hostile review: figure files named after a 240-character trace name
    were too long to write, and no report was written at all."""
    import shutil

    from stmoe.readers.catalog import DATA_DIR
    from stmoe.report import write_report
    long = tmp_path / ("d" * 240 + ".npz")
    shutil.copy(DATA_DIR / "qwen3-30b-a3b.npz", long)
    summary = write_report([str(long)], tmp_path / "out")
    assert not summary["failed"] and (tmp_path / "out" / "report.html").is_file()
    assert max(len(p.name) for p in (tmp_path / "out" / "figures").iterdir()) < 120
