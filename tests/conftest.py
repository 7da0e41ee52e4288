"""Shared fixtures.

The whole session, notebooks included, runs as on a fresh clone with no network: no folder of
public traces named by STMOE_SHARED_TRACES and an empty download cache, so every trace loaded
by name comes from data/. The readers' tests read the public traces' original files, kept in
data/sources/."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "data" / "sources"
QWEN_CSV = SOURCES / "qwen3-30b-a3b" / "qwen.route.csv"
GRANITE_SGLANG = SOURCES / "granite-3.0-1b-a400m" / "granite-3.0-1b-a400m_sglang_routing-trace.jsonl"
GRANITE_HF = SOURCES / "granite-3.0-1b-a400m" / "granite-3.0-1b-a400m_transformers_length_cap.jsonl"
# Inherited by the notebooks' kernels, which nbval starts from this process.
os.environ.pop("STMOE_SHARED_TRACES", None)
os.environ["STMOE_CACHE"] = str(ROOT / "build" / "empty-download-cache")


@pytest.fixture
def qwen_csv() -> Path:
    return QWEN_CSV


@pytest.fixture
def granite_sglang() -> Path:
    return GRANITE_SGLANG


@pytest.fixture
def granite_hf() -> Path:
    return GRANITE_HF


@pytest.fixture
def qwen() -> str:
    """The Qwen3-30B-A3B trace by name: the copy shipped in data/."""
    return "qwen3-30b-a3b"


@pytest.fixture
def granite() -> str:
    """The Granite SGLang trace by name: the copy shipped in data/."""
    return "granite-3.0-1b-a400m-sglang"


# ---------------------------------------------------------------- real-browser fixtures
# Real-browser fixtures: JupyterLab on 127.0.0.1 and Debian's chromium driven by Playwright.

#
# The recipe: never `playwright install` (no CDN here), use /usr/bin/chromium;
# `--ServerApp.allow_root=True` because CI runs as root; `autoStartDefaultKernel` so no kernel
# dialog appears; wait for the debugger button to be enabled before Run All. Every request that
# leaves loopback is blocked and recorded, so a test can prove the page needs no network.


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "build" / "browser-artifacts"


def _require_browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium); browser tests need it")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("python playwright is not installed (the `browser` extra)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    """A JupyterLab server whose root is a scratch copy of the project's notebooks."""
    _require_browser()
    root = Path(__file__).resolve().parents[1]
    work = tmp_path_factory.mktemp("lab")
    shutil.copytree(root / "notebooks", work / "notebooks")
    settings = work / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # windowingMode "none": every cell is in the page, so waits and readouts see all of them.
    (settings / "tracker.jupyterlab-settings").write_text(
        json.dumps({"autoStartDefaultKernel": True, "windowingMode": "none"}))
    port, token = _free_port(), "stmoe-test"
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               JUPYTERLAB_SETTINGS_DIR=str(work / "settings"), JUPYTER_CONFIG_DIR=str(work / "config"))
    log = open(work / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", "--ServerApp.allow_root=True",
         f"--ServerApp.root_dir={work}", "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited: {(work / 'lab.log').read_text()[-2000:]}")
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("JupyterLab did not start within 60 s")
    yield {"base": base, "token": token, "root": work}
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="session")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    """A page whose every non-loopback request is blocked and listed in `page.outside_requests`."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    outside: list[str] = []

    def guard(route):
        url = route.request.url
        host = url.split("://", 1)[-1].split("/", 1)[0].split(":")[0]
        if url.startswith(("data:", "blob:", "file:")) or host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", guard)
    pg = context.new_page()
    pg.outside_requests = outside
    yield pg
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
