"""Shared fixtures for the core tests (strategies live in strategies.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from torch import nn

from .models import SmallNet, TinyGPT, mobilenet_v3_small_meta, resnet18_meta

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "core"


@pytest.fixture
def small() -> nn.Module:
    return SmallNet()


@pytest.fixture
def gpt() -> TinyGPT:
    return TinyGPT()


@pytest.fixture
def resnet() -> nn.Module:
    return resnet18_meta()


@pytest.fixture
def mobilenet() -> Any:
    return mobilenet_v3_small_meta()


@pytest.fixture
def repo() -> Path:
    return REPO


def check_golden(name: str, actual: str) -> None:
    """Compare with tests/golden/core/NAME; UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"golden file {path} is missing; run with UPDATE_GOLDEN=1 to create it")
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{path} differs (UPDATE_GOLDEN=1 rewrites it after review)"
