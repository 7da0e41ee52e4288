"""`stmoe lab [--print-command]`: open the book, JupyterLab on notebooks/00_tour.ipynb, with
its kernel started and without the first-run "get notified about Jupyter news?" prompt over
the first explorer."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from stmoe.errors import ConfigError

FIRST_NOTEBOOK = "00_tour.ipynb"
# Defaults for this launch only: a reader's own JupyterLab settings still win over them.
QUIET_NOTIFICATIONS = {"@jupyterlab/apputils-extension:notification": {
    "fetchNews": "false", "checkForUpdates": False}}


def register(sub) -> None:
    p = sub.add_parser("lab", help="open the book (JupyterLab on the first notebook)")
    p.add_argument("--notebooks", type=Path, default=None, metavar="DIR",
                   help="the book's notebooks/ folder (default: the one of this checkout, or ./notebooks)")
    p.add_argument("--print-command", action="store_true",
                   help="print the JupyterLab command instead of running it")
    p.set_defaults(run=run)


def notebooks_dir(given: Path | None) -> Path:
    """The notebooks folder: the given one, the one beside this package's source checkout, or
    ./notebooks; the first notebook must be in it."""
    candidates = [given] if given is not None else [
        Path(__file__).resolve().parents[2] / "notebooks", Path.cwd() / "notebooks"]
    for folder in candidates:
        if (folder / FIRST_NOTEBOOK).is_file():
            return folder.resolve()
    if given is not None:
        raise ConfigError(f"--notebooks: no {FIRST_NOTEBOOK} in {given}; give the book's notebooks/ folder")
    raise ConfigError(f"no {FIRST_NOTEBOOK} in this checkout or ./notebooks; run `stmoe lab` from a "
                      "clone of the project or give --notebooks DIR")


def settings_dir(into: Path) -> Path:
    """An app-settings folder for this launch: JupyterLab's own app settings, if any, with the
    news and update checks off by default."""
    from jupyterlab.commands import get_app_dir
    own = Path(get_app_dir()) / "settings"
    if own.is_dir():
        shutil.copytree(own, into, dirs_exist_ok=True)
    into.mkdir(parents=True, exist_ok=True)
    overrides = into / "overrides.json"
    merged = json.loads(overrides.read_text()) if overrides.is_file() else {}
    for plugin, values in QUIET_NOTIFICATIONS.items():
        merged[plugin] = {**values, **merged.get(plugin, {})}
    overrides.write_text(json.dumps(merged, indent=2))
    return into


def lab_command(notebooks: Path, app_settings: Path) -> list[str]:
    return [sys.executable, "-m", "jupyterlab", f"--notebook-dir={notebooks.parent}",
            f"--LabApp.app_settings_dir={app_settings}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.news_url=", f"--LabApp.default_url=/lab/tree/{notebooks.name}/{FIRST_NOTEBOOK}"]


def run(args) -> int:
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        raise ConfigError("JupyterLab is not installed; install the notebook extra: "
                          "pip install 'stmoe[notebooks]'") from None
    notebooks = notebooks_dir(args.notebooks)
    # kept (not a temporary folder) so that a printed command still works when pasted later
    command = lab_command(notebooks, settings_dir(lab_settings_home()))
    if args.print_command:
        print(shlex.join(command))   # quoted: a folder name with spaces or ";" pastes safely
        return 0
    return subprocess.call(command, env=os.environ.copy())


def lab_settings_home() -> Path:
    """Where `stmoe lab` keeps its app-settings folder: $XDG_CACHE_HOME/stmoe/lab-settings, or
    ~/.cache/stmoe/lab-settings."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "stmoe" / "lab-settings"
