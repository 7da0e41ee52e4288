"""The explorers `bench_widgets.py` times, and the control changes it applies to each, in the
book's order: (label, factory, changes), where `factory()` builds the explorer on the bundled
traces and `changes` is a list of {control: value} settings applied one after another."""

from __future__ import annotations

from stmoe.readers.catalog import load_trace
from stmoe.widgets.correlation import transition_explorer
from stmoe.widgets.expert_buffer import split_explorer
from stmoe.widgets.hardware_tuning import tuning_explorer
from stmoe.widgets.operating_regimes import batch_explorer
from stmoe.widgets.predictor_design import recall_explorer
from stmoe.widgets.reproduction import OWN, paper_explorer
from stmoe.widgets.tour import tour_explorer
from stmoe.widgets.trace_analysis import popularity_explorer

CASES = [
    ("00 tour: latency vs link and buffer", lambda: tour_explorer("tiny-moe-code", "gpu-pcie"),
     [{"bandwidth": 25e9 * 4}, {"buffer_share": 0.5}, {"bandwidth": 25e9 / 4}, {"buffer_share": 0.05},
      {"buffer_share": 1.0}]),
    ("01 trace analysis: expert popularity",
     lambda: popularity_explorer(["tiny-moe-code", "tiny-moe-prose", "qwen3-30b-a3b"]),
     [{"layer": 3}, {"phase": "prefill"}, {"trace": "qwen3-30b-a3b"}, {"layer": 40}, {"phase": "all"}]),
    ("02 transition explorer", lambda: transition_explorer(load_trace("tiny-moe-code")),
     [{"layer": 1}, {"layer": 3}, {"layer": 6}, {"layer": 2}, {"layer": 0}]),
    ("03 recall explorer", lambda: recall_explorer(load_trace("tiny-moe-code")),
     [{"budget": 2}, {"budget": 8}, {"history_length": 4}, {"history_decay": 0.5},
      {"weight": 1.0}, {"combine": "linear"}, {"weight": 0.25}, {"history_length": 16}]),
    ("04 cache/prefetch split", lambda: split_explorer(hardware="gpu-pcie"),
     [{"share": 0.1}, {"share": 0.5}, {"capacity": 128}, {"capacity": 38}, {"share": 0.2},
      {"capacity": 192}, {"share": 0.0}]),
    ("05 hardware tuning", tuning_explorer,
     [{"link_gbps": 64}, {"link_gbps": 1024}, {"buffer": 0.1}, {"pe_side": 32},
      {"lookahead": 2}, {"lookahead": 3}, {"buffer": 0.5}, {"link_gbps": 8}]),
    ("06 paper gap (tiny-moe-code)", paper_explorer,
     [{"bandwidth": 0.5}, {"bandwidth": 2.0}, {"hardware": "gpu-pcie"}, {"bandwidth": 0.25},
      {"hardware": "edge-flash"}, {"bandwidth": 4.0}, {"experts": OWN}, {"hardware": "accelerator"}]),
    ("08 operating regimes: tokens per step", batch_explorer,
     [{"batch": 64}, {"hardware": "accelerator"}, {"dtype": "int4"}, {"trace": "qwen3-30b-a3b"},
      {"batch": 1}, {"batch": 256}]),
]
