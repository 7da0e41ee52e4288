"""`stmoe lab`: JupyterLab on the first notebook, the news prompt off for that launch only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT
from stmoe.cli.lab_command import QUIET_NOTIFICATIONS, lab_command, settings_dir


def test_print_command_opens_the_tour_with_news_and_updates_off(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "stmoe", "lab", "--print-command"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout
    settings = tmp_path / "stmoe" / "lab-settings"
    assert f"--LabApp.app_settings_dir={settings}" in out   # still there for a pasted command
    assert json.loads((settings / "overrides.json").read_text()) == QUIET_NOTIFICATIONS
    assert "-m jupyterlab" in out and f"--notebook-dir={ROOT}" in out
    assert "--LabApp.default_url=/lab/tree/notebooks/00_tour.ipynb" in out
    assert "--LabApp.news_url=" in out and "NeverCheckForUpdate" in out


def test_settings_keep_existing_overrides_and_add_quiet_defaults(tmp_path):
    into = tmp_path / "settings"
    into.mkdir()
    plugin = next(iter(QUIET_NOTIFICATIONS))
    (into / "overrides.json").write_text(json.dumps({plugin: {"fetchNews": "true"}, "other": {"x": 1}}))
    settings_dir(into)
    merged = json.loads((into / "overrides.json").read_text())
    assert merged["other"] == {"x": 1}
    assert merged[plugin] == {"fetchNews": "true", "checkForUpdates": False}  # an explicit choice wins
    fresh = settings_dir(tmp_path / "fresh")
    assert json.loads((fresh / "overrides.json").read_text()) == QUIET_NOTIFICATIONS
    assert f"--LabApp.app_settings_dir={fresh}" in lab_command(ROOT / "notebooks", fresh)


def test_missing_notebooks_is_one_line(tmp_path):
    run = subprocess.run([sys.executable, "-m", "stmoe", "lab", "--notebooks", str(tmp_path)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and f"--notebooks: no 00_tour.ipynb in {tmp_path}" in run.stderr
    assert "give --notebooks" not in run.stderr
