"""Notebooks 00 and 01 in a real browser, offline: Run All, then move a slider of each explorer
and check the page shows what the same explorer computes in this process."""

import re

import pytest

from browser_lab import RUN_TIMEOUT_MS, check_slider_drives_explorer, open_and_run_all


def _plain(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.parametrize("notebook, factory", [
    ("00_tour.ipynb", "tour"), ("01_trace_analysis.ipynb", "popularity")])
def test_explorer_answers_a_slider_offline(lab_server, page, notebook, factory):
    if factory == "tour":
        from stmoe.widgets.tour import tour_explorer
        explorer = tour_explorer("tiny-moe-code", "gpu-pcie")
    else:
        from stmoe.widgets.trace_analysis import popularity_explorer
        explorer = popularity_explorer(["tiny-moe-code", "tiny-moe-prose", "qwen3-30b-a3b"])
    open_and_run_all(page, lab_server, notebook)
    # The committed notebook already shows execution counts, so wait for this run's explorer
    # (stripped notebooks carry no widget state), scroll it into view (JupyterLab renders only
    # visible cells), wait for its default readout and for no cell to be queued or running.
    box = page.locator(".stmoe-explorer").first
    box.wait_for(timeout=RUN_TIMEOUT_MS)
    box.scroll_into_view_if_needed()
    expected = _plain(explorer.readout.value)
    try:
        page.wait_for_function(
            "(text) => [...document.querySelectorAll('.stmoe-readout')]"
            ".some(el => el.innerText.split(/\\s+/).join(' ').trim() === text)",
            arg=expected, timeout=RUN_TIMEOUT_MS)
    except Exception:
        shown = " ".join(box.locator(".stmoe-readout").inner_text().split())
        raise AssertionError(f"readout on the page {shown!r} != {expected!r}") from None
    page.wait_for_function(
        "() => ![...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
        ".some(p => p.textContent.includes('*'))", timeout=RUN_TIMEOUT_MS)
    box.scroll_into_view_if_needed()
    moved = check_slider_drives_explorer(page, 0, 0, explorer)
    assert moved["after"] != moved["before"]
    assert page.outside_requests == [], page.outside_requests
