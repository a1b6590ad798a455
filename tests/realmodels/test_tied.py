"""Tied weights on real Hugging Face language models (tiny configs, meta device).

GPT-2, Llama and T5 (``tie_word_embeddings=True``) share the output head with the input
embedding. The rule (docs/language.md, "Tied (shared) parameters"): ``except`` removes a
tensor when it names any of its names, a statement that selects any name decides the
tensor, the last such statement wins, and names decided differently are reported with
both names.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

import freezedsl

transformers = pytest.importorskip("transformers")


def _gpt2() -> nn.Module:
    cfg = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=64,
                                  bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(cfg)


def _llama() -> nn.Module:
    cfg = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=2, num_key_value_heads=2, vocab_size=100,
                                   tie_word_embeddings=True)
    return transformers.LlamaForCausalLM(cfg)


def _t5() -> nn.Module:
    cfg = transformers.T5Config(d_model=32, d_ff=64, num_layers=2, num_heads=2, d_kv=8, vocab_size=100,
                                tie_word_embeddings=True)
    return transformers.T5ForConditionalGeneration(cfg)


# model, the embedding's module path, every name of the tied tensor
MODELS: dict[str, tuple[Callable[[], nn.Module], str, tuple[str, ...]]] = {
    "gpt2": (_gpt2, "transformer.wte", ("transformer.wte.weight", "lm_head.weight")),
    "llama": (_llama, "model.embed_tokens", ("model.embed_tokens.weight", "lm_head.weight")),
    "t5": (_t5, "shared", ("shared.weight", "encoder.embed_tokens.weight",
                           "decoder.embed_tokens.weight", "lm_head.weight")),
}


def _build(name: str) -> tuple[nn.Module, str, tuple[str, ...]]:
    build, embed, names = MODELS[name]
    with torch.device("meta"):
        model = build()
    return model, embed, names


def _head(model: nn.Module) -> torch.Tensor:
    return dict(model.named_parameters(remove_duplicate=False))["lm_head.weight"]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_real_models_tie_the_head(name: str) -> None:
    model, _embed, names = _build(name)
    params = dict(model.named_parameters(remove_duplicate=False))
    assert len({id(params[n]) for n in names}) == 1


@pytest.mark.parametrize("name", sorted(MODELS))
def test_freeze_all_except_lm_head_trains_the_head(name: str) -> None:
    model, _embed, names = _build(name)
    plan = freezedsl.plan(model, "freeze all except lm_head")
    assert plan.warnings == []  # every name agrees: the except keeps the tensor out
    freezedsl.apply(model, "freeze all except lm_head")
    trainable = {n for n, p in model.named_parameters(remove_duplicate=False) if p.requires_grad}
    assert trainable == set(names)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_except_by_the_embedding_name_keeps_the_head_too(name: str) -> None:
    model, embed, _names = _build(name)
    freezedsl.apply(model, f"freeze all except {embed}")
    assert _head(model).requires_grad


@pytest.mark.parametrize("name", sorted(MODELS))
def test_unfreeze_lm_head_after_freeze_all(name: str) -> None:
    model, _embed, names = _build(name)
    plan = freezedsl.plan(model, "freeze all\nunfreeze lm_head")
    assert plan.state_of("lm_head.weight") and plan.state_of(names[0])
    # the other names were decided by `freeze all`: the plan says so, naming every name
    assert len(plan.warnings) == 1
    assert all(n in plan.warnings[0] for n in names)
    assert "it follows the last: trainable" in plan.warnings[0]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_freeze_the_embedding_warns_that_the_head_follows(name: str) -> None:
    model, embed, names = _build(name)
    plan = freezedsl.plan(model, f"freeze {embed}")
    assert not plan.state_of("lm_head.weight")
    (warning,) = plan.warnings
    assert "lm_head.weight by no statement" in warning
    assert f"freeze {', '.join(names)}" in warning  # how to decide it
    # naming every name in one statement decides it without a warning
    assert freezedsl.plan(model, f"freeze {', '.join(names)}").warnings == []


def test_freeze_all_except_lm_head_on_gpt2_with_expectations() -> None:
    model, _embed, _names = _build("gpt2")
    rules = "freeze all except lm_head\nexpect trainable lm_head, transformer.wte\nexpect frozen transformer.h"
    plan = freezedsl.plan(model, rules)
    assert plan.ok
    assert plan.trainable == ["transformer.wte.weight"]


def test_except_that_removes_only_an_alias_of_the_base_is_not_an_empty_except() -> None:
    model, _embed, _names = _build("gpt2")
    # lm_head.weight is transformer.wte.weight: the except removes the whole base
    with pytest.raises(freezedsl.SelectionError, match="except' removes everything"):
        freezedsl.plan(model, "freeze transformer.wte except lm_head")
