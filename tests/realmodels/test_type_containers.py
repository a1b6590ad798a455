"""FZ116 on real architectures (meta device): a type selector that matches norm layers
and also the conv+norm blocks around them (torchvision ``Conv2dNormActivation``, timm
``ConvNormAct``) warns with a hint to use ``type=norm``; leaf-only and block-only matches
and ``type=norm`` do not."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

import freezedsl
from freezedsl.lint.rulefiles import check_source

torchvision = pytest.importorskip("torchvision")


def _timm(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        timm = pytest.importorskip("timm")
        return timm.create_model(name, pretrained=False)

    return build


# model, a container class the Norm regex hits
MODELS: dict[str, tuple[Callable[[], nn.Module], str]] = {
    "efficientnet_b0": (lambda: torchvision.models.efficientnet_b0(), "Conv2dNormActivation"),
    "mobilenet_v3_small": (lambda: torchvision.models.mobilenet_v3_small(), "Conv2dNormActivation"),
    "timm_regnety_002": (_timm("regnety_002"), "ConvNormAct"),
}


def _build(name: str) -> nn.Module:
    with torch.device("meta"):
        return MODELS[name][0]()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_type_regex_norm_warns_on_conv_norm_blocks(name: str) -> None:
    model = _build(name)
    plan = freezedsl.plan(model, 'freeze all except type~"Norm"')
    (warning,) = [w for w in plan.warnings if "container modules" in w]
    assert MODELS[name][1] in warning and "use type=norm" in warning
    found = check_source("r.frz", 'freeze all except type~"Norm"', model=model)
    assert [(d.code, d.line, d.col) for d in found if d.code == "FZ116"] == [("FZ116", 1, 19)]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize(
    "text",
    ["freeze all except type=norm", "freeze type=BatchNorm2d?", 'freeze type~"^BatchNorm"?', "freeze type=Conv2d"],
)
def test_no_warning_for_norm_set_leaves_or_blocks(name: str, text: str) -> None:
    model = _build(name)
    assert not [w for w in freezedsl.plan(model, text).warnings if "container modules" in w]
    assert not [d for d in check_source("r.frz", text, model=model) if d.code == "FZ116"]


def test_no_warning_for_a_selector_of_whole_blocks() -> None:
    with torch.device("meta"):
        model = torchvision.models.resnet50()
    assert freezedsl.plan(model, "freeze type=Bottleneck").warnings == []
    assert freezedsl.plan(model, 'freeze type~"Bottleneck|Sequential"').warnings == []
