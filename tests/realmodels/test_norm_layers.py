"""``type=norm`` on real architectures: exactly the parameters of normalization layers,
compared with an isinstance/class-name reference; ``type~`` sees the class hierarchy.

The old idiom ``type~"Norm"`` also matched blocks that merely contain a norm layer
(torchvision's Conv2dNormActivation, timm's ConvNormAct): on efficientnet_b0,
``freeze all except type~"Norm"`` left 64% of the parameters trainable while norm layers
hold 0.8%. Models are built on the meta device (no weights, no download)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

import freezedsl

torchvision = pytest.importorskip("torchvision")


def _tiny_llama() -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, vocab_size=100)
    return LlamaForCausalLM(cfg)


def _tiny_t5() -> nn.Module:
    from transformers import T5Config, T5Model

    return T5Model(T5Config(d_model=32, d_ff=64, num_layers=2, num_heads=2, d_kv=8, vocab_size=100))


def _timm(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        timm = pytest.importorskip("timm")
        return timm.create_model(name, pretrained=False)

    return build


MODELS: dict[str, Callable[[], nn.Module]] = {
    "efficientnet_b0": lambda: torchvision.models.efficientnet_b0(),
    "convnext_tiny": lambda: torchvision.models.convnext_tiny(),
    "timm_regnety_002": _timm("regnety_002"),
    "timm_convnext_atto": _timm("convnext_atto"),
    "hf_llama": _tiny_llama,
    "hf_t5": _tiny_t5,
}


def _reference(model: nn.Module) -> set[str]:
    """Plain Python: parameters held directly by a normalization layer."""
    norm_types = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm,
                  nn.RMSNorm, torchvision.ops.FrozenBatchNorm2d)
    names = set()
    for prefix, module in model.named_modules():
        cls = type(module).__name__
        if isinstance(module, norm_types) or cls.endswith(("RMSNorm", "RmsNorm", "LayerNorm", "LayerNorm2d")):
            names |= {f"{prefix}.{n}" if prefix else n for n, _ in module.named_parameters(recurse=False)}
    return names


def _build(name: str) -> nn.Module:
    if name.startswith("hf_"):
        pytest.importorskip("transformers")
    with torch.device("meta"):
        return MODELS[name]()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_type_norm_selects_exactly_the_normalization_layers(name: str) -> None:
    model = _build(name)
    freezedsl.apply(model, "freeze all except type=norm")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    expected = _reference(model)
    assert expected, "the reference finds norm layers"
    assert trainable == expected


def test_type_regex_norm_still_matches_conv_blocks_so_docs_use_type_norm() -> None:
    model = _build("efficientnet_b0")
    freezedsl.apply(model, 'freeze all except type~"Norm"')
    total = sum(p.numel() for p in model.parameters())
    share = sum(p.numel() for p in model.parameters() if p.requires_grad) / total
    assert share > 0.5  # Conv2dNormActivation blocks match the regex: whole blocks stay trainable


def test_type_regex_sees_the_class_hierarchy() -> None:
    pytest.importorskip("timm")
    from timm.layers import LayerNorm2d

    model = nn.Sequential(nn.Conv2d(3, 4, 1), LayerNorm2d(4))  # LayerNorm2d subclasses nn.LayerNorm
    freezedsl.apply(model, 'freeze type~"^LayerNorm$"')
    assert {n for n, p in model.named_parameters() if not p.requires_grad} == {"1.weight", "1.bias"}


def test_bias_glob_and_multihead_attention_in_proj_bias() -> None:
    """As docs/language.md says: ``**.bias`` misses nn.MultiheadAttention's in_proj_bias
    (torchvision ViT), ``**.bias, **.in_proj_bias`` and ``name~"bias$"`` take every bias."""

    def trainable(rules: str) -> set[str]:
        with torch.device("meta"):
            model = torchvision.models.vit_b_16()
        freezedsl.apply(model, rules)
        return {n for n, p in model.named_parameters() if p.requires_grad}

    every_bias = trainable('freeze all except name~"bias$"')
    plain = trainable("freeze all except **.bias")
    assert {n.rsplit(".", 1)[-1] for n in every_bias - plain} == {"in_proj_bias"}
    assert trainable("freeze all except **.bias, **.in_proj_bias") == every_bias


def test_children_after_a_path_on_faster_rcnn() -> None:
    """``backbone.body.children[:5]`` (docs/language.md) is ``backbone.body[:5]``: the
    stem and layer1 of torchvision's Faster R-CNN backbone."""

    def frozen(rules: str) -> set[str]:
        with torch.device("meta"):
            model = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
        freezedsl.apply(model, rules)
        return {n for n, p in model.named_parameters() if not p.requires_grad}

    body = list(torchvision.models.resnet50().named_children())[:5]
    expected_prefixes = tuple(f"backbone.body.{name}." for name, _ in body)
    got = frozen("unfreeze all\nfreeze backbone.body.children[:5]")
    assert got == frozen("unfreeze all\nfreeze backbone.body[:5]")
    assert got and all(n.startswith(expected_prefixes) for n in got)
