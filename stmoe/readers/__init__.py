"""Trace readers: the native .npz format and the public formats, behind one `load_trace`."""

from __future__ import annotations

import os
from pathlib import Path

from stmoe.errors import TraceError
from stmoe.readers import route_trace, simllm
from stmoe.readers.text import read_text_lines
from stmoe.trace import Trace, read_native

FORMATS = {
    ".npz": "stmoe native (.npz)",
    ".csv": "route_trace v1 CSV",
    ".jsonl": "simllm JSON lines (schema v1 or v2)",
}


def read_trace_file(path: str | os.PathLike) -> Trace:
    """Read a trace file, choosing the reader by extension and checking the content matches."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        known = ", ".join(f"{ext} ({desc})" for ext, desc in FORMATS.items())
        raise TraceError(f"{path}: unknown trace format {suffix or '(no extension)'!r}; "
                         f"known: {known}")
    if suffix == ".npz":
        return read_native(path)
    first = read_text_lines(path)[0]
    if suffix == ".csv":
        if not route_trace.looks_like(first):
            raise TraceError(f"{path}: not a route_trace v1 CSV (first line is {first[:60]!r}, "
                             f"expected {route_trace.MAGIC!r})")
        return route_trace.read_route_trace(path)
    if not simllm.looks_like(first):
        raise TraceError(f"{path}: not a simllm trace (the first line must be a JSON header with "
                         f"schema one of {', '.join(simllm.SCHEMAS)})")
    return simllm.read_simllm(path)
