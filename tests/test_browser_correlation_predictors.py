"""Notebooks 02 and 03 in JupyterLab: Run All, then move a slider as a reader would; the
explorer's readout and chart title become what the same explorer computes in this process,
and nothing is requested off the machine."""

import pytest

from tests.browser_lab import check_slider_drives_explorer, open_and_run_all


def _transitions():
    import stmoe
    from stmoe.analysis import spatial_affinity
    from stmoe.widgets.correlation import transition_explorer

    code = stmoe.load_trace("tiny-moe-code")
    return transition_explorer(code, affinity=spatial_affinity(code, seed=0))   # as notebook 02 builds it


def _recall():
    import stmoe
    from stmoe.widgets.predictor_design import recall_explorer

    return recall_explorer(stmoe.load_trace("tiny-moe-code"))


@pytest.mark.parametrize("notebook, factory", [
    ("02_correlation_discovery.ipynb", _transitions),
    ("03_predictor_design.ipynb", _recall),
])
def test_explorer_answers_a_slider_in_the_browser(lab_server, page, notebook, factory):
    open_and_run_all(page, lab_server, notebook)
    page.locator(".stmoe-explorer").first.scroll_into_view_if_needed(timeout=60_000)
    readout = page.locator(".stmoe-explorer .stmoe-readout").first
    # JupyterLab renders a widget's content once it is in view, after its box appears
    page.wait_for_function("el => el.innerText.trim().length > 0", arg=readout.element_handle(), timeout=60_000)
    check_slider_drives_explorer(page, 0, 0, factory())
    assert page.outside_requests == []
