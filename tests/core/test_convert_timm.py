"""``convert ... to FrozenBatchNorm2d`` on timm models, whose norm layers are
``BatchNormAct2d`` (a BatchNorm2d subclass fused with its activation)."""

from __future__ import annotations

import pytest
import torch

import freezedsl
from freezedsl.errors import SelectionError

timm = pytest.importorskip("timm")


def _randomise_norms(model: torch.nn.Module) -> None:
    """Non-default statistics and affine values, so that a lost copy would show."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.randn(m.num_features, generator=gen))
                m.bias.copy_(torch.randn(m.num_features, generator=gen))


@pytest.mark.slow
def test_batchnormact_becomes_timms_frozen_variant_with_the_same_output() -> None:
    from timm.layers import BatchNormAct2d, FrozenBatchNormAct2d

    model = timm.create_model("efficientnet_b0", pretrained=False).eval()
    _randomise_norms(model)
    bn_act = [name for name, m in model.named_modules() if type(m) is BatchNormAct2d]
    assert len(bn_act) == 49
    acts = {name: model.get_submodule(name).act for name in bn_act}
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(x)

    plan = freezedsl.apply(model, "convert all to FrozenBatchNorm2d")

    assert "conversions: 49 BatchNormAct2d -> FrozenBatchNormAct2d (timm)" in str(plan)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    for name in bn_act:
        new = model.get_submodule(name)
        assert type(new) is FrozenBatchNormAct2d
        assert new.act is acts[name]  # the activation is kept, not dropped
    with torch.no_grad():
        after = model(x)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


def test_plain_and_fused_norms_convert_together() -> None:
    from timm.layers import BatchNormAct2d, FrozenBatchNormAct2d
    from torchvision.ops import FrozenBatchNorm2d

    model = torch.nn.Sequential(torch.nn.BatchNorm2d(3), BatchNormAct2d(3, act_layer=torch.nn.ReLU))
    plan = freezedsl.apply(model, "convert all to FrozenBatchNorm2d")
    assert [type(m) for m in model] == [FrozenBatchNorm2d, FrozenBatchNormAct2d]
    assert "1 BatchNorm2d -> FrozenBatchNorm2d, 1 BatchNormAct2d -> FrozenBatchNormAct2d (timm)" in str(plan)


class OwnNorm(torch.nn.BatchNorm2d):
    """A subclass freezedsl knows nothing about: converting it would drop its forward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * 2


def test_unknown_subclass_only_is_refused_with_the_reason() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), OwnNorm(3))
    with pytest.raises(SelectionError) as info:
        freezedsl.apply(model, "convert all to FrozenBatchNorm2d")
    message = str(info.value)
    assert "its BatchNorm2d subclasses OwnNorm are left alone" in message
    assert "FrozenBatchNorm2d would drop what the subclass adds" in message
    assert isinstance(model[1], OwnNorm)  # nothing changed


def test_a_scope_without_batchnorm_keeps_the_short_message() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.LayerNorm(3))
    with pytest.raises(SelectionError, match=r"contains no BatchNorm2d module with running statistics;"):
        freezedsl.apply(model, "convert all to FrozenBatchNorm2d")
