"""Traces by name. `data/` ships two kinds, each sha256-checked on load: the project's own
(kind "project": routing of the small MoE the project trains) and copies of public routing traces
of real released MoE models (kind "public", converted to the native format by
`scripts/ship_public_traces.py`, with their license, attribution and source in the metadata).
`load_trace` accepts a path or one of these names; `catalog()` lists them.

The original files of the shipped public traces are kept in `data/sources/` (the readers' tests
use them, and the ship script converts them). A public trace is read from such a local copy (or
from the folder named by ``STMOE_SHARED_TRACES``) after a digest check; one with no local copy is
fetched from its source repository at its pinned revision (or, where the source pins none, the
branch named, its content pinned by sha256) with `pooch`, checked and cached (``STMOE_CACHE``
overrides pooch's per-user cache folder).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pooch

from stmoe.errors import TraceError
from stmoe.files import check_name
from stmoe.readers import read_trace_file
from stmoe.trace import Trace

ROOT = Path(__file__).resolve().parent.parent.parent
DATA_DIR = ROOT / "data"
CATALOG = DATA_DIR / "datasets.json"
SOURCES_DIR = DATA_DIR / "sources"   # the original files of the shipped public traces
RAW = "https://raw.githubusercontent.com/{repo}/{ref}/{path}"
LICENSE = "Apache-2.0"
SIMLLM = "openfabric-systems/simllm"
GRANITE = "ibm-granite/granite-3.0-1b-a400m-instruct"

PUBLIC: dict[str, dict] = {
    "qwen3-30b-a3b": {
        "file": "qwen3-30b-a3b/qwen.route.csv",
        "repo": "Helldez/BigMoeOnEdge",
        "ref": "36020f2f127f061f837fa2ff430e9d1d745438f9",
        "path": "docs/bench-data/2026-07-15-route-trace/qwen.route.csv",
        "sha256": "38257865c1447b5659b19696392f63df3bfcc1763b8050cb5a463b0aa999ead9",
        "domain": "prose",
        "description": "Qwen3-30B-A3B (Q4_K_M, llama.cpp-based engine on a phone CPU), one prompt: "
                       "28 prefill + 128 greedy decode tokens, 48 layers, top-6 of 128",
        "caveats": [],   # its reader notes the engine's top-6 (not the stock top-8) itself
    },
    "granite-3.0-1b-a400m-sglang": {
        "file": "granite-3.0-1b-a400m/granite-3.0-1b-a400m_sglang_routing-trace.jsonl",
        "repo": SIMLLM,
        # no simllm commit is pinned; the sha256 pins the content.
        "ref": "main",
        "path": "examples/sglang_composed_deployment_v1/fixtures/routing-trace.jsonl",
        "sha256": "da0096b696564f365003d11565f4cbc5bed33ab47f7236c52b3ca7c989fd4982",
        "domain": "synthetic-prompt",
        "description": f"{GRANITE} under SGLang: 8 requests x (8 prompt + 19 decode) tokens, "
                       "24 layers, top-8 of 32, no gate weights",
        "caveats": ["prompts are runs of consecutive token ids, so the generated text is "
                    "degenerate; the routing is the real router on the real weights"],
    },
    "granite-3.0-1b-a400m-transformers": {
        "file": "granite-3.0-1b-a400m/granite-3.0-1b-a400m_transformers_length_cap.jsonl",
        "repo": SIMLLM,
        "ref": "main",
        "path": "examples/preplay_trace_v1/granite_length_cap.jsonl",
        "sha256": "36334f3aaa767c46d5f9c8498e02f6c2805a46e5000a57aea2747e17dd5d1341",
        "domain": "prose",
        "description": f"{GRANITE} under transformers: one 22-token chat prompt, teacher-forced, "
                       "24 layers, top-8 of 32",
        "caveats": [],
    },
}


def local_copy(name: str) -> Path | None:
    """The original file of public trace `name` on this machine, if any: in the folder named by
    STMOE_SHARED_TRACES when set, else in data/sources."""
    named = os.environ.get("STMOE_SHARED_TRACES")
    for root in ([Path(named)] if named else []) + [SOURCES_DIR]:
        path = root / PUBLIC[name]["file"]
        if path.is_file():
            return path
    return None


def cache_dir() -> Path:
    return Path(os.environ.get("STMOE_CACHE") or pooch.os_cache("stmoe")) / "public-traces"


def url(name: str) -> str:
    entry = PUBLIC[name]
    return RAW.format(repo=entry["repo"], ref=entry["ref"], path=entry["path"])


def _cached_path(name: str) -> Path:
    return cache_dir() / PUBLIC[name]["file"]


def availability(name: str) -> str:
    """'local' (a local copy of the original), 'cached', or 'download' (needs the network)."""
    if local_copy(name) is not None:
        return "local"
    if _cached_path(name).is_file():
        return "cached"
    return "download"


def fetch(name: str, *, downloader=None) -> Path:
    """Local path of public trace `name`, digest-checked: a local copy, else the cache, else
    downloaded into the cache (`downloader`: a pooch downloader, e.g. for tests or a proxy)."""
    entry = PUBLIC[name]
    local = local_copy(name)
    if local is not None:
        digest = sha256_of(local)
        if digest != entry["sha256"]:
            raise TraceError(f"{local}: sha256 {digest[:12]}... does not match the pinned "
                             f"{entry['sha256'][:12]}... of public trace {name!r}")
        return local
    target = _cached_path(name)
    try:
        path = pooch.retrieve(url(name), known_hash=f"sha256:{entry['sha256']}",
                              fname=target.name, path=target.parent, downloader=downloader,
                              progressbar=False)
    except ValueError as exc:  # pooch's digest mismatch
        raise TraceError(f"public trace {name!r} from {url(name)}: {exc}") from None
    except OSError as exc:  # no network, HTTP error, unwritable cache
        raise TraceError(f"public trace {name!r}: cannot fetch {url(name)} ({exc}); "
                         f"set STMOE_SHARED_TRACES to a folder holding {entry['file']}") from None
    return Path(path)


def load_public(name: str, *, downloader=None) -> Trace:
    entry = PUBLIC[name]
    trace = read_trace_file(fetch(name, downloader=downloader))
    trace.meta.update({
        "name": name,
        "domain": entry["domain"],
        "source": f"github.com/{entry['repo']} {entry['path']} @ {entry['ref']}",
        "license": LICENSE,
        "attribution": f"routing trace by the authors of github.com/{entry['repo']}, "
                       f"licensed {LICENSE}",
        "synthetic": False,
        "caveats": list(trace.meta.get("caveats", [])) + entry["caveats"],
    })
    return trace


def bundled() -> dict[str, dict]:
    """Name -> catalog entry (file, sha256, kind, description, ...) of every trace in `data/`."""
    if not CATALOG.exists():
        return {}
    try:
        entries = json.loads(CATALOG.read_text())
    except json.JSONDecodeError as exc:
        raise TraceError(f"{CATALOG}: not valid JSON ({exc.msg})") from None
    return {e["name"]: e for e in entries}


def project_traces() -> list[str]:
    """Names of the project's own bundled traces (the report's default)."""
    return [n for n, e in bundled().items() if e.get("kind", "project") == "project"]


def catalog() -> list[dict]:
    """Every trace loadable by name: the ones in `data/`, then public ones not shipped, with
    where each comes from and whether it is available without the network."""
    rows = [{"name": n, "kind": e.get("kind", "project"), "domain": e.get("domain", ""), "offline": "yes",
             "source": f"data/{e['file']}", "description": e.get("description", "")}
            for n, e in bundled().items()]
    for n, e in PUBLIC.items():
        if n in bundled():
            continue
        where = availability(n)
        rows.append({"name": n, "kind": "public", "domain": e["domain"],
                     "offline": {"local": "yes (local copy)", "cached": "yes (cached)"}.get(where, "no"),
                     "source": url(n), "description": e["description"]})
    return rows


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_bundled(name: str) -> Trace:
    entry = bundled()[name]
    path = DATA_DIR / entry["file"]
    if not path.exists():
        raise TraceError(f"{path}: bundled trace {name!r} is missing from data/")
    digest = sha256_of(path)
    if digest != entry["sha256"]:
        raise TraceError(f"{path}: sha256 {digest[:12]}... does not match the catalog's "
                         f"{entry['sha256'][:12]}... (file changed or corrupted)")
    return read_trace_file(path)


def load_trace(path_or_name: str | os.PathLike) -> Trace:
    """Load a trace from a file (format detected from extension and content) or by name: one in
    `data/`, else a public one (fetched and cached on first use; see `stmoe datasets`)."""
    if isinstance(path_or_name, Trace):
        return path_or_name
    text = str(path_or_name)
    if text in bundled():
        return load_bundled(text)
    if text in PUBLIC:
        return load_public(text)
    if not text.strip():
        raise TraceError(f"trace: an empty path or name ({text!r})")
    check_name(text, TraceError)
    path = Path(text)
    try:
        is_dir, missing = path.is_dir(), not path.exists() and not path.is_symlink()
    except OSError as exc:   # a name too long for the system (ENAMETOOLONG), a loop of links...
        raise TraceError(f"{text}: cannot open ({exc.strerror or exc})") from None
    if is_dir:
        raise TraceError(f"{text}: is a directory, not a trace file")
    if path.suffix == "" and missing:
        names = ", ".join(dict.fromkeys([*bundled(), *PUBLIC]))
        raise TraceError(f"{text}: neither a trace file nor a known trace name (known: {names})")
    return read_trace_file(path)
