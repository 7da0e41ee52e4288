"""Notebooks 04 and 05 in JupyterLab in a real browser, offline: Run All, then a slider of each
explorer moved by keyboard redraws the readout and the chart title with what the package computes."""

import stmoe
from stmoe.book.held_out import held_out
from stmoe.widgets.expert_buffer import split_explorer
from stmoe.widgets.hardware_tuning import tuning_explorer
from tests.browser_lab import check_slider_drives_explorer, open_and_run_all


def test_split_explorer_in_lab(page, lab_server):
    open_and_run_all(page, lab_server, "04_expert_buffer.ipynb")
    explorer = split_explorer(held_out(stmoe.load_trace("tiny-moe-code")), hardware="gpu-pcie")
    moved = check_slider_drives_explorer(page, 0, 1, explorer)
    # from st-moe's own share (none) one step up its curve; the marker moves, nothing is simulated
    assert moved["control"] == "share" and "staging 5%: st-moe" in moved["title"]
    assert page.outside_requests == []


def test_tuning_explorer_in_lab(page, lab_server):
    open_and_run_all(page, lab_server, "05_hardware_tuning.ipynb")
    explorer = tuning_explorer(held_out(stmoe.load_trace("tiny-moe-code"), lookaheads=(1, 2, 3)))
    moved = check_slider_drives_explorer(page, 0, 0, explorer)
    assert moved["control"] == "link_gbps" and "512 GB/s link" in moved["after"]
    assert page.outside_requests == []
