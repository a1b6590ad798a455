"""The ready rule files in rules/: each applied to the architectures it is written for.

For every file: the exact trainable set on the real torchvision (or zoo) model, the
expectations holding, and a wrong architecture failing loudly (SelectionError or
ExpectationError) with the model left unchanged. Also: every file is in canonical form.
torchvision models are built on the meta device (no memory, no init cost, no downloads).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import torch
from torch import nn

import freezedsl
from freezedsl import testing
from freezedsl.syntax import ast
from freezedsl.syntax.parser import parse
from freezedsl.syntax.printer import format_program

tvm = pytest.importorskip("torchvision.models")

RULES_DIR = Path(__file__).resolve().parents[1] / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.frz"))


def rules(name: str) -> freezedsl.Rules:
    return freezedsl.load(RULES_DIR / f"{name}.frz")


def tv(name: str, **kwargs: object) -> nn.Module:
    """A torchvision model without weights, on the meta device."""
    with torch.device("meta"):
        return getattr(tvm, name)(weights=None, **kwargs)


def flags(model: nn.Module) -> dict[str, bool]:
    return {n: p.requires_grad for n, p in model.named_parameters(remove_duplicate=False)}


def starts(*prefixes: str) -> Callable[[str], bool]:
    """A predicate: the name is one of ``prefixes`` or lies below one of them."""
    return lambda name: any(name == p or name.startswith(p + ".") for p in prefixes)


def layernorm(model: nn.Module) -> Callable[[str], bool]:
    names = {
        f"{m}.{p}" if m else p
        for m, mod in model.named_modules()
        if isinstance(mod, nn.LayerNorm)
        for p, _ in mod.named_parameters(recurse=False)
    }
    return names.__contains__


def apply_and_check(
    rule_name: str, model: nn.Module, *trainable: Callable[[str], bool]
) -> freezedsl.Rules:
    """Apply the file; every parameter trains exactly when one predicate says so."""
    compiled = rules(rule_name)
    plan = compiled.apply(model)
    assert plan.ok, [e for e in plan.expectations if not e.ok]
    assert all(e.ok for e in plan.expectations)
    after = flags(model)
    want = {n for n in after if any(pred(n) for pred in trainable)}
    assert {n for n, on in after.items() if on} == want
    assert want, "the file must train something"
    assert set(plan.trainable) <= want and set(plan.frozen).isdisjoint(want)
    return compiled


def assert_fails_unchanged(rule_name: str, model: nn.Module, error: type[Exception]) -> str:
    """Applying the file raises ``error`` and leaves every requires_grad flag as it was."""
    # A mixed starting state, so "unchanged" is not just "all still trainable".
    params = list(model.parameters())
    for p in params[::3]:
        p.requires_grad_(False)
    before = flags(model)
    with pytest.raises(error) as excinfo:
        rules(rule_name).apply(model)
    assert flags(model) == before
    return str(excinfo.value)


def share(name: str, model: nn.Module) -> float:
    return rules(name).plan(model).trainable_percent


# --------------------------------------------------------------------- every file


def test_rule_files_exist() -> None:
    names = {p.stem for p in RULE_FILES}
    assert {
        "resnet",
        "vgg",
        "mobilenet",
        "efficientnet",
        "vit",
        "bert",
        "gpt",
        "linear-probe",
    } <= names


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rule_file_is_canonical(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert format_program(parse(text)) == text
    assert freezedsl.format(text) == text


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rule_file_documents_and_pins_its_outcome(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# "), "a header comment says which architectures the file fits"
    statements = parse(text).statements
    assert any(isinstance(s, ast.Rule) for s in statements)
    assert any(isinstance(s, (ast.ExpectSelector, ast.ExpectShare)) for s in statements), (
        "expect lines pin the intended outcome"
    )


def test_every_rule_file_is_tested_here() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    for path in RULE_FILES:
        assert re.search(rf'"{re.escape(path.stem)}"', source), f"no test applies {path.name}"


# --------------------------------------------------------------------- ResNet


@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2"])
def test_resnet(arch: str) -> None:
    apply_and_check("resnet", tv(arch), starts("layer3", "layer4", "fc"))


def test_resnet_rejects_vgg() -> None:
    assert_fails_unchanged("resnet", tv("vgg11"), freezedsl.SelectionError)


# --------------------------------------------------------------------- VGG


@pytest.mark.parametrize(
    "arch", ["vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]
)
def test_vgg_trains_the_last_linear_only(arch: str) -> None:
    model = tv(arch)
    apply_and_check("vgg", model, starts("classifier.6"))
    assert 2.5 < share("vgg", model) < 3.5


def test_vgg_with_a_new_head() -> None:
    model = tv("vgg16_bn")
    with torch.device("meta"):
        model.classifier[6] = nn.Linear(4096, 10)
    apply_and_check("vgg", model, starts("classifier.6"))
    assert not any(p.requires_grad for p in model.features.parameters())  # BatchNorm too


@pytest.mark.parametrize("arch", ["alexnet", "mobilenet_v3_small", "resnet18"])
def test_vgg_rejects_other_architectures(arch: str) -> None:
    message = assert_fails_unchanged("vgg", tv(arch), freezedsl.SelectionError)
    assert "vgg.frz" in message


def test_vgg_rejects_alexnet_even_with_a_small_head() -> None:
    # AlexNet has features and a 7-module classifier as well; classifier.0 is a Dropout.
    message = assert_fails_unchanged("vgg", tv("alexnet", num_classes=10), freezedsl.SelectionError)
    assert "classifier.0.weight" in message


# --------------------------------------------------------------------- MobileNet


@pytest.mark.parametrize(
    ("arch", "blocks"),
    [
        ("mobilenet_v2", ("features.16", "features.17", "features.18")),
        ("mobilenet_v3_small", ("features.10", "features.11", "features.12")),
        ("mobilenet_v3_large", ("features.14", "features.15", "features.16")),
    ],
)
def test_mobilenet_trains_the_last_blocks_and_classifier(
    arch: str, blocks: tuple[str, ...]
) -> None:
    model = tv(arch)
    apply_and_check("mobilenet", model, starts(*blocks, "classifier"))
    # BatchNorm of the frozen blocks is frozen too; of the trained blocks, trained.
    bn = {n: m for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    for name, module in bn.items():
        assert module.weight.requires_grad == starts(*blocks)(name), name


def test_mobilenet_with_a_new_head() -> None:
    model = tv("mobilenet_v2", num_classes=10)
    apply_and_check(
        "mobilenet", model, starts("features.16", "features.17", "features.18", "classifier")
    )


@pytest.mark.parametrize("arch", ["efficientnet_b0", "mnasnet1_0", "vgg11"])
def test_mobilenet_rejects_other_architectures(arch: str) -> None:
    assert_fails_unchanged("mobilenet", tv(arch), freezedsl.SelectionError)


def test_mobilenet_rejects_efficientnet_by_block_type() -> None:
    message = assert_fails_unchanged("mobilenet", tv("efficientnet_b0"), freezedsl.SelectionError)
    assert "type=InvertedResidual" in message


# --------------------------------------------------------------------- EfficientNet


@pytest.mark.parametrize(
    ("arch", "last_stage", "blocks", "final_conv"),
    [
        ("efficientnet_b0", "features.7", 1, "features.8"),
        ("efficientnet_b7", "features.7", 4, "features.8"),
        ("efficientnet_v2_s", "features.6", 15, "features.7"),
        ("efficientnet_v2_l", "features.7", 7, "features.8"),
    ],
)
def test_efficientnet_trains_the_last_two_blocks(
    arch: str, last_stage: str, blocks: int, final_conv: str
) -> None:
    model = tv(arch)
    assert len(model.get_submodule(last_stage)) == blocks
    last_two = [f"{last_stage}.{i}" for i in range(max(blocks - 2, 0), blocks)]
    apply_and_check("efficientnet", model, starts(*last_two, final_conv, "classifier"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "arch", [f"efficientnet_b{i}" for i in range(1, 7)] + ["efficientnet_v2_m"]
)
def test_efficientnet_other_variants(arch: str) -> None:
    model = tv(arch)
    stage = model.features[-2]
    last_two = [f"features.{len(model.features) - 2}.{i}" for i in range(len(stage))][-2:]
    final = f"features.{len(model.features) - 1}"
    apply_and_check("efficientnet", model, starts(*last_two, final, "classifier"))


@pytest.mark.parametrize("arch", ["mobilenet_v2", "mobilenet_v3_large", "resnet18"])
def test_efficientnet_rejects_other_architectures(arch: str) -> None:
    assert_fails_unchanged("efficientnet", tv(arch), freezedsl.SelectionError)


# --------------------------------------------------------------------- ViT


@pytest.mark.parametrize(("arch", "layers"), [("vit_b_16", 12), ("vit_b_32", 12), ("vit_l_16", 24)])
def test_vit_trains_the_last_two_layers_head_and_layernorms(arch: str, layers: int) -> None:
    model = tv(arch)
    last_two = [f"encoder.layers.encoder_layer_{i}" for i in (layers - 2, layers - 1)]
    apply_and_check("vit", model, starts(*last_two, "encoder.ln", "heads"), layernorm(model))
    assert not model.conv_proj.weight.requires_grad
    assert not model.class_token.requires_grad
    assert not model.encoder.pos_embedding.requires_grad
    first = model.encoder.layers[0]
    assert first.ln_1.weight.requires_grad and first.ln_2.bias.requires_grad
    assert not first.self_attention.in_proj_weight.requires_grad
    assert not first.mlp[0].weight.requires_grad


@pytest.mark.parametrize("arch", ["swin_t", "resnet18"])
def test_vit_rejects_other_architectures(arch: str) -> None:
    assert_fails_unchanged("vit", tv(arch), freezedsl.SelectionError)


def test_vit_rejects_a_model_with_too_few_layers() -> None:
    with torch.device("meta"):
        tiny = tvm.VisionTransformer(
            image_size=32, patch_size=16, num_layers=2, num_heads=2, hidden_dim=8, mlp_dim=16
        )
    # encoder.layers[:-2] is empty: the file's expectation about frozen layers fails.
    assert_fails_unchanged("vit", tiny, freezedsl.SelectionError)


# --------------------------------------------------------------------- BERT


class HFStyleBertForSequenceClassification(nn.Module):
    """HF's layout: the encoder under ``bert.``, the classifier at the root."""

    def __init__(self) -> None:
        super().__init__()
        self.bert = testing.bert_encoder()
        del self.bert.classifier
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Linear(64, 2)


def test_bert_zoo() -> None:
    model = testing.bert_encoder()
    apply_and_check(
        "bert",
        model,
        starts("encoder.layer.2", "encoder.layer.3", "pooler", "classifier"),
        layernorm(model),
    )
    assert model.embeddings.LayerNorm.weight.requires_grad
    assert not model.embeddings.word_embeddings.weight.requires_grad
    assert not model.encoder.layer[1].attention.self.query.bias.requires_grad  # no BitFit


def test_bert_with_hf_prefix() -> None:
    model = HFStyleBertForSequenceClassification()
    apply_and_check(
        "bert",
        model,
        starts("bert.encoder.layer.2", "bert.encoder.layer.3", "bert.pooler", "classifier"),
        layernorm(model),
    )


def test_bert_base_size() -> None:
    with torch.device("meta"):
        model = testing.bert_encoder(
            vocab_size=30522, hidden=768, layers=12, heads=12, intermediate=3072, max_len=512
        )
    apply_and_check(
        "bert",
        model,
        starts("encoder.layer.10", "encoder.layer.11", "pooler", "classifier"),
        layernorm(model),
    )
    assert 13 < share("bert", model) < 14


def test_bert_rejects_gpt() -> None:
    assert_fails_unchanged("bert", testing.gpt_decoder(), freezedsl.SelectionError)


def test_bert_rejects_a_model_with_too_few_layers() -> None:
    assert_fails_unchanged("bert", testing.bert_encoder(layers=2), freezedsl.SelectionError)


# --------------------------------------------------------------------- GPT


def test_gpt_zoo_keeps_the_tied_head_frozen() -> None:
    model = testing.gpt_decoder()
    assert model.lm_head.weight is model.transformer.wte.weight
    plan = rules("gpt").plan(model)
    assert not plan.warnings  # both names of the tied tensor are decided alike
    apply_and_check(
        "gpt",
        model,
        starts("transformer.h.2", "transformer.h.3", "transformer.ln_f"),
        layernorm(model),
    )
    assert not model.lm_head.weight.requires_grad
    assert not model.transformer.wpe.weight.requires_grad
    assert model.transformer.h[0].ln_1.weight.requires_grad
    assert not model.transformer.h[0].attn.c_attn.weight.requires_grad


def test_gpt2_size_untied() -> None:
    with torch.device("meta"):
        model = testing.gpt_decoder(
            vocab_size=50257, hidden=768, layers=12, heads=12, max_len=1024, tie_weights=False
        )
    apply_and_check(
        "gpt",
        model,
        starts("transformer.h.10", "transformer.h.11", "transformer.ln_f"),
        layernorm(model),
    )
    assert not model.lm_head.weight.requires_grad


def test_gpt_expectation_guards_the_tied_head() -> None:
    # Someone appends `unfreeze lm_head`: that would train the whole embedding matrix.
    model = testing.gpt_decoder()
    text = (RULES_DIR / "gpt.frz").read_text(encoding="utf-8") + "unfreeze lm_head\n"
    before = flags(model)
    with pytest.raises(freezedsl.ExpectationError, match="lm_head"):
        freezedsl.compile(text).apply(model)
    assert flags(model) == before


def test_gpt_rejects_bert() -> None:
    assert_fails_unchanged("gpt", testing.bert_encoder(), freezedsl.SelectionError)


# --------------------------------------------------------------------- linear probe


@pytest.mark.parametrize(
    ("build", "head"),
    [
        (lambda: tv("resnet18"), "fc"),
        (lambda: tv("vgg16"), "classifier.6"),
        (lambda: tv("mobilenet_v3_small"), "classifier.3"),
        (lambda: tv("efficientnet_b0"), "classifier.1"),
        (lambda: tv("vit_b_16"), "heads"),
        (lambda: tv("swin_t"), "head"),
        (lambda: tv("densenet121"), "classifier"),
        (lambda: tv("convnext_tiny"), "classifier.2"),
        (testing.bert_encoder, "classifier"),
        (testing.small_cnn, "classifier"),
    ],
    ids=[
        "resnet18",
        "vgg16",
        "mobilenet_v3_small",
        "efficientnet_b0",
        "vit_b_16",
        "swin_t",
        "densenet121",
        "convnext_tiny",
        "bert_encoder",
        "small_cnn",
    ],
)
def test_linear_probe(build: Callable[[], nn.Module], head: str) -> None:
    apply_and_check("linear-probe", build(), starts(head))


@pytest.mark.parametrize(
    "build", [testing.gpt_decoder, lambda: tv("squeezenet1_0")], ids=["gpt_decoder", "squeezenet1_0"]
)
def test_linear_probe_rejects_models_without_a_head(build: Callable[[], nn.Module]) -> None:
    message = assert_fails_unchanged("linear-probe", build(), freezedsl.ExpectationError)
    assert "> 0%" in message


# --------------------------------------------------------------------- documented variants
# The header comments tell how to switch the BatchNorm/LayerNorm/bias policy; the edits
# they describe must give a file whose expectations hold.


def variant(name: str, *edits: tuple[str, str]) -> freezedsl.Rules:
    text = (RULES_DIR / f"{name}.frz").read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, f"{name}.frz no longer contains {old!r}"
        text = text.replace(old, new)
    return freezedsl.compile(text, path=f"{name}-variant.frz")


def _with_batchnorm(name: str, unfreeze_line: str) -> freezedsl.Rules:
    text = (RULES_DIR / f"{name}.frz").read_text(encoding="utf-8")
    frozen = [line for line in text.splitlines() if line.startswith("expect frozen ")]
    assert len(frozen) == 2, "the comment says: both `expect frozen` lines"
    return variant(
        name,
        (unfreeze_line, unfreeze_line + "\nunfreeze type=BatchNorm2d"),
        *((line + "\n", line + " except type=BatchNorm2d\n") for line in frozen),
    )


@pytest.mark.parametrize(
    ("name", "arch", "unfreeze_line"),
    [
        ("mobilenet", "mobilenet_v2", "unfreeze features[-3:], classifier"),
        ("efficientnet", "efficientnet_b0", "unfreeze features[-2][-2:], features[-1], classifier"),
    ],
)
def test_batchnorm_variant(name: str, arch: str, unfreeze_line: str) -> None:
    model = tv(arch)
    baseline = share(name, model)
    plan = _with_batchnorm(name, unfreeze_line).apply(model)
    assert plan.ok
    assert all(m.weight.requires_grad for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert 0 < plan.trainable_percent - baseline < 1
    assert not model.features[0][0].weight.requires_grad  # convolutions stay frozen


def test_vit_strict_variant() -> None:
    model = tv("vit_b_16")
    compiled = variant(
        "vit",
        ("unfreeze type=LayerNorm\n", ""),
        (" except type=LayerNorm", ""),
        (", type=LayerNorm", ""),
    )
    assert "LayerNorm" not in "".join(
        line for line in compiled.text.splitlines() if not line.startswith("#")
    )
    compiled.apply(model)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    want = starts(
        "encoder.layers.encoder_layer_10", "encoder.layers.encoder_layer_11", "encoder.ln", "heads"
    )
    assert trained == {n for n, _ in model.named_parameters() if want(n)}


def test_bert_bitfit_variant() -> None:
    model = testing.bert_encoder()
    compiled = variant(
        "bert",
        ("unfreeze type=LayerNorm\n", "unfreeze type=LayerNorm\nunfreeze **.bias\n"),
        (
            "expect frozen **.embeddings except type=LayerNorm\n",
            "expect frozen **.embeddings except type=LayerNorm, **.bias\n",
        ),
        (
            "expect frozen **.encoder.layer[:-2] except type=LayerNorm\n",
            "expect frozen **.encoder.layer[:-2] except type=LayerNorm, **.bias\n",
        ),
    )
    assert compiled.apply(model).ok
    assert all(p.requires_grad for n, p in model.named_parameters() if n.endswith(".bias"))
    assert not model.encoder.layer[0].attention.self.query.weight.requires_grad


# --------------------------------------------------------------------- summary


def _measured() -> Iterable[tuple[str, str, float]]:
    yield "vgg", "vgg16", share("vgg", tv("vgg16"))
    yield "mobilenet", "mobilenet_v2", share("mobilenet", tv("mobilenet_v2"))
    yield "efficientnet", "efficientnet_b0", share("efficientnet", tv("efficientnet_b0"))
    yield "vit", "vit_b_16", share("vit", tv("vit_b_16"))
    yield "bert", "bert_encoder", share("bert", testing.bert_encoder())
    yield "gpt", "gpt_decoder", share("gpt", testing.gpt_decoder())


def test_trainable_shares_are_as_documented() -> None:
    expected = {
        "vgg16": 2.96,
        "mobilenet_v2": 70.96,
        "efficientnet_b0": 45.58,
        "vit_b_16": 17.30,
        "bert_encoder": 34.12,
        "gpt_decoder": 36.95,
    }
    for _rule, arch, pct in _measured():
        assert pct == pytest.approx(expected[arch], abs=0.01), arch
