"""Driving a notebook in JupyterLab the way a reader does: open, Run All, move a slider."""

from __future__ import annotations

RUN_TIMEOUT_MS = 240_000


def open_and_run_all(page, lab, notebook: str) -> None:
    # A workspace per notebook: the default one reopens notebooks of earlier tests in the session.
    workspace = notebook.removesuffix(".ipynb")
    page.goto(f"{lab['base']}/lab/workspaces/{workspace}/tree/notebooks/{notebook}?token={lab['token']}")
    # The kernel is ready when the debugger button is enabled; "idle" alone left cells unexecuted.
    page.wait_for_selector(".jp-DebuggerBugButton[aria-disabled='false']", timeout=120_000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel:text-is('Run All Cells')").click()
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""", timeout=RUN_TIMEOUT_MS)


def readout_texts(page) -> list[str]:
    return page.locator(".stmoe-readout").all_inner_texts()


def nudge_slider(page, index: int, presses: int = 1, key: str = "ArrowRight") -> None:
    """Move the index-th slider of the page by keyboard, as a reader would."""
    handle = page.locator(".widget-slider .noUi-handle").nth(index)
    handle.scroll_into_view_if_needed()
    handle.focus()
    for _ in range(presses):
        handle.press(key)
