"""Every chart takes its colours and rules from stmoe.charts.theme: a system or predictor has
one colour in every chart, whatever order it comes in, and no chart falls back on Altair's
palette."""

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from stmoe.charts import (comparison, correlation, expert_buffer, hardware_tuning, operating_regimes,
                          predictor_design, reproduction, theme, tour, trace_analysis)
from stmoe.predictors import PREDICTORS
from stmoe.sim.systems import SYSTEMS

CHARTS_DIR = Path(theme.__file__).parent
# a hex colour, a colour or scheme given as a string, or a range of colour strings
COLOUR_LITERAL = re.compile(r"#[0-9a-fA-F]{3,8}\b|\b(?:color|scheme)\s*=\s*['\"]|\brange\s*=\s*\[\s*['\"]")


def _tour_grid(systems):
    return [{"value": bw, "system": s, "buffer_share": 0.5, "latency_per_token_s": 1e-3 * (i + 1) / bw * 1e9,
             "speedup_vs_on_demand": 1.0 + i, "hit_rate": 0.5} for i, s in enumerate(systems) for bw in (10e9, 20e9)]


def _machine_rows(systems):
    return [{"system": s, "value": v, "parameter": "link_bandwidth", "latency_per_token_s": 1e-5 * (i + 1),
             "energy_per_token_j": 1e-4 * (i + 1), "link_utilisation": 0.5}
            for i, s in enumerate(systems) for v in (16e9, 64e9)]


def _split_rows():
    return [{"system": label, "capacity": 48, "share": share, "hit_rate": 0.5, "stall_share": 0.4,
             "late_prefetch_rate": 0.1, "miss_rate": 0.4, "wasted_bytes": 1e6, "tokens": 10}
            for label, share in (("cache only (LRU)", 0.0), ("st-moe, 25% staging", 0.25))]


def every_chart():
    """One of each chart in stmoe/charts, on small hand-made numbers, by name."""
    curves = [{"budget": m, "recall": 0.1 * m, "series": s} for s in ("st-moe", "cct", "chance (m / E)")
              for m in (1, 2)]
    recall = [{"predictor": p, "recall": 0.5} for p in ("popularity", "st-moe", "oracle")]
    systems = [{"system": s, "changes_routing": s == "pre-gated", "speedup_vs_on_demand": 1.5,
                "energy_efficiency_vs_on_demand": 1.2} for s in SYSTEMS]
    gains = [{"value": v, "system": s, "gain": 1.2, "link_utilisation": 0.9}
             for s in ("st-moe", "oracle") for v in (16e9, 64e9)]
    knee = SimpleNamespace(peak_bandwidth=64e9, saturated_below=16e9)
    paper = [{"baseline": b, "measure": m, "measured": 1.5, "paper": 2.0}
             for b in ("on-demand", "pre-gated") for m in ("speedup", "energy efficiency")]
    return {
        "tour": tour.latency_chart(_tour_grid(("on-demand", "st-moe", "oracle")), 0.5, 20e9, "t"),
        "expert share": trace_analysis.expert_share_chart(np.array([3, 1, 0, 2]), "t"),
        "layer stat": trace_analysis.layer_stat_chart(
            [{"group": g, "layer": l, "gini": 0.3} for g in ("code", "prose") for l in (0, 1)], "gini", "t",
            baselines={"code": 0.1, "prose": 0.1}),
        "reuse": correlation.reuse_by_layer_chart([0.4, 0.5], 0.125, "t"),
        "reuse distance": correlation.reuse_distance_chart([3, 1], "t"),
        "heat map": correlation.transition_heatmap(np.eye(3), "t"),
        "mutual information": correlation.mutual_information_chart([0.5, 0.4], [0.02, 0.03], "t"),
        "fit gap": correlation.fit_gap_chart([{"trace": "a", "scoring": s, "recall": 0.5}
                                              for s in ("in-sample", "held-out")], "t"),
        "recall curves": predictor_design.recall_curves_chart(curves, "budget", "t"),
        "recall bars": comparison.recall_bars_chart(recall, "t", chance=0.1),
        "recall bars sorted": comparison.recall_bars_chart(recall, "t", chance=0.1, sort_by_recall=True),
        "speedup": comparison.system_speedup_chart(systems, "t"),
        "replacement": expert_buffer.replacement_chart(
            [{"policy": p, "capacity": c, "hit_rate": 0.5} for p in ("lru", "belady") for c in (8, 16)], "t"),
        "outcome": expert_buffer.outcome_chart(_split_rows(), "t"),
        "share": expert_buffer.share_chart(_split_rows()[1:], "t"),
        "split": expert_buffer.split_chart(
            [{**r, "series": "st-moe" if r["system"].startswith("st-moe") else r["system"],
              "share": None if r["system"].startswith("cache") else r["share"], "latency_per_token_s": 1e-4}
             for r in _split_rows()], 48, 0.25, "t"),
        "sweep": hardware_tuning.sweep_chart(_machine_rows(("lru-cache", "st-moe")), "link_utilisation", "t"),
        "knee": hardware_tuning.knee_chart(gains, knee, "t"),
        "tuning": hardware_tuning.tuning_chart(_machine_rows(("st-moe", "on-demand", "lru-cache"))[::2], "t"),
        "paper gap": reproduction.paper_gap_chart(paper, "t"),
        "batch": operating_regimes.batch_chart(
            [{"batch": b, "resident_us_per_token": 10.0 / b, "streamed_us_per_token": 100.0 / b,
              "share_touched": 0.1 * b, "uniform_share_touched": 0.2 * b} for b in (1, 2, 4)], 2, "t", 0.9),
        "cpu or fetch": operating_regimes.cpu_chart(
            [{"dtype": d, "tokens": m, "fetch_us": 100.0, "cpu_us": 10.0 * m} for d in ("bfloat16", "int4")
             for m in (1, 16)], "t"),
    }


def units(spec, data=None):
    """(data values, unit spec) for every single-view spec in `spec`, with inherited data."""
    data = spec["data"]["values"] if "values" in spec.get("data", {}) else data
    if "mark" in spec:
        yield data, spec
    for key in ("layer", "hconcat", "vconcat", "concat"):
        for child in spec.get(key, []):
            yield from units(child, data)
    if "spec" in spec:
        yield from units(spec["spec"], data)


def colour_scales(spec):
    """{field: {name: colour}} of every nominal colour encoding in a chart spec."""
    scales = {}
    for _, unit in units(spec):
        enc = unit.get("encoding", {}).get("color")
        if enc and enc.get("type") == "nominal":
            scales.setdefault(enc["field"], {}).update(zip(enc["scale"]["domain"], enc["scale"]["range"]))
    return scales


@pytest.fixture(scope="module")
def specs():
    return {name: chart.to_dict() for name, chart in every_chart().items()}


def test_every_system_has_its_own_colour():
    colours = [theme.SYSTEM_COLORS[s] for s in SYSTEMS]
    assert len(set(colours)) == len(SYSTEMS)
    assert all(re.fullmatch(r"#[0-9A-F]{6}", c) for c in colours)


def test_every_predictor_has_its_own_colour_beside_chance():
    names = [*PREDICTORS, "chance (m / E)"]
    colours = [theme.PREDICTOR_COLORS[p] for p in names]
    assert len(set(colours)) == len(names)


def test_a_name_has_one_colour_in_every_table():
    tables = (theme.SYSTEM_COLORS, theme.PREDICTOR_COLORS, theme.CATEGORY_COLORS)
    for name in set().union(*tables):
        assert len({t[name] for t in tables if name in t}) == 1, name
    assert theme.SYSTEM_COLORS["st-moe"] == theme.PREDICTOR_COLORS["st-moe"] == theme.VERMILLION
    assert theme.SYSTEM_COLORS["oracle"] == theme.PREDICTOR_COLORS["oracle"]


def test_a_system_keeps_its_colour_from_chart_to_chart(specs):
    # st-moe comes second in the tour and first in the tuning chart: Altair's default palette
    # coloured it by that order
    tour_spec, tuning_spec = specs["tour"], specs["tuning"]
    assert tour_spec["layer"][0]["encoding"]["color"]["scale"]["domain"].index("st-moe") == 1
    assert tuning_spec["hconcat"][0]["encoding"]["color"]["scale"]["domain"].index("st-moe") == 0
    st_moe = theme.SYSTEM_COLORS["st-moe"]
    for name in ("tour", "tuning", "sweep", "knee"):
        assert colour_scales(specs[name])["system"]["st-moe"] == st_moe, name
    assert colour_scales(specs["split"])["series"]["st-moe"] == st_moe
    assert colour_scales(specs["split"])["series"]["cache only (LRU)"] == theme.SYSTEM_COLORS["lru-cache"]
    assert colour_scales(specs["recall curves"])["series"]["st-moe"] == st_moe
    assert colour_scales(specs["recall bars"])["predictor"]["st-moe"] == st_moe
    lru = theme.SYSTEM_COLORS["lru-cache"]
    assert colour_scales(specs["tuning"])["system"]["lru-cache"] == lru


def test_every_colour_encoding_has_an_explicit_scale_over_its_data(specs):
    for name, spec in specs.items():
        for data, unit in units(spec):
            enc = unit.get("encoding", {}).get("color")
            if enc is None:
                continue
            if enc["type"] == "quantitative":
                assert enc["scale"] == {"scheme": theme.HEATMAP_SCHEME}, name
                continue
            domain, colours = enc["scale"]["domain"], enc["scale"]["range"]
            assert len(domain) == len(colours) == len(set(colours)), name
            assert {row[enc["field"]] for row in data} <= set(domain), name


def test_single_series_marks_have_the_theme_colour(specs):
    for name in ("expert share", "reuse", "reuse distance"):
        bars = next(u for _, u in units(specs[name]) if u["mark"]["type"] == "bar")
        assert bars["mark"]["color"] == theme.MARK_COLOR, name


def test_every_rule_has_the_one_rule_style(specs):
    rules = [(name, u) for name, spec in specs.items() for _, u in units(spec) if u["mark"]["type"] == "rule"]
    assert {name for name, _ in rules} >= {"tour", "expert share", "layer stat", "reuse", "recall bars", "knee",
                                           "paper gap"}
    for name, unit in rules:
        assert unit["mark"]["color"] == theme.RULE_COLOR and unit["mark"]["strokeDash"] == theme.RULE_DASH, name


def test_svg_renderer_is_the_themes(specs):
    for name in ("tour", "expert share", "heat map", "recall bars", "split", "tuning", "paper gap"):
        assert specs[name]["usermeta"] == theme.SVG_RENDERER, name


def test_no_colour_literal_outside_the_theme():
    sources = sorted(p for p in CHARTS_DIR.glob("*.py") if p.name != "theme.py")
    assert {p.name for p in sources} >= {"tour.py", "comparison.py", "hardware_tuning.py"}
    for path in sources:
        found = COLOUR_LITERAL.findall(path.read_text())
        assert not found, f"{path.name} has colour literals {found}; take them from stmoe.charts.theme"


def test_the_literal_check_would_catch_one():
    for line in ('mark_rule(color="#a00")', "alt.Scale(range=['red'])", 'mark_bar(color="steelblue")'):
        assert COLOUR_LITERAL.search(line), line
    assert not COLOUR_LITERAL.search("color=theme.color('system:N', names)  # colours from the theme")


def test_label_variants_take_their_systems_colour():
    assert theme.color_of("st-moe, 25% staging") == theme.color_of("st-moe (fixed weights)") == theme.VERMILLION
    assert theme.color_of("oracle *") == theme.SYSTEM_COLORS["oracle"]
    assert theme.color_of("cache only (LRU)") == theme.SYSTEM_COLORS["lru-cache"]
    assert theme.color_of("cct + history mix") == theme.PREDICTOR_COLORS["cct + history mix"]
    assert theme.color_of("st-moe-like") is None and theme.color_of("decay 0.5") is None


def test_unpinned_names_take_the_fallback_order_skipping_colours_in_use():
    assert theme.palette(["decay 0.5", "decay 0.9"]) == (["decay 0.5", "decay 0.9"], list(theme.FALLBACK[:2]))
    # cct holds the first fallback colour, so the unknown name takes the second
    assert theme.palette(["x", "cct"])[1] == [theme.FALLBACK[1], theme.PREDICTOR_COLORS["cct"]]
    # stale-gate and the mix are pinned to one colour; in one chart the second becomes unpinned
    _, colours = theme.palette(["stale-gate", "cct + history mix", "stale-gate"])
    assert colours[0] == theme.PREDICTOR_COLORS["stale-gate"] and len(set(colours)) == 2
    many = [f"trace {i}" for i in range(12)]
    assert theme.palette(many) == theme.palette(many)
    assert theme.palette(many)[1][:len(theme.FALLBACK)] == list(theme.FALLBACK)


def test_color_encoding_options():
    enc = theme.color("system:N", ["st-moe", "on-demand"], title="system", legend=False).to_dict()
    assert enc == {"field": "system", "type": "nominal", "title": "system", "legend": None,
                   "scale": {"domain": ["st-moe", "on-demand"],
                             "range": [theme.SYSTEM_COLORS["st-moe"], theme.SYSTEM_COLORS["on-demand"]]}}
    assert "legend" not in theme.color("system:N", ["st-moe"]).to_dict()
