"""Errors raised by stmoe: every one names the file or field and the offending value."""


class StmoeError(ValueError):
    """Base class for bad input detected by stmoe (a ValueError, so callers can catch either)."""


class TraceError(StmoeError):
    """A routing trace is malformed, cannot be read, or cannot be found."""


class ConfigError(StmoeError):
    """A bad argument or setting: unknown predictor or knob, budget or lookahead out of range."""


class HardwareError(ConfigError):
    """A hardware description is invalid (non-positive bandwidth, a buffer too small, ...)."""


def one_line(exc: BaseException) -> str:
    """Any exception as one line: stmoe's own message as it is, a file error with its file name,
    anything else (a bug, or an input no check foresaw) with its type."""
    if isinstance(exc, StmoeError):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else "file"
        text = f"{where}: {exc.strerror}"
    elif isinstance(exc, MemoryError):
        text = "out of memory"
    else:
        text = f"unexpected {type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    # a control character (from a file name or a field) shown escaped keeps the line one line
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    # the middle goes, not the end: a long file name must not push out what is wrong with it
    return text if len(text) <= 400 else text[:240] + " ... " + text[-155:]
