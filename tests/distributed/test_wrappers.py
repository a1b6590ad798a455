"""The single-process claims of docs/distributed.md: torch.compile and activation checkpointing."""

from __future__ import annotations

import warnings
from typing import cast

import pytest
import torch

import freezedsl
from freezedsl.testing import small_cnn

checkpoint_wrapper_mod = pytest.importorskip(
    "torch.distributed.algorithms._checkpoint.checkpoint_wrapper",
    reason="checkpoint_wrapper is not available in this torch build",
)
CheckpointImpl = checkpoint_wrapper_mod.CheckpointImpl
checkpoint_wrapper = checkpoint_wrapper_mod.checkpoint_wrapper


def _checkpointed(impl: object) -> torch.nn.Module:
    """small_cnn with a frozen first block and the second block checkpointed."""
    torch.manual_seed(0)
    model = small_cnn(num_classes=10)
    freezedsl.apply(model, "freeze features.0")
    features = cast(torch.nn.Sequential, model.get_submodule("features"))
    features[1] = checkpoint_wrapper(features[1], checkpoint_impl=impl)
    return model


def _backward(model: torch.nn.Module) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model(torch.randn(4, 1, 8, 8)).sum().backward()
    return [str(w.message) for w in caught]


def test_reentrant_checkpoint_after_frozen_prefix_gets_no_gradient() -> None:
    model = _checkpointed(CheckpointImpl.REENTRANT)
    messages = _backward(model)
    inner = model.get_submodule("features.1._checkpoint_wrapped_module.conv")
    assert inner.weight.requires_grad
    assert inner.weight.grad is None  # trainable, yet never trained
    assert model.get_submodule("features.3.conv").weight.grad is not None
    assert any("None of the inputs have requires_grad=True" in m for m in messages)


def test_non_reentrant_checkpoint_trains_after_frozen_prefix() -> None:
    model = _checkpointed(CheckpointImpl.NO_REENTRANT)
    _backward(model)
    inner = model.get_submodule("features.1._checkpoint_wrapped_module.conv")
    assert inner.weight.grad is not None


def test_checkpoint_wrapper_is_transparent_in_paths() -> None:
    """The _checkpoint_wrapped_module level is skipped: rules and plans use bare names."""
    model = _checkpointed(CheckpointImpl.NO_REENTRANT)
    whole = freezedsl.plan(model, "freeze features.1")
    assert "features.1.conv.weight" in whole.frozen
    assert not any("_checkpoint_wrapped_module" in n for n in whole.frozen + whole.trainable)
    inner = freezedsl.plan(model, "freeze features.1.conv")  # the bare path inside the block
    assert "features.1.conv.weight" in inner.frozen
    assert "features.1.bn.weight" in inner.trainable
    with pytest.raises(freezedsl.SelectionError):
        freezedsl.plan(model, "freeze features.1._checkpoint_wrapped_module.conv")
    freezedsl.apply(model, "freeze features.1.conv")  # reaches the wrapped parameters
    wrapped = "features.1._checkpoint_wrapped_module"
    assert not model.get_submodule(f"{wrapped}.conv").weight.requires_grad
    assert model.get_submodule(f"{wrapped}.bn").weight.requires_grad


@pytest.mark.slow
def test_freezing_after_compile_recompiles() -> None:
    pytest.importorskip("torch._dynamo")
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    model = small_cnn(num_classes=10)
    compiled = torch.compile(model, backend="aot_eager")  # no C++ toolchain needed
    x = torch.randn(4, 1, 8, 8)
    compiled(x).sum().backward()
    graphs = counters["stats"]["unique_graphs"]
    assert graphs >= 1

    plan = freezedsl.apply(compiled, "freeze features")  # bare names through the wrapper
    assert plan.wrapper == "OptimizedModule"
    compiled(x).sum().backward()
    assert counters["stats"]["unique_graphs"] > graphs  # requires_grad guard failed

    # Freezing first: the second call reuses the first compilation.
    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    model = small_cnn(num_classes=10)
    freezedsl.apply(model, "freeze features")
    compiled = torch.compile(model, backend="aot_eager")
    compiled(x).sum().backward()
    compiled(x).sum().backward()
    assert counters["stats"]["unique_graphs"] == 1
    torch._dynamo.reset()
