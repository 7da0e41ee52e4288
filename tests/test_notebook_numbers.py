"""Every number the notebooks' prose states with three or more significant digits is printed by
a code cell above it, or is a cited or stated fact on the allow-list below: prose cannot drift
from the outputs when a trace or the machine model changes."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from scripts.build_notebooks import is_solution

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# (notebook, number): figures the prose cites or states as inputs, not results; each says why.
ALLOWED = {
    ("00_tour.ipynb", "2606.15453"),              # the paper's arXiv id
    ("03_predictor_design.ipynb", "2606.15453"),
    ("05_hardware_tuning.ipynb", "2606.15453"),
    ("06_reproducing_the_paper.ipynb", "2606.15453"),
    ("05_hardware_tuning.ipynb", "256"),           # the accelerator preset's HBM2 GB/s, an input
    ("05_hardware_tuning.ipynb", "128"),           # its 128 x 128 PE array, an input
    ("05_hardware_tuning.ipynb", "512"),           # the shipped explore spec's largest link, an input
    ("07_your_own_model.ipynb", "30.5"),           # Qwen3-30B-A3B's parameter count, model card
    ("08_operating_regimes.ipynb", "2402.07033"),  # Fiddler's arXiv id
}

# a number may end a word only as a multiplier ("1.154x")
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?=x\b|(?!\w))")
YEAR = re.compile(r"(19|20)\d\d")


def significant_digits(number: str) -> int:
    digits = number.replace(",", "")
    if "." in digits:
        return len(digits.replace(".", "").lstrip("0"))
    return len(digits.strip("0"))


def printed(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        for kind in ("text/plain", "text/html", "text/markdown"):
            value = out.get("data", {}).get(kind)
            if value:
                parts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(parts)


def unprinted_numbers(path: Path) -> list[str]:
    """(cell index, number, context) of each prose number no output above prints."""
    found, above = [], ""
    cells = nbformat.read(path, as_version=4).cells
    for i, cell in enumerate(cells):
        if cell.cell_type == "code":
            above += printed(cell) + "\n"
            continue
        # an exercise states its answer, then the collapsed solution that prints it
        nxt = cells[i + 1] if i + 1 < len(cells) else None
        shown = above + (printed(nxt) if "**Answer:**" in cell.source and nxt is not None
                         and nxt.cell_type == "code" and is_solution(nxt) else "")
        # code spans are names and arguments, link targets are addresses
        text = re.sub(r"\]\([^)]*\)", "]", re.sub(r"`[^`]*`", "", cell.source))
        for m in NUMBER.finditer(text):
            number = m.group(0)
            if significant_digits(number) < 3 or YEAR.fullmatch(number) or (path.name, number) in ALLOWED:
                continue
            forms = {number, number.replace(",", "")}
            if not any(re.search(rf"(?<![\d.]){re.escape(f)}(?!\d)", shown) for f in forms):
                found.append(f"cell {i}: {number} in ...{text[max(0, m.start() - 50):m.end() + 10]!r}")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_prose_numbers_are_printed_above(path):
    missing = unprinted_numbers(path)
    assert not missing, f"{path.name}: numbers the prose states but no cell above prints:\n" + "\n".join(missing)


def test_the_check_catches_a_number_no_cell_prints(tmp_path):
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("print(0.703)")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="recall 0.703\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("Before any output: 0.703."), code,
                nbformat.v4.new_markdown_cell("Recall 0.703, not 0.7031, about 0.7, in 2024, `f(1.234)`, 1.25x."),
                nbformat.v4.new_markdown_cell("Exercise. **Answer:** 0.125, printed by the solution below; 0.250 is not."),
                nbformat.v4.new_code_cell("# Solution\nprint(1 / 8)")]
    nb.cells[-1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="0.125\n")]
    path = tmp_path / "99_example.ipynb"
    nbformat.write(nb, path)
    missing = unprinted_numbers(path)
    assert [m.split(":")[0] + ":" + m.split(":")[1].split(" in")[0] for m in missing] == \
        ["cell 0: 0.703", "cell 2: 0.7031", "cell 2: 1.25", "cell 3: 0.250"]
