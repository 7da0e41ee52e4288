"""Design-space sweeps: one function, shared by the notebooks and the command line, that varies
one knob (a hardware field such as link_bandwidth or buffer_bytes, the lookahead, the
predictor's budget, or the buffer's cache/prefetch split) and returns tidy rows, one per
(value, system)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from stmoe.errors import ConfigError
from stmoe.sim.buffer import BufferSpec
from stmoe.sim.hardware import Hardware, model_dims, preset
from stmoe.sim.systems import get_system
from stmoe.sim.timing import simulate

SWEEPABLE = ("lookahead", "budget", "prefetch_share") + tuple(f for f in Hardware.__dataclass_fields__
                                                     if f not in ("name", "notes", "dataflow"))


def _number(v) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def sweep(trace, parameter: str, values, *, systems=("on-demand", "st-moe", "oracle"),
          hardware: Hardware | str = "accelerator", predictions=None, dims=None,
          progress: Callable[[str], None] = lambda msg: None, **simulate_kw) -> list[dict]:
    """Rows ``{parameter, value, <SimulationResult.row()>}``; speedups are over
    on-demand at the same value (it is simulated even when not listed).

    predictions: st-moe's predictions computed once (so a sweep does not re-run the predictor);
    for a lookahead sweep, a dict {lookahead: array}, since each depth predicts differently.
    progress(message): called as each value starts."""
    if parameter not in SWEEPABLE:
        raise ConfigError(f"cannot sweep {parameter!r}; valid: {', '.join(SWEEPABLE)}")
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ConfigError(f"values: a list of {parameter} values, got {values!r}")
    values = list(values)
    bad = [v for v in values if isinstance(v, bool) or not _number(v)]
    if bad:
        raise ConfigError(f"{parameter}: sweep values must be numbers, got {bad[0]!r}")
    if not values:
        raise ConfigError("sweep needs at least one value")
    if parameter == "lookahead" and predictions is not None and not isinstance(predictions, dict):
        raise ConfigError("a lookahead sweep needs predictions per depth: pass predictions as a dict "
                          "{lookahead: array} (one array would be reused for every depth)")
    if isinstance(predictions, dict) and parameter != "lookahead":
        raise ConfigError("predictions: a dict of arrays is only for lookahead sweeps")
    if parameter in ("lookahead", "budget"):
        bad = [v for v in values if not float(v).is_integer()]
        if bad:
            raise ConfigError(f"{parameter}: sweep values must be whole numbers, got {bad[0]!r}")
    if isinstance(predictions, dict):
        missing = [v for v in values if int(v) not in predictions]
        if missing:
            raise ConfigError(f"predictions: no array for lookahead {missing[0]!r}")
    hw0 = preset(hardware)
    dims = dims or model_dims(trace)
    names = ["on-demand"] + [s for s in systems if s != "on-demand"]
    # every value's machine first: a bad value is refused before any simulation runs
    machines = [hw0 if parameter in ("lookahead", "budget", "prefetch_share") else hw0.with_(**{parameter: float(v)})
                for v in values]
    rows = []
    for i, (v, hw) in enumerate(zip(values, machines), 1):
        progress(f"{parameter} = {v:g} ({i} of {len(values)})")
        kw = dict(simulate_kw)
        if parameter in ("lookahead", "budget"):
            kw[parameter] = int(v)
        base = None
        for name in names:
            sysm = get_system(name)
            kw_sys = dict(kw)
            if parameter == "prefetch_share" and sysm.prefetch != "none" and not sysm.working_set_only:
                kw_sys["buffer"] = BufferSpec(hw.buffer_bytes, "bytes", prefetch_share=float(v),
                                              policy=sysm.policy)
            pred = None
            if sysm.tunable_predictor and predictions is not None:
                pred = predictions[int(v)] if parameter == "lookahead" else predictions
            r = simulate(trace, hw, sysm, predictions=pred, dims=dims, **kw_sys)
            base = base or r
            r.relative_to(base)
            if name in systems:
                rows.append({"parameter": parameter, "value": v, **r.row()})
    return rows
