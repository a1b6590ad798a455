"""``lr decay`` against timm 1.0's ``param_groups_layer_decay`` on a real timm ViT (tiny
config, meta device): the lr scale, weight decay and frozen set of every parameter must
be timm's (issue 13.5).

timm's ViT layers (``group_matcher``): the stem ``cls_token|pos_embed|patch_embed`` is
layer 0, block i is layer i+1, the final ``norm`` shares the last block's layer and the
head gets 1x. In freezedsl that reads:
``lr decay F over {cls_token, pos_embed, patch_embed}, blocks[:-1], {blocks[-1], norm}``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

import freezedsl

timm = pytest.importorskip("timm")
from timm.optim import param_groups_layer_decay

LAYERS = "{cls_token, pos_embed, patch_embed}, blocks[:-1], {blocks[-1], norm}"


def _vit() -> torch.nn.Module:
    with torch.device("meta"):
        return timm.create_model(
            "vit_tiny_patch16_224", pretrained=False, depth=4, embed_dim=32, num_heads=2, img_size=32,
            num_classes=10,
        )


def _timm(model: torch.nn.Module, **kw: Any) -> dict[str, tuple[float, float]]:
    names = {id(p): n for n, p in model.named_parameters()}
    return {
        names[id(p)]: (g["lr_scale"], g["weight_decay"])
        for g in param_groups_layer_decay(model, weight_decay=0.05, **kw)
        for p in g["params"]
    }


def _ours(model: torch.nn.Module, rules: str) -> dict[str, tuple[float, float]]:
    freezedsl.apply(model, rules)
    return {
        n: (g["lr"], g["weight_decay"])
        for g in freezedsl.param_groups(model, rules, lr=1.0, weight_decay=0.05)
        for n in g["param_names"]
    }


@pytest.mark.parametrize(
    ("clause", "kw"),
    [
        ("", {"layer_decay": 0.75}),
        ("", {"layer_decay": 0.5}),
        (" min 0.3", {"layer_decay": 0.75, "min_scale": 0.3}),
        (" freeze below 0.3", {"layer_decay": 0.75, "no_opt_scale": 0.3}),
        (" min 0.05 freeze below 0.1", {"layer_decay": 0.5, "min_scale": 0.05, "no_opt_scale": 0.1}),
    ],
)
def test_lr_scale_weight_decay_and_frozen_set_equal_timms(clause: str, kw: dict[str, float]) -> None:
    theirs_model, ours_model = _vit(), _vit()
    theirs = _timm(theirs_model, **kw)
    rules = f"lr decay {kw['layer_decay']} over {LAYERS}{clause}\nweight_decay 0 ndim<=1"
    ours = _ours(ours_model, rules)
    assert set(ours) == set(theirs)  # the same parameters optimized (no_opt_scale freezes the rest)
    for name, (lr, wd) in theirs.items():
        assert math.isclose(ours[name][0], lr, rel_tol=1e-12), (name, ours[name], lr)
        assert ours[name][1] == wd, name
    frozen = {n for n, p in ours_model.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, p in theirs_model.named_parameters() if not p.requires_grad}


def test_root_parameters_without_braces_are_layers_of_their_own() -> None:
    """The issue's case: `cls_token` and `pos_embed` used to get 1x, the highest rate."""
    model = _vit()
    plan = freezedsl.plan(model, "lr decay 0.5 over cls_token, pos_embed, blocks[:]")
    lr = {p.name: p.lr for p in plan.params}
    assert lr["cls_token"] is not None and lr["pos_embed"] is not None
    assert float(lr["cls_token"].value) == 0.5**6 and float(lr["pos_embed"].value) == 0.5**5
    assert float(lr["blocks.0.attn.qkv.weight"].value) == 0.5**4
    assert lr["head.weight"] is None  # not selected: the base value


def test_explain_shows_each_parameters_lr_and_weight_decay() -> None:
    model = _vit()
    text = freezedsl.plan(model, f"lr decay 0.5 over {LAYERS}\nweight_decay 0 ndim<=1\nlr 2x **.bias").render(
        explain=True
    )
    line = next(ln for ln in text.splitlines() if " blocks.3.attn.qkv.bias " in ln)
    assert "lr 1x" in line and "wd 0" in line  # 0.5 (decay) x 2 (bias factor)
    line = next(ln for ln in text.splitlines() if " cls_token " in ln)
    assert "lr 0.03125x" in line and "wd 1x" in line
