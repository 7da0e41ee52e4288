"""Ship the public routing traces in `data/`, so every name the book loads works offline.

    python scripts/ship_public_traces.py

Each public trace of `stmoe.readers.catalog.PUBLIC` is read from its original file (in
`data/sources/`, or the folder named by STMOE_SHARED_TRACES, else downloaded at the pinned
revision; either way checked against the pinned sha256, and kept in `data/sources/`), converted to the native format with its license,
attribution and source in the metadata, and written to `data/NAME.npz`; `data/datasets.json`
gets (or updates) an entry of kind "public" with the new file's sha256, and the Apache-2.0
license text that both sources use is kept beside them. The conversion is lossless: the
tests compare every array and the metadata with the original file where it is present.
"""

from __future__ import annotations

import json
import re
import sys

from stmoe.readers.catalog import CATALOG, DATA_DIR, LICENSE, PUBLIC, SOURCES_DIR, fetch, load_public, sha256_of

LICENSE_TEXT = "LICENSE-Apache-2.0.txt"


def ship(name: str) -> dict:
    entry = PUBLIC[name]
    original = fetch(name)
    kept = SOURCES_DIR / entry["file"]
    if original != kept:
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_bytes(original.read_bytes())
    trace = load_public(name)
    trace.meta["shipped_from"] = {"repo": f"github.com/{entry['repo']}", "path": entry["path"],
                                  "revision": entry["ref"], "sha256": entry["sha256"]}
    path = trace.save(DATA_DIR / f"{name}.npz")
    print(f"{name}: {original} -> {path.relative_to(DATA_DIR.parent)} ({trace.num_tokens} tokens)")
    return {"name": name, "file": path.name, "sha256": sha256_of(path), "kind": "public",
            "description": entry["description"], "domain": entry["domain"], "license": LICENSE,
            "license_file": LICENSE_TEXT, "source": trace.meta["source"]}


def write_card(entries: list[dict]) -> None:
    """data/PUBLIC_TRACES.md: what each shipped public trace is, where it comes from, its license."""
    lines = ["# Public routing traces shipped in data/", "",
             "Copies of routing traces that other people recorded from real, publicly released MoE",
             "models, converted to stmoe's native format so that the book, the tests and `stmoe report`",
             "work offline. Written by `scripts/ship_public_traces.py` (rerun it to rebuild them from the",
             "pinned sources); do not edit by hand. Both sources are licensed Apache-2.0",
             f"(`{LICENSE_TEXT}`, beside this file); keep the attribution below in anything that reports",
             "figures computed from them.", ""]
    for e in entries:
        src = PUBLIC[e["name"]]
        revision = (f"commit {src['ref']}" if len(src["ref"]) == 40 else
                    f"branch {src['ref']} (the source pins no commit; the sha256 below pins the content)")
        lines += [f"## `{e['name']}`", "",
                  f"- {e['description']}.",
                  f"- Source: github.com/{src['repo']}, `{src['path']}`, {revision}; original file sha256 "
                  f"`{src['sha256']}`, kept as `sources/{src['file']}`.",
                  f"- License: {e['license']}. Attribution: routing trace by the authors of "
                  f"github.com/{src['repo']}.",
                  *[f"- Caveat: {c}." for c in src["caveats"]], ""]
    lines += ["## Files and sha256", "", "`stmoe.load_trace` checks each file's sha256 against "
              "`datasets.json` on every load.", "", "```",
              *[f"{e['sha256']}  {e['file']}" for e in entries], "```", ""]
    (DATA_DIR / "PUBLIC_TRACES.md").write_text("\n".join(lines))


def main() -> int:
    entries = json.loads(CATALOG.read_text()) if CATALOG.exists() else []
    shipped = {name: ship(name) for name in PUBLIC}
    entries = [e for e in entries if e["name"] not in shipped] + list(shipped.values())
    tmp = CATALOG.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(entries, indent=2) + "\n")
    tmp.replace(CATALOG)
    if not (DATA_DIR / LICENSE_TEXT).is_file():
        sys.exit(f"ship: data/{LICENSE_TEXT} is missing: add the Apache-2.0 text the sources are licensed under")
    write_card(list(shipped.values()))
    readme = DATA_DIR / "README.md"   # written by build_bundled_traces.py; keep its digest list true
    if readme.is_file():
        text = re.sub(r"[0-9a-f]{64}  datasets.json", f"{sha256_of(CATALOG)}  datasets.json", readme.read_text())
        readme.write_text(text)
    print(f"updated {CATALOG.relative_to(DATA_DIR.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
