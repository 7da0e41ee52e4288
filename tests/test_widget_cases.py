"""The widget benchmark times every chapter's explorer, with changes to controls it has."""

import importlib
import inspect
import pkgutil

import stmoe.widgets
from benchmarks.widget_cases import CASES


def chapter_factories():
    for info in pkgutil.iter_modules(stmoe.widgets.__path__):
        module = importlib.import_module(f"stmoe.widgets.{info.name}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.endswith("_explorer") and fn.__module__ == module.__name__ and not name.startswith("_"):
                yield name, fn


def test_every_chapter_explorer_is_benchmarked():
    covered = set()
    for _, factory, changes in CASES:
        assert changes and all(isinstance(c, dict) and c for c in changes)
        # a case is the factory itself or a lambda calling it by name
        covered |= {factory.__name__} | set(factory.__code__.co_names)
    # latency_explorer is the tour's engine: tour_explorer (benchmarked) builds one
    missing = {name for name, _ in chapter_factories()} - covered - {"latency_explorer"}
    assert not missing, f"explorers without a benchmark case: {sorted(missing)}"
