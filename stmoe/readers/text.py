"""Reading a text trace file with errors that say what is wrong with it."""

from __future__ import annotations

from pathlib import Path

from stmoe.errors import TraceError
from stmoe.files import read_regular


def read_text_lines(path: Path) -> list[str]:
    """The file's lines; a clear TraceError for a missing, empty, special, oversized or binary file."""
    data = read_regular(path)
    if not data.strip():
        raise TraceError(f"{path}: file is empty")
    if b"\x00" in data[:65536]:
        raise TraceError(f"{path}: binary file, not a text trace")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return text.splitlines()
