"""Errors raised by stmoe: every one names the file or field and the offending value."""


class StmoeError(ValueError):
    """Base class for bad input detected by stmoe (a ValueError, so callers can catch either)."""


class TraceError(StmoeError):
    """A routing trace is malformed, cannot be read, or cannot be found."""


class ConfigError(StmoeError):
    """A bad argument or setting: unknown predictor or knob, budget or lookahead out of range."""


class HardwareError(ConfigError):
    """A hardware description is invalid (non-positive bandwidth, a buffer too small, ...)."""
