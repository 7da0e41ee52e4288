"""Public traces by name: the copies shipped in data/ (equal to the originals in data/sources),
a local copy of the originals, and pooch's fetch-check-cache path driven offline by a downloader
that copies the originals instead of reaching GitHub."""

from __future__ import annotations

import json
import shutil
import socket

import numpy as np
import pytest

from conftest import SOURCES
from stmoe import TraceError, load_trace
from stmoe.readers import catalog
from stmoe.readers.catalog import PUBLIC, availability, bundled, fetch, load_public, url


@pytest.fixture
def shared():
    """The public traces' original files, as a local copy would hold them."""
    return SOURCES


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No local copy of the originals, an empty cache: a public trace must be fetched."""
    monkeypatch.delenv("STMOE_SHARED_TRACES", raising=False)
    monkeypatch.setattr(catalog, "SOURCES_DIR", tmp_path / "no-sources")
    monkeypatch.setenv("STMOE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


class CopyFromShared:
    """A pooch downloader that serves each pinned URL from the original files, counting calls."""

    def __init__(self, root, corrupt=False):
        self.by_url = {url(n): root / e["file"] for n, e in PUBLIC.items()}
        self.corrupt = corrupt
        self.calls = []

    def __call__(self, u, output_file, pooch_obj, check_only=False):
        self.calls.append(u)
        shutil.copyfile(self.by_url[u], output_file)
        if self.corrupt:
            with open(output_file, "a") as fh:
                fh.write("\n")


@pytest.mark.parametrize("name, layers, k, experts", [
    ("qwen3-30b-a3b", 48, 6, 128),
    ("granite-3.0-1b-a400m-sglang", 24, 8, 32),
    ("granite-3.0-1b-a400m-transformers", 24, 8, 32),
])
def test_load_by_name_from_a_local_copy(shared, name, layers, k, experts):
    assert availability(name) == "local"
    trace = load_public(name)
    assert (trace.num_layers, trace.top_k, trace.num_experts) == (layers, k, experts)
    assert trace.meta["license"] == "Apache-2.0" and trace.meta["name"] == name
    assert PUBLIC[name]["repo"] in trace.meta["attribution"]
    assert PUBLIC[name]["ref"] in trace.meta["source"]
    assert trace.is_synthetic is False


def test_qwen_keeps_its_k_caveat_once(shared):
    caveats = load_trace("qwen3-30b-a3b").meta["caveats"]
    assert sum("top-6" in c for c in caveats) == 1 and sum("top-8" in c for c in caveats) == 1


def test_fetch_downloads_checks_and_caches(shared, offline):
    name = "qwen3-30b-a3b"
    assert availability(name) == "download"
    copy = CopyFromShared(shared)
    path = fetch(name, downloader=copy)
    assert path.is_relative_to(offline) and copy.calls == [url(name)]
    assert availability(name) == "cached"
    assert load_public(name, downloader=copy).num_layers == 48
    assert copy.calls == [url(name)], "a cached, digest-checked file is not fetched again"
    assert url(name).startswith("https://raw.githubusercontent.com/Helldez/BigMoeOnEdge/36020f2f")


def test_fetched_file_with_wrong_digest_is_refused(shared, offline):
    with pytest.raises(TraceError, match="granite-3.0-1b-a400m-sglang"):
        fetch("granite-3.0-1b-a400m-sglang", downloader=CopyFromShared(shared, corrupt=True))
    assert availability("granite-3.0-1b-a400m-sglang") == "download"


def test_corrupted_local_copy_is_refused(shared, tmp_path, monkeypatch):
    entry = PUBLIC["granite-3.0-1b-a400m-transformers"]
    bad = tmp_path / "shared" / entry["file"]
    bad.parent.mkdir(parents=True)
    bad.write_bytes((shared / entry["file"]).read_bytes()[:-10])
    monkeypatch.setenv("STMOE_SHARED_TRACES", str(tmp_path / "shared"))
    with pytest.raises(TraceError, match="sha256"):
        load_public("granite-3.0-1b-a400m-transformers")


def test_no_network_is_a_clear_error(offline):
    def unreachable(u, output_file, pooch_obj, check_only=False):
        raise ConnectionError(f"cannot reach {u}")
    with pytest.raises(TraceError, match="cannot fetch .*STMOE_SHARED_TRACES"):
        fetch("qwen3-30b-a3b", downloader=unreachable)


def test_unknown_name_lists_public_ones():
    with pytest.raises(TraceError, match="qwen3-30b-a3b"):
        load_trace("no-such-trace")


def test_datasets_cli_lists_every_trace_as_offline(offline, capsys):
    from stmoe.cli import main
    assert main(["datasets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {n for n, r in rows.items() if r["kind"] == "public"} == set(PUBLIC)
    assert {n for n, r in rows.items() if r["kind"] == "project"} == {"tiny-moe-code", "tiny-moe-prose"}
    assert all(r["offline"] == "yes" and r["source"].startswith("data/") for r in rows.values())


@pytest.mark.parametrize("name", list(PUBLIC))
def test_shipped_copy_equals_the_original(shared, name):
    shipped, original = load_trace(name), load_public(name)
    assert bundled()[name]["kind"] == "public"
    for field in ("expert_ids", "weights", "phase", "sequence", "token_ids", "stale_gate"):
        a, b = getattr(shipped, field), getattr(original, field)
        assert (a is None and b is None) or np.array_equal(a, b), field
    assert {k: v for k, v in shipped.meta.items() if k != "shipped_from"} == original.meta
    assert shipped.meta["shipped_from"]["sha256"] == PUBLIC[name]["sha256"]


def test_every_name_the_book_uses_loads_with_no_reference_copy_and_no_network(offline, monkeypatch):
    """What a fresh clone without the network sees: no reference copy, an empty cache, and any
    attempt to connect an error."""
    def refuse(*args, **kwargs):
        raise OSError("network blocked by the test")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for name in [*bundled(), *PUBLIC]:
        trace = load_trace(name)
        assert trace.name == name and trace.num_tokens > 0
    assert availability("qwen3-30b-a3b") == "download"   # nothing was fetched or found elsewhere
