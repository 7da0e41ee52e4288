"""The package version, in one place: pyproject.toml reads it, the report and recorded traces
stamp it."""

__version__ = "0.1.0"
