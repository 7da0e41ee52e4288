"""Reading and writing files that nobody vouches for.

Reads open the file without blocking, check by `fstat` that it is a regular file (a pipe, a
device such as a symlink to /dev/zero, or a socket is refused before a byte is read) and never
read more than a stated limit. Writes go to a temporary file beside the target and are renamed
over it, with the permissions the umask gives an ordinary new file (mkstemp's are 0600), so a
failed or interrupted write leaves the old file and no temporary one.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from stmoe.errors import StmoeError, TraceError


# Bytes of one text trace file read into memory (route_trace CSV, simllm JSON lines), and of the
# arrays one native trace may inflate to. Reading text costs several times its size: 120 MB of
# CSV (4.6 million routing rows) peaks at 1.2 GB, or 2.6 GB when its rows fill only 1/48 of the
# grid the header claims, so the default, 128 MiB, stays under 3 GB. A 200k-token, 48-layer,
# top-8 native trace with gate weights inflates to about 0.5 GB and peaks at 0.65 GB. The
# environment variables raise the limits.
def bytes_from_env(name: str, default: int) -> int:
    """A byte limit from the environment ("1e9" and "1000000000" alike); a value that is not a
    positive number keeps the default, said on stderr (an import must not fail on it)."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (1 <= value < float(2 ** 63) and value == int(value)):   # inf, nan, 1e400: the default
        import sys
        print(f"stmoe: {name}={text!r} is not a whole number of bytes >= 1; using {default}", file=sys.stderr)
        return default
    return int(value)


MAX_TEXT_BYTES = bytes_from_env("STMOE_MAX_TEXT_BYTES", 128 << 20)
MAX_ARRAY_BYTES = bytes_from_env("STMOE_MAX_ARRAY_BYTES", 2 << 30)


def check_name(path, error=StmoeError) -> None:
    """An `error` for a file name the system cannot take: a NUL byte (the C string ends there;
    Python raises a bare ValueError)."""
    if "\x00" in os.fsdecode(path):
        raise error(f"{os.fsdecode(path)!r}: a file name cannot hold a NUL byte")


def open_regular(path: Path, what: str = "a trace file") -> BinaryIO:
    """`path` opened for binary reading, or a TraceError if it is missing, a directory (not
    `what`), empty or not a regular file. Opening with O_NONBLOCK keeps a FIFO from blocking
    until fstat refuses it."""
    check_name(path, TraceError)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise TraceError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TraceError(f"{path}: is a directory, not {what}") from None
    except OSError as exc:
        raise TraceError(f"{path}: cannot open ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise TraceError(f"{path}: is a directory, not {what}")
        if not stat.S_ISREG(st.st_mode):
            raise TraceError(f"{path}: is {_kind(st.st_mode)}, not a regular file")
        if st.st_size == 0:
            raise TraceError(f"{path}: file is empty")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def read_regular(path: Path, limit: int | None = None, what: str = "a trace file") -> bytes:
    """The bytes of a regular file no larger than `limit` (default `MAX_TEXT_BYTES`), read in chunks."""
    limit = MAX_TEXT_BYTES if limit is None else limit
    with open_regular(path, what) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise TraceError(f"{path}: {size} bytes is over the {limit}-byte limit for this format "
                             "(raise STMOE_MAX_TEXT_BYTES to read it)")
        chunks, total = [], 0
        while chunk := fh.read(min(1 << 24, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:   # the file grew while we read it
                raise TraceError(f"{path}: more than {limit} bytes (the file is growing?)")
    return b"".join(chunks)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call `write` on a temporary file beside `path`, then rename it over `path`. Any OSError
    (disk full, read-only directory) becomes one StmoeError naming `path`; the temporary file is
    removed on every failure."""
    check_name(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:60]}.", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except OSError as exc:
        raise StmoeError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
