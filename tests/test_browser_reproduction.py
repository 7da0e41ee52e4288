"""Notebook 06 in a real browser: it runs top to bottom offline, and moving the bandwidth slider
redraws the explorer's chart and readout."""

from browser_lab import nudge_slider, open_and_run_all, readout_texts


def test_paper_explorer_answers_a_slider_in_the_browser(lab_server, page):
    open_and_run_all(page, lab_server, "06_reproducing_the_paper.ipynb")
    assert page.locator(".jp-OutputArea-output:has-text('Traceback')").count() == 0
    before = readout_texts(page)
    assert before and "link 256 GB/s" in before[0]
    nudge_slider(page, 0, presses=1)          # bandwidth 1x -> 2x
    page.wait_for_function("() => [...document.querySelectorAll('.stmoe-readout')].some(e => e.textContent.includes('link 512 GB/s'))",
                           timeout=30_000)
    page.wait_for_function("() => [...document.querySelectorAll('svg text')].some(t => t.textContent.includes('link 512 GB/s'))",
                           timeout=30_000)
    assert page.outside_requests == []
