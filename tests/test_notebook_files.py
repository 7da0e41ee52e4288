"""The committed notebooks: named NN_snake_title, executed, stripped of widget state."""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from scripts.build_notebooks import is_solution

ROOT = Path(__file__).resolve().parents[1]

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_exist_and_are_named_in_order():
    names = [p.name for p in NOTEBOOKS]
    assert names, "no notebooks in notebooks/"
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", n) for n in names), names
    numbers = [int(n[:2]) for n in names]
    assert numbers == list(range(len(numbers))), f"notebooks are not numbered 00..: {names}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stripped_and_executed(path):
    verify = subprocess.run([sys.executable, "-m", "nbstripout", "--verify", "--keep-output",
                             "--keep-count", str(path)], capture_output=True, text=True)
    assert verify.returncode == 0, f"{path.name} carries widget state or metadata; run scripts/build_notebooks.py"
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code), f"{path.name} has unexecuted cells"
    assert not any(o.get("output_type") == "error" for c in code for o in c.outputs), f"{path.name} has errors"
    assert any("NBVAL_CHECK_OUTPUT" in c.source for c in code), f"{path.name} has no checkpoint cell"


RAW_REPR = re.compile(r"np\.(float|int)\d+\(|\b[A-Z][A-Za-z]+\([a-z_]+=")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_solutions_are_collapsed_after_a_stated_answer(path):
    """An exercise says its answer in words (a `**Answer:**` line) and keeps the code that shows
    it collapsed below; what the code prints is formatted text, never a raw repr."""
    cells = nbformat.read(path, as_version=4).cells
    solutions = [i for i, c in enumerate(cells) if is_solution(c)]
    assert solutions, f"{path.name} has no exercise solutions"
    for i in solutions:
        assert cells[i].metadata.get("jupyter", {}).get("source_hidden"), \
            f"{path.name} cell {i}: solution not collapsed; run scripts/build_notebooks.py"
        before = cells[i - 1]
        assert before.cell_type == "markdown" and "**Answer:**" in before.source, \
            f"{path.name} cell {i}: the markdown cell above a solution must state its **Answer:**"
        for out in cells[i].outputs:
            text = out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
            assert not RAW_REPR.search(text), f"{path.name} cell {i} prints a raw repr: {text[:80]!r}"
