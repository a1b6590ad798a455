"""Fixtures for the robustness tests: model files are built once per session."""

from __future__ import annotations

import pytest

from ._support import ModelFiles, build_model_files


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> ModelFiles:
    return build_model_files(tmp_path_factory.mktemp("robustness-models"))
