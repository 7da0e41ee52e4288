"""The package's layering (pyproject.toml [tool.importlinter]) holds, and covers every module."""

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import stmoe

ROOT = Path(__file__).resolve().parents[1]


def test_every_top_level_module_has_a_layer():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    named = {m.strip() for layer in layers for m in layer.replace(":", "|").split("|")}
    modules = {m.name for m in pkgutil.iter_modules(stmoe.__path__)} - {"__main__"}
    assert modules == named, f"not layered: {sorted(modules - named)}; unknown: {sorted(named - modules)}"


def test_lint_imports_keeps_every_contract():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
