"""The operating-regimes explorer: tokens per step (B), trace, machine and expert dtype -> time
per token with experts resident or streamed, a step being consecutive tokens of one sequence or
sequences in lockstep, and the share of a layer's experts a step
touches, from a grid costed once (`stmoe.book.operating_regimes.batch_rows`)."""

from __future__ import annotations

import stmoe
from stmoe.book import DEFAULT_TRACE
from stmoe.book.operating_regimes import ACROSS, BATCHES, DTYPES, MACHINES, NEARLY_ALL, batch_rows, nearly_all
from stmoe.charts.operating_regimes import batch_chart
from stmoe.widgets.explorer import Explorer

EXPLORER_TRACES = (DEFAULT_TRACE, "qwen3-30b-a3b")


def batch_explorer(traces=EXPLORER_TRACES, *, batches=BATCHES, dtypes=DTYPES, machines=MACHINES) -> Explorer:
    """Controls for B, trace, machine, dtype and what a step holds; every combination is costed
    here, once, so a change only looks rows up. A B a trace has no full step for is absent from its curve (the
    readout says so)."""
    import ipywidgets as widgets

    loaded = [stmoe.load_trace(t) for t in traces]
    grid = {(trace.label, across): batch_rows(trace, machines, dtypes, batches, across=across)
            for trace in loaded for across in ACROSS}
    controls = {
        "batch": widgets.SelectionSlider(options=list(batches), value=batches[min(3, len(batches) - 1)],
                                         description="tokens/step", continuous_update=False),
        "trace": widgets.Dropdown(options=[t.label for t in loaded], value=loaded[0].label, description="trace"),
        "hardware": widgets.Dropdown(options=list(machines), value=machines[-1], description="machine"),
        "dtype": widgets.Dropdown(options=list(dtypes), value=dtypes[0], description="experts"),
        "across": widgets.Dropdown(options=[(v, k) for k, v in ACROSS.items()], value="tokens",
                                   description="a step is"),
    }

    def compute(batch, trace, hardware, dtype, across):
        rows, notes = grid[(trace, across)]
        curve = [r for r in rows if r["hardware"] == hardware and r["dtype"] == dtype]
        at = next((r for r in curve if r["batch"] == batch), None)
        return {"curve": curve, "at": at, "batch": batch, "trace": trace, "hardware": hardware, "dtype": dtype,
                "across": across, "nearly_all": nearly_all(curve), "notes": notes}

    def draw(res):
        at = res["at"]
        if at is None:
            title = f"B = {res['batch']}: {res['trace']} has no step of {res['batch']} {ACROSS[res['across']]}"
        else:
            title = (f"B = {at['batch']}: {at['resident_us_per_token']:.1f} µs/token resident, "
                     f"{at['streamed_us_per_token']:.1f} streamed; {at['share_touched']:.0%} of experts per step")
        return batch_chart(res["curve"], res["batch"], title, NEARLY_ALL)

    def describe(res):
        at = res["at"]
        head = (f"{res['trace']} with qwen3-30b-a3b's {res['dtype']} experts on {res['hardware']}, "
                f"a step of {ACROSS[res['across']]}")
        if at is None:
            return f"{head}: no step of B = {res['batch']} ({'; '.join(res['notes'])})"
        reach = (f"steps touch {NEARLY_ALL:.0%} of experts from B = {res['nearly_all']}" if res["nearly_all"]
                 else f"no B up to {res['curve'][-1]['batch']} touches {NEARLY_ALL:.0%} of experts")
        return (f"{head}, B = {at['batch']} ({at['steps']} steps): {at['union_per_layer']:.1f} experts per layer "
                f"per step ({at['share_touched']:.1%}; uniform routing {at['uniform_share_touched']:.1%}), "
                f"{at['experts_per_token']:.2f} per token; "
                f"{at['resident_us_per_token']:.1f} µs/token resident, {at['streamed_us_per_token']:.1f} µs/token "
                f"streamed; {reach}")

    return Explorer(controls, lambda **v: compute(int(v["batch"]), v["trace"], v["hardware"], v["dtype"], v["across"]),
                    draw, describe, title="Tokens per step: time per token and experts touched")
