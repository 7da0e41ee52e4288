"""Notebooks 02 and 03 in JupyterLab: Run All, then move a slider as a reader would and see the
explorer's chart title and readout change, with nothing requested off the machine."""

import pytest

from tests.browser_lab import nudge_slider, open_and_run_all, readout_texts


@pytest.mark.parametrize("notebook, slider, before, after", [
    ("02_correlation_discovery.ipynb", 0, "layer 0 -> 1:", "layer 1 -> 2:"),
    ("03_predictor_design.ipynb", 0, "at m = 4", "at m = 5"),
])
def test_explorer_answers_a_slider_in_the_browser(lab_server, page, notebook, slider, before, after):
    open_and_run_all(page, lab_server, notebook)
    page.locator(".stmoe-readout").first.wait_for(timeout=60_000)
    first = readout_texts(page)[0]
    page.locator(f".jp-OutputArea svg text:has-text('{before}')").first.wait_for(timeout=60_000)
    nudge_slider(page, slider)
    page.locator(f".jp-OutputArea svg text:has-text('{after}')").first.wait_for(timeout=60_000)
    assert readout_texts(page)[0] != first
    assert page.outside_requests == []
