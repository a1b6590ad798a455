"""``freezedsl show``: root parameters, ``--root``, collapsing of repeated blocks.

Golden files under tests/golden/core/show/ (``UPDATE_GOLDEN=1`` rewrites them after
review); the counting properties are checked against the model itself.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

from freezedsl.commands import main
from freezedsl.errors import UsageError
from freezedsl.planning.index import build_index
from freezedsl.planning.tree import render_tree

from .conftest import check_golden
from .strategies import build, tree_specs

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
timm = pytest.importorskip("timm")
torchvision = pytest.importorskip("torchvision")


def tiny_llama(layers: int = 32) -> Any:
    cfg = transformers.LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=100,
    )
    with torch.device("meta"):
        return transformers.LlamaForCausalLM(cfg)


def vit() -> Any:
    with torch.device("meta"):
        return timm.create_model("vit_tiny_patch16_224", pretrained=False)


def test_llama_layers_collapse_around_a_frozen_one() -> None:
    model = tiny_llama()
    model.model.layers[5].requires_grad_(False)
    text = render_tree(build_index(model), depth=4)
    check_golden("show/llama32_depth4.txt", text + "\n")
    assert len(text.splitlines()) < 30  # 32 layers, not 32 x 5 rows
    assert "[0..4] model.layers.0..4  LlamaDecoderLayer x5" in text
    assert "[5] model.layers.5  LlamaDecoderLayer  9,280  frozen" in text
    assert "[6..31] model.layers.6..31  LlamaDecoderLayer x26" in text


def test_no_collapse_lists_every_layer() -> None:
    model = tiny_llama(layers=6)
    text = render_tree(build_index(model), depth=3, collapse=False)
    for i in range(6):
        assert f"[{i}] model.layers.{i}  LlamaDecoderLayer" in text
    assert ".." not in text


def test_named_siblings_of_one_class_are_not_folded() -> None:
    text = render_tree(build_index(tiny_llama(layers=1)), depth=4)
    assert "model.layers.0.input_layernorm  LlamaRMSNorm" in text
    assert "model.layers.0.post_attention_layernorm  LlamaRMSNorm" in text


def test_root_parameters_are_rows_without_params_flag() -> None:
    text = render_tree(build_index(vit()), depth=1)
    check_golden("show/vit_tiny_depth1.txt", text + "\n")
    assert re.search(r"cls_token  \[1, 1, 192\]  192  trainable", text)
    assert re.search(r"pos_embed  \[1, 197, 192\]  37,824  trainable", text)
    assert "head.weight" not in text  # a leaf's own weight only with --params


def test_rows_at_the_root_add_up_to_the_total() -> None:
    """Every parameter element is in exactly one row below the root (nothing hidden)."""
    model = vit()
    text = render_tree(build_index(model), depth=1, collapse=False)
    rows = [line for line in text.splitlines()[1:] if not line.startswith(("│", " "))]
    sizes = []
    for row in rows:
        fields = row.split("  ")
        numbers = [f for f in fields if re.fullmatch(r"[\d,]+", f.strip())]
        if numbers:
            sizes.append(int(numbers[-1].replace(",", "")))
    assert sum(sizes) == sum(p.numel() for p in model.parameters())


def test_root_shows_one_subtree() -> None:
    model = tiny_llama(layers=4)
    text = render_tree(build_index(model), root="model.layers.2")
    check_golden("show/llama_root_layer2.txt", text + "\n")
    assert text.splitlines()[0].startswith("model.layers.2  LlamaDecoderLayer  9,280 params")
    assert "model.layers.2.self_attn.q_proj  Linear" in text
    assert "model.layers.1" not in text
    assert render_tree(build_index(model), root="model.layers[2]") == text


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("model.layer", "did you mean 'model.layers'?"),
        ("model.layers.9", "its submodules are 0, 1, 2, 3"),
        ("lm_head.weight", "lm_head.weight is a parameter"),
        ("model..layers", "has no submodule ''"),
    ],
)
def test_bad_root_is_a_usage_error(path: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        render_tree(build_index(tiny_llama(layers=4)), root=path)


def test_cli_options() -> None:
    runner = CliRunner()
    arch = "torchvision.models:resnet18"
    result = runner.invoke(main, ["show", arch, "--root", "layer1", "--no-color"])
    assert result.exit_code == 0, result.output
    check_golden("show/resnet18_root_layer1.txt", result.output)
    assert "[0..1] layer1.0..1  BasicBlock x2  147,968  trainable  (73,984 each)" in result.output
    result = runner.invoke(main, ["show", arch, "--root", "layer1", "--no-collapse", "--depth", "1"])
    assert "[1] layer1.1  BasicBlock  73,984  trainable" in result.output
    result = runner.invoke(main, ["show", arch, "--root", "layer9"])
    assert result.exit_code == 2
    assert "--root layer9: ResNet has no submodule 'layer9'; did you mean" in result.output
    assert "Traceback" not in result.output


def test_frozen_batchnorm_timm_model_shows_states() -> None:
    with torch.device("meta"):
        model = timm.create_model("resnet18", pretrained=False)
    model.layer1.requires_grad_(False)
    text = render_tree(build_index(model), depth=2)
    assert "[0..1] layer1.0..1  BasicBlock x2  147,968  frozen  (73,984 each)" in text


def test_clip_logit_scale_is_a_root_row() -> None:
    text_cfg = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
    cfg = transformers.CLIPConfig(
        text_config={**text_cfg, "vocab_size": 49408, "max_position_embeddings": 16},
        vision_config={**text_cfg, "image_size": 32, "patch_size": 8},
        projection_dim=8,
    )
    with torch.device("meta"):
        model = transformers.CLIPModel(cfg)
    text = render_tree(build_index(model), depth=1)
    assert text.splitlines()[-1] == "└── logit_scale  []  1  trainable"


def _top_rows(text: str) -> list[str]:
    return [line for line in text.splitlines()[1:] if line.startswith(("├── ", "└── "))]


def _size(row: str) -> int:
    """The element count of a row: the number after the class (module) or the shape (parameter)."""
    fields = [f.strip() for f in row[4:].split("  ")]
    numbers = [f for f in fields[1:] if re.fullmatch(r"\d[\d,]*", f)]
    return int(numbers[0].replace(",", "")) if numbers else 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=tree_specs(ties=False))
def test_collapsing_hides_nothing(spec: Any) -> None:
    """On generated trees: the top-level rows count every parameter element once, with
    and without collapsing; runs [a..b] cover the child indices in order; collapsing
    never lengthens the output."""
    model = build(spec, device="meta")
    index = build_index(model)
    total = sum(p.numel() for p in model.parameters())
    for collapse in (True, False):
        text = render_tree(index, collapse=collapse)
        rows = _top_rows(text)
        assert sum(map(_size, rows)) == total
        covered: list[int] = []
        for row in rows:
            label = re.match(r"[├└]── \[(\d+)(?:\.\.(\d+))?\]", row)
            if label:
                first, last = int(label[1]), int(label[2] or label[1])
                assert last > first or label[2] is None
                covered.extend(range(first, last + 1))
        assert covered == list(range(len(index.child_modules(0))))
    assert len(render_tree(index).splitlines()) <= len(render_tree(index, collapse=False).splitlines())


def test_torchvision_vit_prefixed_numbers_collapse() -> None:
    """torchvision names ViT blocks ``encoder_layer_0`` ... ``encoder_layer_11``."""
    with torch.device("meta"):
        model = torchvision.models.vit_b_16()
    text = render_tree(build_index(model), root="encoder.layers", depth=1)
    assert text.splitlines()[1] == (
        "└── [0..11] encoder.layers.encoder_layer_0..11  EncoderBlock x12  85,054,464  trainable  (7,087,872 each)"
    )
    assert "encoder.pos_embedding" in render_tree(build_index(model), root="encoder", depth=1)
