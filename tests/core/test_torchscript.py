"""``freeze stats`` and ``convert`` on a TorchScript module: one clear error, nothing changed.

ScriptModules take no forward pre-hooks (``freeze stats`` pins norm layers with one) and
their compiled code ignores a swapped submodule (``convert``), so both are refused before
any flag moves; plain ``freeze``/``unfreeze`` and ``unfreeze stats`` still work.
"""

from __future__ import annotations

import io
import warnings

import pytest
import torch
from torch import nn

import freezedsl
from freezedsl import FreezeError


def _archive() -> bytes:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script is deprecated
        torch.jit.save(torch.jit.script(model), buffer)
    return buffer.getvalue()


# Scripted once, when pytest collects this file: under pytest, after another test has
# scripted a Conv2d with other settings, torch 2.14's script compiler can fail on
# Conv2d.forward ("builtin cannot be used as a value"). Loading an archive compiles
# no Python source, and each test gets its own module, as from a file.
ARCHIVE = _archive()


def scripted() -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.load is deprecated
        return torch.jit.load(io.BytesIO(ARCHIVE))


@pytest.mark.parametrize(
    ("rules", "line", "statement"),
    [
        ("freeze 0\nfreeze stats type=BatchNorm2d\n", 2, "freeze stats type=BatchNorm2d"),
        ("freeze 0\nconvert 1 to FrozenBatchNorm2d\n", 2, "convert 1 to FrozenBatchNorm2d"),
    ],
)
def test_stats_and_convert_refused_on_scriptmodule(rules: str, line: int, statement: str) -> None:
    model = scripted()
    before = [p.requires_grad for p in model.parameters()]
    training = [m.training for m in model.modules()]
    with pytest.raises(FreezeError) as info:
        freezedsl.apply(model, rules)
    err = info.value
    assert err.line == line
    assert f"{statement} cannot run on a TorchScript module" in str(err)
    assert "apply it to the Python model before scripting" in str(err)
    assert "RuntimeError" not in str(err)
    # atomic: the `freeze 0` before it did not happen either
    assert [p.requires_grad for p in model.parameters()] == before
    assert [m.training for m in model.modules()] == training
    assert not model(torch.zeros(1, 3, 5, 5)).isnan().any()


def test_plain_freeze_and_unfreeze_stats_still_work_on_scriptmodule() -> None:
    model = scripted()
    freezedsl.apply(model, "freeze 0\nunfreeze stats type=BatchNorm2d\n")
    assert [p.requires_grad for p in model.parameters()] == [False, False, True, True]


def test_python_model_then_script_is_the_way() -> None:
    """The hint's advice works: freeze stats on the Python model, then script it."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    freezedsl.apply(model, "freeze stats type=BatchNorm2d\n")
    assert not model[1].training


def test_traced_modules_are_selected_by_the_class_they_were_traced_from() -> None:
    """torch.jit.trace wraps every layer as TracedModule; type= still sees BatchNorm2d."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated
        traced = torch.jit.trace(model, torch.zeros(1, 3, 5, 5))
    freezedsl.apply(traced, "freeze all except type=BatchNorm2d\n")
    assert [p.requires_grad for p in traced.parameters()] == [False, False, True, True]
