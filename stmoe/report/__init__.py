"""`stmoe report`: the whole study on several traces, written as a self-contained HTML page
plus SVG and PNG figures. A trace that fails to load or to be studied, for whatever reason, is
listed with its one-line error and the others still run."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Callable, Iterable

from stmoe.bootstrap import with_interval
from stmoe.charts.comparison import recall_bars_chart, system_speedup_chart
from stmoe.charts.sensitivity import tornado_chart
from stmoe.errors import ConfigError, StmoeError, one_line
from stmoe.files import atomic_write, check_name
from stmoe.readers.catalog import load_trace, project_traces
from stmoe.report import html
from stmoe.report.figures import renderer_problem, save_figure
from stmoe.report.study import study
from stmoe.sim.comparison import readable
from stmoe.sim.sensitivity import Sensitivity
from stmoe.version import __version__


def _slug(text: str) -> str:
    """A file-name-safe form of a trace's name, at most 60 characters (figure names add to it and
    a file name may have 255 bytes): a long name keeps its start and a hash of the whole."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "trace"
    if len(slug) <= 60:
        return slug
    return f"{slug[:47]}-{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"


def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def default_traces() -> list[str]:
    names = project_traces()
    if not names:
        raise StmoeError("report: no traces given and none bundled in data/; pass trace paths")
    return names


def write_report(traces: Iterable[str], out_dir: str | os.PathLike, *,
                 progress: Callable[[str], None] = lambda msg: None) -> dict:
    """Run the study on each trace and write `report.html`, `summary.json` and figures to
    out_dir. Returns the summary (with `failed`: traces that could not be loaded or studied, and
    `charts_not_rendered`: why the charts are Vega-Lite specs instead of figures, or None)."""
    check_name(out_dir, ConfigError)
    out = Path(out_dir)
    blocker = next((p for p in (out, *out.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise ConfigError(f"out_dir {str(out)!r}: {blocker} is a file, not a directory")
    try:
        (out / "figures").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"out_dir {str(out)!r}: cannot create the report directory "
                          f"({exc.strerror or exc})") from None
    problem = renderer_problem()
    results, failed, sections, slugs = [], [], [], set()
    for name in traces:
        start = time.perf_counter()
        progress(f"loading {name}")
        try:
            trace = load_trace(name)
            res = study(trace, progress=progress)
        except Exception as exc:  # noqa: BLE001 - one bad trace must not cost the others their report
            error = one_line(exc)
            failed.append({"trace": str(name), "error": error})
            progress(f"FAILED {name}: {error}")
            sections.append(f"<h2 class='failed'>{html.esc(name)}: not included</h2>"
                            f"<p class='failed'>{html.esc(error)}</p>")
            continue
        res["trace"] = str(name)
        res["seconds"] = round(time.perf_counter() - start, 2)
        results.append(res)
        sections.append(_section(res, out, problem, _unique(_slug(res["summary"]["name"]), slugs)))
        progress(f"{trace.label}: done in {res['seconds']:.1f} s")
    intro = ("<p>What a spatio-temporal expert prefetcher (ST-MoE, arXiv 2606.15453) buys on each "
             "trace below: how predictable expert requests are one layer ahead (recall at budget "
             "m = k, scored only on tokens the predictor was not profiled on), and what that is worth "
             "in latency and energy on three hardware presets, against on-demand loading, against "
             "the pure caches (lru-cache, hot-set: no prefetching) that show what prediction adds over "
             "caching, and against the other prefetcher (speculative-gate, which reads the next "
             f"router early). A difference under {NEGLIGIBLE:.1%} is called negligible.</p>")
    if problem:
        intro += f"<p class='failed'>Charts not rendered: {html.esc(problem)}.</p>"
    if failed:
        intro += "<p class='failed'>" + "<br>".join(html.esc(f"{f['trace']}: {f['error']}") for f in failed) + "</p>"
    page = html.page("stmoe report", intro, sections, __version__)
    _atomic_write(out / "report.html", page.encode())
    summary = {"traces": results, "failed": failed, "charts_not_rendered": problem, "version": __version__}
    _atomic_write(out / "summary.json", json.dumps(summary, indent=1, default=str).encode())
    return summary


def _unique(slug: str, taken: set[str]) -> str:
    """`slug`, or `slug-2`, `slug-3`, ... when another trace of the report has it (two files of one
    trace name would otherwise write the same figures); taken is updated."""
    unique, n = slug, 2
    while unique in taken:
        unique, n = f"{slug}-{n}", n + 1
    taken.add(unique)
    return unique


def _section(res: dict, out: Path, problem: str | None, slug: str) -> str:
    """A trace's part of the page; its figures are files named `slug`-*."""
    s = res["summary"]
    parts = [f"<h2>{html.esc(res['label'])}</h2>",
             f"<p>{html.esc(s['model'])}: {s['num_layers']} MoE layers, {s['num_experts']} experts, "
             f"top-{s['top_k']}; {s['tokens']} tokens ({s['prefill_tokens']} prefill, "
             f"{s['decode_tokens']} decode) in {s['sequences']} sequence(s).</p>"]
    prov = {k: res["meta"].get(k) for k in ("source", "license", "domain", "model_revision", "recorded_with",
                                            "attribution", "format") if res["meta"].get(k)}
    if prov:
        parts.append("<p class='note'>" + "; ".join(f"{html.esc(k)}: {html.esc(v)}" for k, v in prov.items()) + "</p>")
    parts += [f"<p class='caveat'>caveat: {html.esc(c)}</p>" for c in s["caveats"]]
    parts.append(f"<h3>Routing structure ({html.esc(res['analysis']['phase'])} tokens)</h3>")
    parts.append(html.table(res["analysis"]["rows"], ["measure", "value", "reference"]))
    pred = res["prediction"]
    rows = pred["rows"]
    phase = rows[0]["phase"] if rows else "decode"
    budget = rows[0]["budget"] if rows else s["top_k"]
    chance = budget / s["num_experts"]
    chart = recall_bars_chart(rows, f"{res['label']}: {phase} recall at m = {budget}", chance=chance,
                         sort_by_recall=True)
    parts.append(f"<h3>Prediction ({phase} tokens, chance m/E = {chance:.3f})</h3>")
    parts.append(html.figure(save_figure(chart, out, f"{slug}-recall", problem),
                             f"Recall one layer ahead at budget m = {budget}; the dashed line is chance."))
    parts.append(html.table([{**r, "recall [95% CI]": with_interval(r, "recall")} for r in rows],
                            ["predictor", "phase", "budget", "recall [95% CI]", "precision", "exact", "cells"]))
    parts += [f"<p class='note'>{html.esc(phase)}: {html.esc(how)}</p>"
              for phase, how in pred["protocol"]["intervals"].items()]
    parts += [f"<p class='note'>note: {html.esc(n)}</p>" for n in pred.get("notes", [])]
    for hw_name, block in res["systems"].items():
        chart = system_speedup_chart(block["rows"], f"{res['label']} on {hw_name}")
        parts.append(f"<h3>Systems on the {html.esc(hw_name)} preset (decode)</h3>" if "," not in hw_name
                     else f"<h3>Systems on the {html.esc(hw_name)} (decode)</h3>")
        parts.append(html.figure(save_figure(chart, out, f"{slug}-{_slug(hw_name)}", problem),
                                 "Speedup and energy efficiency over on-demand; * changes routing."))
        parts.append(html.table([readable(r) for r in block["rows"]]))
        parts += [f"<p>{html.esc(line)}</p>" for line in over_baselines_text(block)]
        parts += [f"<p class='note'>note: {html.esc(n)}</p>" for n in block["notes"]]
    for block in res.get("sensitivity", {}).values():
        parts.append(_sensitivity_section(Sensitivity(**block), res["label"], out, slug, problem))
    if "paper_conditions" in res:
        parts.append(_conditions_section(res["paper_conditions"]))
    return "".join(parts)


# A gain under half a per cent is negligible: the tolerance tests/test_timing.py holds st-moe to
# against lru-cache (a wrong prefetch can evict a useful expert).
NEGLIGIBLE = 0.005


def _difference(gain: dict, field: str) -> str:
    """What `gain[field]` (a ratio of `over_best`, with its interval) says, in words, from both
    facts: whether its interval excludes 1, and whether it is at least NEGLIGIBLE away from 1."""
    value, lo, hi = gain[field], gain[f"{field}_ci_low"], gain[f"{field}_ci_high"]
    if lo is not None and lo <= 1 <= hi:
        return "no difference the intervals can resolve"
    unresolved = " (no interval: too few units)" if lo is None else ""
    if abs(value - 1) < NEGLIGIBLE:
        return ("a real but negligible difference" if lo is not None else "a negligible difference") + (
            f" (under {NEGLIGIBLE:.1%})" + unresolved)
    if field == "speedup":
        return ("faster" if value > 1 else "slower") + unresolved
    return ("less energy per token" if value > 1 else "more energy per token") + unresolved


def over_baselines_text(block: dict) -> list[str]:
    """What st-moe adds over the best pure cache and over the best other prefetcher of a preset's
    comparison (`stmoe.report.study.over_baselines`), a sentence each, naming the baseline."""
    lines = []
    for key, what in (("over_best_cache", ("What prediction adds over caching: st-moe against the fastest "
                                            "pure cache (no prefetching) on the same buffer")),
                      ("over_best_prefetcher", "st-moe against the other prefetcher on the same buffer")):
        gain = block.get(key)
        if gain is None:
            continue
        lines.append(f"{what} ({gain['baseline']}): {with_interval(gain, 'speedup')}x speedup "
                     f"({_difference(gain, 'speedup')}), {with_interval(gain, 'energy_efficiency')}x energy "
                     f"efficiency ({_difference(gain, 'energy_efficiency')}); 95% paired intervals, a difference "
                     f"under {NEGLIGIBLE:.1%} called negligible.")
    return lines


def _conditions_section(block: dict) -> str:
    """Which of the stated assumptions the ST-MoE paper's gains need, as a table per target."""
    grid = "; ".join(f"{k} in {', '.join(f'{v:.4g}' if isinstance(v, float | int) else str(v) for v in vals)}"
                     for k, vals in block["grid"].items())
    rows = [{"target": target, "reached at": f"{v['points']} of {v['of']} points",
             "needs": "; ".join(f"{k} = {', '.join(map(str, vals))}" for k, vals in v["needs"].items())
             or ("nothing in the grid" if v["points"] == v["of"] else "no point reaches it" if not v["points"]
                 else "no single assumption")}
            for target, v in block["summary"].items()]
    gains = ", ".join(f"{s}x / {e}x over {b}" for b, (s, e) in block["targets"].items())
    return "".join([
        "<h3>Where the paper's gains would hold (accelerator, decode)</h3>",
        f"<p>ST-MoE reports speedup / energy efficiency of {html.esc(gains)}. Each grid point "
        f"({html.esc(grid)}) is simulated; a target is reached where st-moe's gain is at least "
        "the paper's.</p>",
        html.table(rows, ["target", "reached at", "needs"]),
        *[f"<p class='note'>note: {html.esc(n)}</p>" for n in block["notes"]]])


def _sensitivity_section(result: Sensitivity, label: str, out: Path, slug: str, problem: str | None) -> str:
    chart = tornado_chart(result, f"{label} on {result.hardware}: each assumed constant over its range")
    rows = [{"constant": r["field"], "preset": f"{r['value']:.4g} {r['unit']}",
             "range": f"{r['low']:.4g} to {r['high']:.4g}", "speedup": f"{r['speedup_low']:.3f} to "
             f"{r['speedup_high']:.3f}", "energy eff.": f"{r['energy_efficiency_low']:.3f} to "
             f"{r['energy_efficiency_high']:.3f}", "source of the range": r["source"]} for r in result.rows]
    return "".join([
        f"<h3>Sensitivity to the {html.esc(result.hardware)} preset's assumed constants (decode)</h3>",
        html.figure(save_figure(chart, out, f"{slug}-{_slug(result.hardware)}-sensitivity", problem),
                    f"st-moe over on-demand: {result.speedup:.3f}x speedup and {result.energy_efficiency:.3f}x "
                    "energy efficiency at the preset (dashed); each bar is one constant set to one end of "
                    "its range, the others kept; largest swing first."),
        html.table(rows),
        *[f"<p class='note'>note: {html.esc(n)}</p>" for n in result.notes]])
