"""FZ350/FZ351 on real peft models: each flagged case has a clean twin, and correct
PEFT setups (get_peft_model defaults, modules_to_save heads, merged adapters, inactive
adapters, bias="all", eval mode) give no finding of any runtime code."""

from __future__ import annotations

from typing import Any

import pytest

import freezedsl
from freezedsl.lint import check
from freezedsl.lint.grouping import group_runtime
from freezedsl.lint.peft_checks import check_adapters
from freezedsl.lint.registry import RULES
from freezedsl.lint.rulefiles import check_source

from ._peft_models import bert, ia3_gpt2, lora_bert, lora_gpt2, peft, torch


def _codes(model: Any) -> list[tuple[str, str | None]]:
    return [(d.code, d.obj) for d in check(model)]


def _merged() -> Any:
    model = lora_bert()
    model.merge_adapter()
    return model


def _multi() -> Any:
    model = lora_bert()
    model.add_adapter("other", peft.LoraConfig(r=2, target_modules=["query"], modules_to_save=["classifier"]))
    return model


def _optimizer_built() -> Any:
    model = lora_bert()
    torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    return model


@pytest.mark.parametrize(
    "build",
    [lora_bert, ia3_gpt2, lora_gpt2, _merged, _multi, lambda: lora_bert(bias="all"), _optimizer_built,
     lambda: lora_bert().eval()],
    ids=["lora-modules-to-save", "ia3", "lora-lm", "merged", "multi-adapter", "bias-all", "optimizer", "eval"],
)
def test_correct_peft_setups_are_clean(build: Any) -> None:
    assert _codes(build()) == []


def test_fz350_base_weight_trainable_and_clean_twin() -> None:
    model = lora_bert()
    freezedsl.apply(model, "unfreeze bert.encoder.layer[-1]")
    found = [d for d in check(model) if d.code == "FZ350"]
    layer = "base_model.model.bert.encoder.layer.1.attention.self"
    assert [d.obj for d in found] == [f"{layer}.query", f"{layer}.value"]
    assert f"{layer}.query.base_layer.weight is trainable" in found[0].message
    assert found[0].extra["tensors"] == [f"{layer}.query.base_layer.weight"]  # the bias may train
    [grouped] = group_runtime(found)
    assert grouped.obj == layer and "(2 modules)" in grouped.message
    twin = lora_bert()
    freezedsl.apply(twin, "unfreeze bert.encoder.layer[-1]\nfreeze **.base_layer")
    assert _codes(twin) == []


def test_fz350_on_ia3() -> None:
    model = ia3_gpt2()
    freezedsl.apply(model, "unfreeze transformer.h.0.attn.c_attn.weight")
    assert _codes(model) == [("FZ350", "base_model.model.transformer.h.0.attn.c_attn")]


def test_fz351_whole_adapter_frozen_and_clean_twin() -> None:
    model = lora_bert()
    freezedsl.apply(model, "freeze all\nunfreeze classifier")
    assert _codes(model) == [("FZ351", "default")]
    twin = lora_bert()
    freezedsl.apply(twin, "freeze all except type=adapter\nunfreeze classifier")
    assert _codes(twin) == []


def _trained(model: Any) -> Any:
    """The adapter after some training: lora_B no longer zero."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.01)
    return model


def test_fz351_a_trained_adapter_kept_fixed_while_the_head_trains_is_clean() -> None:
    model = _trained(lora_bert())
    freezedsl.apply(model, "freeze all\nunfreeze classifier")
    assert _codes(model) == []
    model.requires_grad_(False)  # ... but with nothing training at all, it is reported
    assert {c for c, _ in _codes(model)} == {"FZ304", "FZ351"}


def test_fz351_loaded_frozen_adapter_in_training() -> None:
    model = lora_bert()
    model.requires_grad_(False)  # what PeftModel.from_pretrained does without is_trainable=True
    assert {c for c, _ in _codes(model)} == {"FZ304", "FZ351"}
    assert {c for c, _ in _codes(model.eval())} == {"FZ304"}  # inference: nothing to say about adapters


def test_fz351_adapter_frozen_at_its_initial_value() -> None:
    model = lora_bert()
    freezedsl.apply(model, "freeze bert.encoder.layer[0]")
    [d] = check(model)
    assert d.code == "FZ351" and "initial value in 2 layers" in d.message
    assert d.obj == "base_model.model.bert.encoder.layer.0.attention.self.query.lora_B.default"
    trained = _trained(lora_bert())  # the same rule on an adapter that has learned: a choice
    freezedsl.apply(trained, "freeze bert.encoder.layer[0]")
    assert _codes(trained) == []
    ia3 = ia3_gpt2()
    freezedsl.apply(ia3, "freeze transformer.h[0]")
    assert [c for c, _ in _codes(ia3)] == ["FZ351"]


def test_fz351_lora_fa_is_clean() -> None:
    model = lora_bert()  # LoRA-FA: A frozen at its random init, B trains
    freezedsl.apply(model, "freeze **.lora_A")
    assert _codes(model) == []


def test_meta_model_values_are_not_read() -> None:
    with torch.device("meta"):
        base = bert()
    model = lora_bert(base)
    freezedsl.apply(model, "freeze bert.encoder.layer[0]")
    assert check_adapters(model) == []
    freezedsl.apply(model, "freeze all\nunfreeze classifier")
    assert check_adapters(model) == []  # whether the adapter has learned cannot be read
    freezedsl.apply(model, "freeze all")
    assert [d.code for d in check_adapters(model)] == ["FZ351"]


def test_models_without_peft_give_nothing() -> None:
    assert check_adapters(bert()) == []
    assert check_adapters(torch.nn.Linear(2, 2)) == []


def test_lint_model_checks_the_state_the_rules_leave() -> None:
    bad = check_source("r.frz", "unfreeze bert.encoder.layer[-1]\n", model=lora_bert())
    assert [d.code for d in bad] == ["FZ350", "FZ350"]
    assert [d.code for d in check_source("r.frz", "freeze all\nunfreeze classifier\n", model=lora_bert())] == ["FZ351"]
    good = "freeze all except type=adapter\nunfreeze classifier\nexpect trainable type=adapter\n"
    assert check_source("r.frz", good, model=lora_bert()) == []


def test_rules_are_documented() -> None:
    for code, name in (("FZ350", "peft-base-weight-trainable"), ("FZ351", "peft-adapter-frozen")):
        rule = RULES[code]
        assert rule.name == name
        for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
            assert section in rule.doc()
