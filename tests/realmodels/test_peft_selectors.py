"""Rules on peft models read like rules on the bare model (issue 16.2).

``get_peft_model`` moves the transformers model two levels down
(``base_model.model.``) and a targeted layer's weights one more (``query.base_layer.``);
a ``ModulesToSaveWrapper`` keeps a frozen ``original_module`` beside the trainable copy.
peft reuses the bare model's parameter objects, so "the same parameters" is checked by
identity: every path of the bare model selects on the PeftModel the same tensors, plus
the adapters that live inside it; every real path of the PeftModel still works.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import freezedsl
from freezedsl.errors import SelectionError
from freezedsl.planning.index import build_index
from freezedsl.planning.select import Evaluator
from freezedsl.syntax.parser import parse

from ._peft_models import bert, ia3_gpt2, lora_bert, lora_gpt2, lora_llama, torch


def _selected(model: Any, selector: str) -> list[str]:
    """Parameter names (canonical, as named_parameters lists them) that ``selector`` selects."""
    index = build_index(model)
    sel = parse(f"freeze {selector}").statements[0].selector  # type: ignore[attr-defined]
    mask = Evaluator(index, None, None).select(sel).mask
    return [n for i, n in enumerate(index.names) if mask >> i & 1]


def _ids(model: Any, names: list[str]) -> set[int]:
    params = dict(model.named_parameters())
    return {id(params[n]) for n in names}


def test_every_bare_path_selects_the_same_base_tensors_through_peft() -> None:
    bare = bert()
    paths = [n for n, _ in bare.named_modules() if n] + [n for n, _ in bare.named_parameters()]
    before = {p: _ids(bare, _selected(bare, f"{p}?")) for p in paths}
    base_ids = {id(p) for p in bare.parameters()}
    model = lora_bert(bare)  # wraps `bare` in place: the same parameter objects
    for path in paths:
        names = _selected(model, f"{path}?")
        if path.startswith("classifier"):  # a modules_to_save module: its trainable copy stands in
            copy = "base_model.model.classifier.modules_to_save.default"
            whole = path == "classifier"
            assert names == ([f"{copy}.weight", f"{copy}.bias"] if whole else [copy + path[len("classifier"):]])
            continue
        got = _ids(model, names)
        assert got & base_ids == before[path], path
        extra = [n for n in names if id(dict(model.named_parameters())[n]) not in base_ids]
        # only the adapters (and the classifier's trainable copy) of what the path names
        assert all((".lora_" in n or ".modules_to_save." in n) for n in extra), (path, extra)


def test_a_path_through_the_adapter_levels_keeps_bare_meaning() -> None:
    model = lora_bert()
    assert _selected(model, "bert.encoder.layer.0.attention.self.query.weight") == [
        "base_model.model.bert.encoder.layer.0.attention.self.query.base_layer.weight"
    ]
    layer0 = _selected(model, "bert.encoder.layer[:1]")
    assert layer0 == [n for n, _ in model.named_parameters() if ".layer.0." in n]
    assert _selected(model, "bert.encoder.layer.0.attention.self.value.*") == [
        "base_model.model.bert.encoder.layer.0.attention.self.value.base_layer.weight",
        "base_model.model.bert.encoder.layer.0.attention.self.value.base_layer.bias",
        "base_model.model.bert.encoder.layer.0.attention.self.value.lora_A.default.weight",
        "base_model.model.bert.encoder.layer.0.attention.self.value.lora_B.default.weight",
    ]


@pytest.mark.parametrize("build", [lora_bert, lora_llama], ids=["bert", "llama"])
def test_every_real_path_of_the_peft_model_still_works(build: Any) -> None:
    model = build()
    names = [n for n, _ in model.named_parameters()]
    for path, _ in model.named_modules():
        if not path:
            continue
        expected = [n for n in names if n.startswith(path + ".")]
        if ".original_module" not in path:  # the wrapper's frozen original: only when named
            expected = [n for n in expected if ".original_module." not in n]
        assert _selected(model, f"{path}?") == expected, path
    for name in names:
        assert _selected(model, name) == [name]


def test_the_modules_to_save_original_is_only_reached_by_name() -> None:
    model = lora_bert()
    copy = ["base_model.model.classifier.modules_to_save.default.weight", "base_model.model.classifier.modules_to_save.default.bias"]
    assert _selected(model, "classifier") == copy
    assert _selected(model, "classifier.weight") == copy[:1]
    assert _selected(model, "classifier.*") == copy
    assert not any("original_module" in n for n in _selected(model, "**.weight"))
    assert not any("original_module" in n for n in _selected(model, "type=Linear"))
    assert _selected(model, "classifier.original_module") == [
        "base_model.model.classifier.original_module.weight",
        "base_model.model.classifier.original_module.bias",
    ]
    plan = freezedsl.plan(model, "freeze all\nunfreeze classifier")
    assert plan.trainable == copy


def test_adapter_type_sets() -> None:
    model = lora_bert()
    lora = [n for n, _ in model.named_parameters() if ".lora_A.default." in n or ".lora_B.default." in n]
    assert len(lora) == 8 and _selected(model, "type=adapter") == lora
    assert _selected(model, "type=modules_to_save") == [n for n, _ in model.named_parameters() if "modules_to_save" in n]
    ia3 = ia3_gpt2()
    assert _selected(ia3, "type=adapter") == [n for n, _ in ia3.named_parameters() if n.endswith("ia3_l.default")]
    with pytest.raises(SelectionError, match="no active PEFT modules_to_save"):
        _selected(ia3, "type=modules_to_save")
    assert _selected(ia3, "type=modules_to_save?") == []
    with pytest.raises(SelectionError, match="no active PEFT adapter"):
        _selected(bert(), "type=adapter")


def test_adapter_set_follows_the_active_adapter() -> None:
    model = lora_gpt2()
    model.add_adapter("other", type(model.peft_config["default"])(r=2, target_modules=["c_attn"]))
    assert {n.split(".")[-2] for n in _selected(model, "type=adapter")} == {"default"}
    model.set_adapter("other")
    assert {n.split(".")[-2] for n in _selected(model, "type=adapter")} == {"other"}


def test_name_regex_matches_real_and_bare_names() -> None:
    model = lora_bert()
    bare_style = _selected(model, r'name~"^bert\.encoder\.layer\.0\.attention\.self\.query\."')
    assert bare_style == [n for n, _ in model.named_parameters() if ".layer.0.attention.self.query." in n]
    assert _selected(model, 'name~"base_layer"') == [n for n, _ in model.named_parameters() if "base_layer" in n]


def test_rules_reproduce_peft_defaults_and_expect_adapters() -> None:
    reference = {n: p.requires_grad for n, p in lora_bert().named_parameters()}
    model = lora_bert()
    model.requires_grad_(True)
    plan = freezedsl.apply(
        model,
        "freeze all except type=adapter, type=modules_to_save\n"
        "expect trainable type=adapter\nexpect frozen **.base_layer",
    )
    assert plan.ok
    assert {n: p.requires_grad for n, p in model.named_parameters()} == reference
    failing = freezedsl.plan(model, "freeze bert.encoder.layer[:1]\nexpect trainable type=adapter")
    assert not failing.ok


def test_explain_shows_the_real_names() -> None:
    model = lora_bert()
    text = freezedsl.plan(model, "freeze bert.encoder.layer[:1]").render(explain=True)
    for name in (
        "base_model.model.bert.encoder.layer.0.attention.self.query.base_layer.weight",
        "base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.default.weight",
        "base_model.model.classifier.original_module.weight",
    ):
        assert name in text
    assert not freezedsl.plan(model, "freeze all").warnings  # not "already wrapped" like DDP


def test_ia3_and_compiled_peft_model() -> None:
    model = ia3_gpt2()
    assert _selected(model, "transformer.h.0.attn.c_attn.weight") == [
        "base_model.model.transformer.h.0.attn.c_attn.base_layer.weight"
    ]
    compiled = torch.compile(lora_bert())
    assert _selected(compiled, "bert.encoder.layer.1.attention.self.query.weight") == [
        "base_model.model.bert.encoder.layer.1.attention.self.query.base_layer.weight"
    ]


def test_bare_and_full_names_on_a_llama_both_work() -> None:
    """LlamaForCausalLM has a child `model`: `model.layers` is the bare reading, and the
    full name `base_model.model.model.layers` still resolves."""
    model = lora_llama()
    layer0 = [n for n, _ in model.named_parameters() if n.startswith("base_model.model.model.layers.0.")]
    assert _selected(model, "model.layers[0]") == layer0
    assert _selected(model, "base_model.model.model.layers[0]") == layer0
    assert _selected(model, "model") == [n for n, _ in model.named_parameters() if n.startswith("base_model.model.model.")]
    assert "lm_head" not in " ".join(_selected(model, "model"))
    from freezedsl.planning.tree import resolve_root

    index = build_index(model)
    assert index.module_paths[resolve_root(index, "base_model.model.model.layers.0")] == "base_model.model.model.layers.0"
    assert index.module_paths[resolve_root(index, "model.layers.0")] == "base_model.model.model.layers.0"


def test_typo_hints_use_bare_names() -> None:
    with pytest.raises(SelectionError, match="did you mean 'bert.encoder'"):
        _selected(lora_bert(), "bert.encodr")


_BARE = bert()
_PEFT = lora_bert(bert())  # another model: _BARE stays bare
_BARE_NAMES = {id(p): n for n, p in _BARE.named_parameters()}


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["bert.encoder.layer", "bert.encoder.layer[-1].attention.self", "bert.encoder.layer.0.attention", "bert"]),
    st.integers(-3, 3) | st.none(),
    st.integers(-3, 3) | st.none(),
)
def test_slices_select_the_same_base_names_through_peft(prefix: str, start: int | None, stop: int | None) -> None:
    """Slices index the bare model's children: base names agree once peft's levels are dropped."""
    a = "" if start is None else str(start)
    b = "" if stop is None else str(stop)
    selector = f"{prefix}[{a}:{b}]?"
    bare = {_BARE_NAMES[i] for i in _ids(_BARE, _selected(_BARE, selector))}
    peft_names = _selected(_PEFT, selector)
    base = {n.removeprefix("base_model.model.").replace(".base_layer.", ".") for n in peft_names if ".lora_" not in n}
    assert base == bare
    assert all(".lora_" in n or n.removeprefix("base_model.model.").replace(".base_layer.", ".") in bare for n in peft_names)
