"""environment.yml must ask for the same packages, at the same minimum versions, as pyproject."""

import re
import tomllib

import yaml

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name where they differ
PIP_ONLY = {"scalesim"}  # pip installs it through the -e line's extras; no conda-forge package is relied on


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req.split(";")[0])
    return m.group(1).lower(), m.group(2).replace(" ", "")


def test_environment_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(_split(r) for r in project["dependencies"])
    for reqs in project["optional-dependencies"].values():
        wanted.update(_split(r) for r in reqs)
    wanted = {CONDA_NAMES.get(n, n): spec for n, spec in wanted.items() if n not in PIP_ONLY}

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {}
    pip_lines = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_lines += dep["pip"]
        else:
            name, spec = _split(dep)
            conda[name] = spec
    conda.pop("python"), conda.pop("pip")
    assert conda == wanted
    extras = set(project["optional-dependencies"])
    assert pip_lines == [f"-e .[{','.join(sorted(extras, key=list(project['optional-dependencies']).index))}]"]
    assert env["channels"] == ["conda-forge", "nodefaults"]
