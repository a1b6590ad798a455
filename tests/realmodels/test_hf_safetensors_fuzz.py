"""Damaged .safetensors files: whatever the bytes, loading gives the model or one
ModelLoadError line naming the file, never another exception.

The library validates the header; this checks that every way it can fail (and every
way a damaged file can still parse but not fit) reaches the user as one line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freezedsl.errors import FreezeError
from freezedsl.loading import load_model

safetensors_torch = pytest.importorskip("safetensors.torch")

ARCH = "torch.nn:Linear(4, 3)"


@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("st") / "w.safetensors"
    torch.manual_seed(0)
    safetensors_torch.save_file(torch.nn.Linear(4, 3).state_dict(), path)
    return path.read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_safetensors_is_one_line(good_bytes: bytes, tmp_path: Path, data: st.DataObject) -> None:
    raw = bytearray(good_bytes)
    header_end = 8 + int.from_bytes(raw[:8], "little")
    how = data.draw(st.sampled_from(["truncate", "flip-header", "flip-length"]))
    if how == "truncate":
        raw = raw[: data.draw(st.integers(9, len(raw) - 1))]
    elif how == "flip-header":
        at = data.draw(st.integers(9, header_end - 1))
        raw[at] = data.draw(st.integers(32, 126))
    else:
        raw[data.draw(st.integers(0, 7))] = data.draw(st.integers(0, 255))
    path = tmp_path / "w.safetensors"
    path.write_bytes(bytes(raw))
    try:
        loaded = load_model(str(path), arch=ARCH)
    except FreezeError as exc:
        text = str(exc)
        assert "\n" not in text and str(path) in text, text
    else:
        assert isinstance(loaded.module, torch.nn.Linear)
