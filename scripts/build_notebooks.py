"""Execute the notebooks in place and strip widget state, as they are committed.

    python scripts/build_notebooks.py [notebooks/NN_name.ipynb ...]

Executed outputs are kept (nbval compares the `# NBVAL_CHECK_OUTPUT` cells against them and
readers without a kernel see them); widget state (about 1 MB per offline chart) is removed by
nbstripout with --keep-output --keep-count, which is what nbval needs.

Exercise solutions (code cells whose first line is `# Solution`) are collapsed: JupyterLab and
the classic notebook show their output but hide their source until the reader opens it, so the
stated answer (the `**Answer:**` line of the exercise above) comes before the code.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ExecutePreprocessor

ROOT = Path(__file__).resolve().parent.parent


def is_solution(cell) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith("# Solution")


def build(path: Path) -> float:
    start = time.perf_counter()
    nb = nbformat.read(path, as_version=4)
    ExecutePreprocessor(timeout=600, kernel_name="python3").preprocess(nb, {"metadata": {"path": str(path.parent)}})
    for cell in nb.cells:
        if is_solution(cell):
            cell.metadata["jupyter"] = {"source_hidden": True}
    tmp = path.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    tmp.replace(path)
    subprocess.run([sys.executable, "-m", "nbstripout", "--keep-output", "--keep-count", str(path)], check=True)
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    paths = [Path(p) for p in argv] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    total = 0.0
    for path in paths:
        seconds = build(path)
        total += seconds
        print(f"{path.name}: executed in {seconds:.1f} s", flush=True)
    print(f"all: {total:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
