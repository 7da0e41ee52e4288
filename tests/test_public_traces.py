"""Public traces by name: the shared copy, and pooch's fetch-check-cache path driven offline by a
downloader that copies the ../shared files instead of reaching GitHub."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import SHARED_TRACES
from stmoe import TraceError, load_trace
from stmoe.readers.catalog import PUBLIC, availability, fetch, load_public, url


@pytest.fixture
def shared():
    if not SHARED_TRACES.is_dir():
        pytest.skip("../shared/traces is absent")
    return SHARED_TRACES


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No shared copy, an empty cache: every public trace must be fetched."""
    monkeypatch.setenv("STMOE_SHARED_TRACES", str(tmp_path / "no-shared"))
    monkeypatch.setenv("STMOE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


class CopyFromShared:
    """A pooch downloader that serves each pinned URL from the ../shared copy, counting calls."""

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
def test_load_by_name_from_shared_copy(shared, name, layers, k, experts):
    assert availability(name) == "shared"
    trace = load_trace(name)
    assert (trace.num_layers, trace.top_k, trace.num_experts) == (layers, k, experts)
    assert trace.meta["license"] == "Apache-2.0" and trace.meta["name"] == name
    assert PUBLIC[name]["repo"] in trace.meta["attribution"]
    assert PUBLIC[name]["ref"] in trace.meta["source"]
    assert trace.is_synthetic is False


def test_qwen_keeps_its_k_caveat(shared):
    assert any("k = 6" in c for c in load_trace("qwen3-30b-a3b").meta["caveats"])


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


def test_corrupted_shared_copy_is_refused(shared, tmp_path, monkeypatch):
    entry = PUBLIC["granite-3.0-1b-a400m-transformers"]
    bad = tmp_path / "shared" / entry["file"]
    bad.parent.mkdir(parents=True)
    bad.write_bytes((shared / entry["file"]).read_bytes()[:-10])
    monkeypatch.setenv("STMOE_SHARED_TRACES", str(tmp_path / "shared"))
    with pytest.raises(TraceError, match="sha256"):
        load_trace("granite-3.0-1b-a400m-transformers")


def test_no_network_is_a_clear_error(offline):
    def unreachable(u, output_file, pooch_obj, check_only=False):
        raise ConnectionError(f"cannot reach {u}")
    with pytest.raises(TraceError, match="cannot fetch .*STMOE_SHARED_TRACES"):
        fetch("qwen3-30b-a3b", downloader=unreachable)


def test_unknown_name_lists_public_ones():
    with pytest.raises(TraceError, match="qwen3-30b-a3b"):
        load_trace("no-such-trace")


def test_datasets_cli_lists_public_and_availability(offline, capsys):
    from stmoe.cli import main
    assert main(["datasets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {n for n, r in rows.items() if r["kind"] == "public"} == set(PUBLIC)
    assert all(rows[n]["offline"] == "no" for n in PUBLIC)
    assert all(r["offline"] == "yes" for r in rows.values() if r["kind"] == "bundled")
