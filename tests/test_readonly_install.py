"""`import stmoe` and its compiled kernels from a read-only install with a read-only HOME (issue 16):
numba's cache falls back to a folder in the temporary directory."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import os, stmoe
from stmoe.evaluation import evaluate
from stmoe.sim.hardware import model_dims
from stmoe.sim.timing import simulate
t = stmoe.synthetic_trace(64, 3, 8, 2, num_sequences=2, prompt_tokens=8, seed=0)
simulate(t, "accelerator", "st-moe", dims=model_dims(t, hidden=256, ffn=128))
evaluate(t, ["st-moe"])
print(stmoe.__file__)
print(os.environ["NUMBA_CACHE_DIR"])
"""


def _read_only_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
    for p in [dst, *dst.rglob("*")]:
        p.chmod(stat.S_IMODE(p.stat().st_mode) & ~0o222)


def _as_unprivileged(cmd: list[str]) -> list[str]:
    """Root writes anywhere: drop the capabilities that let it, so modes bind as for anyone."""
    if os.geteuid() != 0:
        return cmd
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: cannot make a folder read-only for this process")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--inh-caps=-all", *cmd]


def test_import_and_kernels_from_a_read_only_install(tmp_path):
    site = tmp_path / "site"
    _read_only_tree(ROOT / "stmoe", site / "stmoe")
    home = tmp_path / "home"
    home.mkdir(mode=0o555)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "XDG_"))}
    env.update(HOME=str(home), PYTHONPATH=str(site), TMPDIR=str(tmp))
    try:
        done = subprocess.run(_as_unprivileged([sys.executable, "-c", SCRIPT]), env=env, cwd=tmp,
                              capture_output=True, text=True, timeout=600)
    finally:
        for p in [site, *site.rglob("*"), home]:
            p.chmod(stat.S_IMODE(p.stat().st_mode) | 0o200)  # so pytest can clean up
    assert done.returncode == 0, done.stderr[-2000:]
    where, cache = done.stdout.split()
    assert where == str(site / "stmoe" / "__init__.py")
    assert Path(cache).parent == tmp and any(Path(cache).rglob("*.nbi"))
    assert not any((site / "stmoe").rglob("__pycache__"))


def test_a_cache_folder_someone_else_can_write_is_not_used(tmp_path, monkeypatch):
    """numba's cache files are pickles: a fallback folder that another user made, or that anyone
    may write, in the shared temporary directory is replaced by a fresh private one."""
    import stmoe.numba_cache as nc

    shared = tmp_path / "stmoe-numba-cache-shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    from numba.core import config

    monkeypatch.setattr(nc, "fallback_dir", lambda: shared)
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(config, "CACHE_DIR", config.CACHE_DIR)   # restored after the test
    nc.use_writable_cache()
    chosen = nc.os.environ["NUMBA_CACHE_DIR"]
    assert chosen != str(shared) and nc._private(nc.Path(chosen))
