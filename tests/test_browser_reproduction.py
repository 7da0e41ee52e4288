"""Notebook 06 in a real browser: it runs top to bottom offline, and moving the bandwidth slider
redraws the explorer's readout and chart with what the package computes."""

from browser_lab import check_slider_drives_explorer, open_and_run_all

import stmoe
from stmoe.widgets.reproduction import DEFAULT_TRACE, paper_explorer


def test_paper_explorer_answers_a_slider_in_the_browser(lab_server, page):
    open_and_run_all(page, lab_server, "06_reproducing_the_paper.ipynb")
    assert page.locator(".jp-OutputArea-output:has-text('Traceback')").count() == 0
    moved = check_slider_drives_explorer(page, 0, 0, paper_explorer(stmoe.load_trace(DEFAULT_TRACE)))
    assert moved["control"] == "bandwidth" and "link 512 GB/s" in moved["after"]
    assert page.outside_requests == []
