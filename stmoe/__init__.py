"""stmoe: spatio-temporal expert prefetching for MoE inference, modelled and measured.

Data flow: trace -> analysis -> predictor -> buffer -> timing and energy -> charts and widgets.
"""

from stmoe import numba_cache  # noqa: F401, I001 - first: numba needs a writable cache before any kernel compiles
from stmoe.errors import ConfigError, StmoeError, TraceError
from stmoe.evaluation import evaluate
from stmoe.readers.catalog import load_trace
from stmoe.recording.recorder import record
from stmoe.synthetic import synthetic_trace
from stmoe.trace import DECODE, PREFILL, Trace
from stmoe.version import __version__

__all__ = ["DECODE", "PREFILL", "ConfigError", "StmoeError", "Trace", "TraceError", "evaluate",
           "load_trace", "record", "synthetic_trace", "__version__"]
