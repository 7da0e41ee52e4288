"""Shared fixtures. Tests that use the real traces in ../shared/traces skip where it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_TRACES = Path(os.environ.get("STMOE_SHARED_TRACES", ROOT.parent / "shared" / "traces"))
QWEN_CSV = SHARED_TRACES / "qwen3-30b-a3b" / "qwen.route.csv"
GRANITE_SGLANG = SHARED_TRACES / "granite-3.0-1b-a400m" / "granite-3.0-1b-a400m_sglang_routing-trace.jsonl"
GRANITE_HF = SHARED_TRACES / "granite-3.0-1b-a400m" / "granite-3.0-1b-a400m_transformers_length_cap.jsonl"


def _shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real trace {path} is absent (../shared/traces is not beside the project)")
    return path


@pytest.fixture
def qwen_csv() -> Path:
    return _shared(QWEN_CSV)


@pytest.fixture
def granite_sglang() -> Path:
    return _shared(GRANITE_SGLANG)


@pytest.fixture
def granite_hf() -> Path:
    return _shared(GRANITE_HF)
