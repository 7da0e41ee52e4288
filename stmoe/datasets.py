"""Named traces: the ones bundled in `data/` (made by the project's own code) and where to find
them. `load_trace` accepts a path or one of these names."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from stmoe.errors import TraceError
from stmoe.readers import read_trace_file
from stmoe.trace import Trace

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
CATALOG = DATA_DIR / "datasets.json"


def bundled() -> dict[str, dict]:
    """Name -> catalog entry (file, sha256, description, ...) of every bundled trace."""
    if not CATALOG.exists():
        return {}
    try:
        entries = json.loads(CATALOG.read_text())
    except json.JSONDecodeError as exc:
        raise TraceError(f"{CATALOG}: not valid JSON ({exc.msg})") from None
    return {e["name"]: e for e in entries}


def catalog() -> list[dict]:
    """Every trace loadable by name: bundled ones, then public ones, with where each comes from
    and whether it is available without the network."""
    from stmoe.public_traces import PUBLIC, availability, url
    rows = [{"name": n, "kind": "bundled", "domain": e.get("domain", ""), "offline": "yes",
             "source": f"data/{e['file']}", "description": e.get("description", "")}
            for n, e in bundled().items()]
    for n, e in PUBLIC.items():
        where = availability(n)
        rows.append({"name": n, "kind": "public", "domain": e["domain"],
                     "offline": {"shared": "yes (shared copy)", "cached": "yes (cached)"}.get(where, "no"),
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
    """Load a trace from a file (format detected from extension and content) or by name: a
    bundled trace or a public one (fetched and cached on first use; see `stmoe datasets`)."""
    if isinstance(path_or_name, Trace):
        return path_or_name
    from stmoe.public_traces import PUBLIC, load_public
    text = str(path_or_name)
    if text in bundled():
        return load_bundled(text)
    if text in PUBLIC:
        return load_public(text)
    if not text.strip():
        raise TraceError(f"trace: an empty path or name ({text!r})")
    path = Path(text)
    if path.is_dir():
        raise TraceError(f"{text}: is a directory, not a trace file")
    if path.suffix == "" and not path.exists():
        names = ", ".join([*bundled(), *PUBLIC])
        raise TraceError(f"{text}: neither a trace file nor a known trace name (known: {names})")
    return read_trace_file(path)
