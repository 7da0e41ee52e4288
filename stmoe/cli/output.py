"""Printing helpers shared by the subcommands: JSON to stdout, aligned text tables."""

from __future__ import annotations

import json
import sys
import time


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


def format_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Rows of dicts as an aligned plain-text table; floats get 3 decimals."""
    if not rows:
        return "(no rows)"
    columns = columns or list(rows[0])

    def cell(v):
        if isinstance(v, float):
            return f"{v:.3f}"
        return "" if v is None else str(v)

    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


class Progress:
    """Stage messages on stderr, from the moment a command has run `quiet_for` seconds: short
    runs print nothing extra, long ones say what they are doing. Never on stdout."""

    def __init__(self, quiet_for: float = 2.0):
        self.start = time.perf_counter()
        self.quiet_for = quiet_for

    def __call__(self, message: str) -> None:
        elapsed = time.perf_counter() - self.start
        if elapsed >= self.quiet_for:
            print(f"[{elapsed:6.1f} s] {message}", file=sys.stderr, flush=True)
