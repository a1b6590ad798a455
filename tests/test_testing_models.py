"""freezedsl.testing's toy models: real naming schemes, working forward passes, tied weights, scale."""

from __future__ import annotations

import time

import torch

from freezedsl import testing
from freezedsl.loading import build_arch


def test_bert_names_and_forward() -> None:
    model = testing.bert_encoder(vocab_size=50, hidden=16, layers=2, heads=2, intermediate=32)
    names = {n for n, _ in model.named_parameters()}
    for name in [
        "embeddings.word_embeddings.weight",
        "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight",
        "embeddings.LayerNorm.weight",
        "encoder.layer.1.attention.self.query.weight",
        "encoder.layer.1.attention.self.key.bias",
        "encoder.layer.1.attention.self.value.weight",
        "encoder.layer.1.attention.output.dense.weight",
        "encoder.layer.1.attention.output.LayerNorm.bias",
        "encoder.layer.1.intermediate.dense.weight",
        "encoder.layer.1.output.dense.weight",
        "encoder.layer.1.output.LayerNorm.weight",
        "pooler.dense.weight",
        "classifier.weight",
    ]:
        assert name in names, name
    ids = torch.randint(0, 50, (3, 7))
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[0, 5:] = 0
    assert model(ids).shape == (3, 2)
    assert model(ids, attention_mask=mask).shape == (3, 2)


def test_gpt_tied_and_causal() -> None:
    model = testing.gpt_decoder(vocab_size=30, hidden=16, layers=2, heads=2, max_len=16)
    assert model.lm_head.weight is model.transformer.wte.weight  # type: ignore[union-attr]
    all_names = [n for n, _ in model.named_parameters(remove_duplicate=False)]
    assert "lm_head.weight" in all_names and "transformer.wte.weight" in all_names
    assert "lm_head.weight" not in {n for n, _ in model.named_parameters()}
    for part in ["ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj"]:
        assert f"transformer.h.1.{part}.weight" in all_names
    assert "transformer.ln_f.weight" in all_names and "transformer.wpe.weight" in all_names
    model.eval()
    ids = torch.randint(0, 30, (2, 9))
    logits = model(ids)
    assert logits.shape == (2, 9, 30)
    changed = ids.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 30
    assert torch.allclose(model(changed)[:, :-1], logits[:, :-1], atol=1e-6)  # causal


def test_gpt_untied() -> None:
    model = testing.gpt_decoder(vocab_size=30, hidden=16, layers=1, heads=2, tie_weights=False)
    assert model.lm_head.weight is not model.transformer.wte.weight  # type: ignore[union-attr]


def test_small_cnn_forward() -> None:
    model = testing.small_cnn()
    assert model(torch.randn(4, 1, 8, 8)).shape == (4, 10)
    assert {n.split(".")[0] for n, _ in model.named_parameters()} == {"features", "classifier"}
    assert testing.small_cnn(num_classes=3)(torch.randn(1, 1, 8, 8)).shape == (1, 3)


def test_moe_small_forward() -> None:
    model = testing.moe_transformer(blocks=2, experts=4, hidden=8, ffn=8, vocab=20)
    assert model(torch.randint(0, 20, (2, 5))).shape == (2, 5, 20)
    names = {n for n, _ in model.named_parameters()}
    for part in ["attn.q", "attn.k", "attn.v", "attn.o", "norm1", "norm2", "moe.router"]:
        assert f"blocks.1.{part}.weight" in names
    assert {"blocks.1.moe.experts.3.w1.bias", "blocks.0.moe.experts.0.w3.weight"} <= names


def test_moe_meta_init_is_skipped_but_shapes_hold() -> None:
    with torch.device("meta"):
        meta = testing.moe_transformer(blocks=1, experts=2, hidden=8, ffn=4, vocab=10)
    real = testing.moe_transformer(blocks=1, experts=2, hidden=8, ffn=4, vocab=10)
    assert [(n, p.shape) for n, p in meta.named_parameters()] == [
        (n, p.shape) for n, p in real.named_parameters()
    ]
    expert = meta.get_submodule("blocks.0.moe.experts.0.w1")
    assert type(expert) is torch.nn.Linear and expert.in_features == 8  # a real Linear


def test_every_builder_works_from_an_arch_string() -> None:
    for name in ["bert_encoder", "gpt_decoder", "small_cnn"]:
        assert isinstance(build_arch(f"freezedsl.testing:{name}", meta=True), torch.nn.Module)


def test_moe_default_size_on_meta() -> None:
    start = time.perf_counter()
    model = build_arch("freezedsl.testing:moe_transformer", meta=True)
    elapsed = time.perf_counter() - start
    count = sum(1 for _ in model.named_parameters())
    assert count == 60 * (14 + 256 * 6) + 5 == 93_005
    assert all(p.is_meta for p in model.parameters())
    assert elapsed < 30, elapsed  # a few seconds on a laptop
