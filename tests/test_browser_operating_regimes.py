"""Notebook 08 in JupyterLab in a real browser, offline: Run All, then the tokens-per-step slider
moved by keyboard redraws the readout and the chart title with what the package computes."""

from stmoe.widgets.operating_regimes import batch_explorer
from tests.browser_lab import check_slider_drives_explorer, open_and_run_all


def test_batch_explorer_in_lab(page, lab_server):
    open_and_run_all(page, lab_server, "08_operating_regimes.ipynb")
    moved = check_slider_drives_explorer(page, 0, 0, batch_explorer())
    assert moved["control"] == "batch" and "B = 16" in moved["after"]
    assert page.outside_requests == []
