"""The traces in data/: the project's own complete, documented and with real structure; every
file, the shipped public copies too, checked on load and listed with its digest."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import ROOT
from scripts.measure_structure import measure
from stmoe import DECODE, PREFILL, TraceError, load_trace
from stmoe.readers import catalog as ds

CATALOG = json.loads((ROOT / "data" / "datasets.json").read_text())
PROJECT = [e for e in CATALOG if e["kind"] == "project"]
NAMES = [e["name"] for e in PROJECT]
CONTROL = "tiny-moe-untrained"


def test_one_project_trace_per_domain_and_the_untrained_control():
    assert sorted(e["domain"] for e in PROJECT) == ["code", "prose"]
    assert sorted(e["kind"] for e in CATALOG) == ["control"] + ["project"] * 2 + ["public"] * 3
    assert ds.project_traces() == NAMES  # the control is not one of the report's traces
    for e in CATALOG:
        assert set(e) >= {"name", "file", "sha256", "kind", "description", "domain"}


@pytest.mark.parametrize("name", [*NAMES, CONTROL])
def test_bundled_trace_is_complete_and_real(name):
    trace = load_trace(name)
    assert trace.name == name and not trace.is_synthetic
    assert (trace.phase == DECODE).sum() >= 20_000
    assert (trace.num_layers, trace.num_experts, trace.top_k) == (8, 32, 4)
    assert trace.weights is not None and trace.token_ids is not None
    assert trace.stale_gate is not None and (trace.stale_gate[:, 0] == -1).all()
    assert (trace.expert_ids >= 0).all()
    for s in np.unique(trace.sequence):
        phases = trace.phase[trace.sequence == s]
        assert len(phases) == 512 and (phases[:64] == PREFILL).all() and (phases[64:] == DECODE).all()
    for key in ("model", "license", "source", "prompt_source", "date", "recorded_with", "training"):
        assert trace.meta.get(key), key


def test_trained_model_meets_its_loss_targets_and_differs_from_its_control():
    """Issue 13's training targets, read from what the build recorded in the traces' meta, and
    the control recorded on the very same tokens with the initial weights."""
    code, prose, control = (load_trace(n) for n in ("tiny-moe-code", "tiny-moe-prose", CONTROL))
    training = code.meta["training"]
    assert training["tokens_seen"] >= 10 * 614_400
    assert training["heldout_loss"] <= 5.0 and prose.meta["training"]["heldout_loss"] <= 4.0
    assert control.meta["training"]["steps"] == 0
    assert control.meta["training"]["heldout_loss"] > training["heldout_loss"] + 1.0
    assert np.array_equal(control.token_ids, code.token_ids)
    assert measure(code)["cross_layer"] > measure(control)["cross_layer"]
    assert training["heldout_curve"][-1]["code"] < training["heldout_curve"][0]["code"]


@pytest.mark.parametrize("name", NAMES)
def test_structure_well_above_chance(name):
    """What data/README.md reports, recomputed: trained routing is predictable, which is the
    premise of every prefetcher in the book."""
    row = measure(load_trace(name))
    assert row["reuse"] > 2 * row["chance"]
    assert row["cross_layer"] > 2 * row["chance"]
    assert row["cross_layer"] > row["popularity"]


def test_data_cards_list_every_file_digest():
    readme = (ROOT / "data" / "README.md").read_text()
    public = (ROOT / "data" / "PUBLIC_TRACES.md").read_text()
    for e in CATALOG:
        assert f"{e['sha256']}  {e['file']}" in (public if e["kind"] == "public" else readme)
        assert ds.sha256_of(ROOT / "data" / e["file"]) == e["sha256"]
    assert f"{ds.sha256_of(ROOT / 'data' / 'datasets.json')}  datasets.json" in readme
    assert "scripts/build_bundled_traces.py" in readme and "scripts/ship_public_traces.py" in public
    assert (ROOT / "data" / "LICENSE-Apache-2.0.txt").is_file()


def test_changed_file_is_refused(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "data", tmp_path / "data")
    entry = CATALOG[0]
    with open(tmp_path / "data" / entry["file"], "ab") as fh:
        fh.write(b"\0")
    monkeypatch.setattr(ds, "DATA_DIR", tmp_path / "data")
    monkeypatch.setattr(ds, "CATALOG", tmp_path / "data" / "datasets.json")
    with pytest.raises(TraceError, match="sha256"):
        load_trace(entry["name"])
