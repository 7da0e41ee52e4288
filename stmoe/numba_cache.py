"""Where numba keeps the compiled kernels (`njit(cache=True)`), so that `import stmoe` works
from a read-only install with a read-only HOME, as in a container run as an arbitrary user.

numba caches beside the source (`__pycache__`) or in the user's cache folder and raises at
decoration time when neither is writable. Imported by `stmoe/__init__.py` before any kernel
module: if neither place is writable and `NUMBA_CACHE_DIR` is unset, the cache goes to a folder
of this user's in the temporary directory (compiled again after a reboot, no other cost).
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
KERNEL_DIRS = (PACKAGE / "sim", PACKAGE / "predictors")


def _writable(folder: Path) -> bool:
    """Whether numba could create and write its cache files under `folder`."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    return existing is not None and os.access(existing, os.W_OK | os.X_OK)


def _user_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "numba"


def fallback_dir() -> Path | None:
    """The folder numba should cache in, or None where its own choice works."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    if all(_writable(d / "__pycache__") for d in KERNEL_DIRS) or _writable(_user_cache()):
        return None
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"stmoe-numba-cache-{uid}"


def _private(folder: Path) -> bool:
    """Whether `folder` is a real directory of this user's that nobody else may write: numba's
    cache files are pickles, so a folder another user made (or can write) in a shared temporary
    directory would let them run code as this user."""
    try:
        st = os.lstat(folder)
    except OSError:
        return False
    return (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022)


def use_writable_cache() -> None:
    folder = fallback_dir()
    if folder is None:
        return
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    if not _private(folder):   # taken by someone else: a fresh private folder for this process
        folder = Path(tempfile.mkdtemp(prefix="stmoe-numba-cache-"))
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    # numba reads the variable when first imported: tell it too if that has already happened.
    from numba.core import config

    config.CACHE_DIR = str(folder)


use_writable_cache()
