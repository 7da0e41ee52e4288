"""Driving a notebook in JupyterLab the way a reader does: open, Run All, move a slider."""

from __future__ import annotations

RUN_TIMEOUT_MS = 240_000
# A collapsed solution's input is replaced by a placeholder whose own empty prompt (class
# jp-Placeholder-prompt jp-InputPrompt) never shows an execution count: leave it out.
PROMPTS = ".jp-CodeCell .jp-InputPrompt:not(.jp-Placeholder-prompt)"


def open_and_run_all(page, lab, notebook: str) -> None:
    # a workspace per notebook: the server is shared by the session, and the default workspace
    # would reopen earlier notebooks beside this one (their hidden toolbars confuse the waits)
    workspace = notebook.split(".")[0].replace("_", "-")
    page.goto(f"{lab['base']}/lab/workspaces/{workspace}/tree/notebooks/{notebook}?token={lab['token']}")
    # The kernel is ready when the debugger button is enabled; "idle" alone left cells unexecuted.
    page.wait_for_selector(".jp-DebuggerBugButton[aria-disabled='false']", timeout=120_000)
    # Committed notebooks carry execution counts: clear them first, so that "every prompt has a
    # number" below can only mean that this run executed every cell.
    page.locator(".lm-MenuBar-itemLabel", has_text="Edit").first.click()
    page.locator(".lm-Menu-itemLabel:text-is('Clear Outputs of All Cells')").click()
    page.wait_for_function(
        """sel => [...document.querySelectorAll(sel)]
                 .every(p => !/\\[\\d+\\]/.test(p.textContent))""", arg=PROMPTS, timeout=30_000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel:text-is('Run All Cells')").click()
    page.wait_for_function(
        """sel => {
            const prompts = [...document.querySelectorAll(sel)];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""", arg=PROMPTS, timeout=RUN_TIMEOUT_MS)


def readout_texts(page) -> list[str]:
    return page.locator(".stmoe-readout").all_inner_texts()


def nudge_slider(page, index: int, presses: int = 1, key: str = "ArrowRight") -> None:
    """Move the index-th slider of the page by keyboard, as a reader would."""
    handle = page.locator(".widget-slider .noUi-handle").nth(index)
    handle.scroll_into_view_if_needed()
    handle.focus()
    for _ in range(presses):
        handle.press(key)


def _plain(html_text: str) -> str:
    import re

    return " ".join(re.sub(r"<[^>]+>", " ", html_text).replace("&nbsp;", " ").split())


def next_value(control):
    """The value a control takes after one ArrowRight press on its slider handle."""
    options = getattr(control, "options", None)
    if options is not None:  # SelectionSlider: options may be (label, value) pairs
        values = [o[1] if isinstance(o, tuple) else o for o in options]
        return values[min(values.index(control.value) + 1, len(values) - 1)]
    return min(control.value + control.step, control.max)


def check_slider_drives_explorer(page, explorer_index: int, slider_index: int, explorer) -> dict:
    """Move one slider of the explorer_index-th explorer on the page, and check that the page's
    readout and chart title become what `explorer` (the same explorer built in this process)
    computes for the new value. Returns the before/after texts for the test's report."""
    box = page.locator(".stmoe-explorer").nth(explorer_index)
    box.scroll_into_view_if_needed()
    readout = box.locator(".stmoe-readout")
    # JupyterLab renders cells lazily: an explorer scrolled into view fills in a moment later
    page.wait_for_function("el => el.innerText.trim().length > 0", arg=readout.element_handle(), timeout=30_000)
    before = readout.inner_text()
    assert " ".join(before.split()) == _plain(explorer.readout.value), "default readout differs"
    name = list(explorer.controls)[slider_index]
    explorer.set(**{name: next_value(explorer.controls[name])})
    expected_readout, expected_title = _plain(explorer.readout.value), explorer.chart_title()
    handle = box.locator(".noUi-handle").nth(slider_index)
    handle.focus()
    handle.press("ArrowRight")
    page.wait_for_function(
        "([el, text]) => el.innerText.split(/\\s+/).join(' ').trim() === text",
        arg=[readout.element_handle(), expected_readout], timeout=30_000)
    if expected_title:
        page.wait_for_function(
            "([el, title]) => [...el.querySelectorAll('svg text')].some(t => t.textContent === title)",
            arg=[box.element_handle(), expected_title], timeout=30_000)
    return {"control": name, "before": before, "after": expected_readout, "title": expected_title}
