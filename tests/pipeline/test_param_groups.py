"""freezedsl.param_groups: optimizer groups from `lr` / `weight_decay` statements."""

from __future__ import annotations

import math

import pytest
import torch

import freezedsl
from freezedsl.testing import bert_encoder, gpt_decoder

from .models import assert_groups_match_model, batches, make_net, train_epoch

BERT_RULES = """
freeze embeddings
lr decay 0.5 over encoder.layer[:]
lr 2x classifier
weight_decay 0 **.bias, **.LayerNorm
"""


def _by_name(groups: list[dict]) -> dict[str, dict]:
    return {n: g for g in groups for n in g["param_names"]}


def test_layerwise_decay_on_bert_with_real_optimizers() -> None:
    model = bert_encoder(layers=3)
    freezedsl.apply(model, BERT_RULES)
    groups = freezedsl.param_groups(model, BERT_RULES, lr=1e-3, weight_decay=0.01)
    by_name = _by_name(groups)
    # frozen parameters are in no group; every trainable one in exactly one
    assert not any(n.startswith("embeddings.") for n in by_name)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters() if p.requires_grad}
    # the last layer gets 0.5x, the one before 0.25x, the first 0.125x
    for layer, factor in ((2, 0.5), (1, 0.25), (0, 0.125)):
        g = by_name[f"encoder.layer.{layer}.attention.self.query.weight"]
        assert math.isclose(g["lr"], 1e-3 * factor) and g["weight_decay"] == 0.01
        g = by_name[f"encoder.layer.{layer}.output.dense.bias"]
        assert math.isclose(g["lr"], 1e-3 * factor) and g["weight_decay"] == 0.0
    assert by_name["classifier.weight"]["lr"] == pytest.approx(2e-3)
    assert by_name["pooler.dense.weight"]["lr"] == 1e-3  # no lr statement: the base
    # one group per distinct (lr, wd), names say which factors, in model order
    keys = [(g["lr"], g["weight_decay"]) for g in groups]
    assert len(keys) == len(set(keys))
    assert groups[0]["name"] == "lr=0.125x,wd=1x" and groups[1]["name"] == "lr=0.125x,wd=0"
    names = [g["name"] for g in groups]
    assert len(names) == len(set(names))

    x = torch.randint(0, 1000, (2, 5))
    for cls in (torch.optim.AdamW, torch.optim.SGD):
        opt = cls(freezedsl.param_groups(model, BERT_RULES, lr=1e-3, weight_decay=0.01))
        # torch keeps the extra keys, and param_names survives state_dict
        assert [g["name"] for g in opt.param_groups] == names
        model(x).sum().backward()
        opt.step()
        opt.zero_grad()
        saved = opt.state_dict()
        assert saved["param_groups"][0]["param_names"] == groups[0]["param_names"]
        assert saved["param_groups"][0]["name"] == names[0]
        assert all(p.grad is None for p in model.embeddings.parameters())


def test_frozen_absent_and_tied_tensor_counted_once() -> None:
    model = gpt_decoder()
    names = [n for n, _ in model.named_parameters(remove_duplicate=False)]
    tied = [n for n in names if n.startswith("lm_head")]
    assert tied, "the zoo GPT ties lm_head to the embedding"
    rules = "freeze all; unfreeze transformer.wte, transformer.ln_f"
    freezedsl.apply(model, rules)
    groups = freezedsl.param_groups(model, rules, lr=0.1)
    assert len(groups) == 1
    params = groups[0]["params"]
    assert len(params) == len({id(p) for p in params}) == 3  # wte (= lm_head), ln_f w/b
    assert groups[0]["param_names"][0] == "transformer.wte.weight"
    torch.optim.AdamW(groups)  # no duplicate-parameter complaint


def test_absolute_values_and_relative_weight_decay() -> None:
    model = make_net()
    rules = "lr 3e-4 layer1; weight_decay 0.5x layer2; lr 0 fc.bias"
    groups = freezedsl.param_groups(model, rules, lr=0.1, weight_decay=0.02)
    by_name = _by_name(groups)
    assert (
        by_name["layer1.weight"]["lr"] == 3e-4 and by_name["layer1.weight"]["weight_decay"] == 0.02
    )
    assert by_name["layer2.bias"]["lr"] == 0.1 and by_name["layer2.bias"]["weight_decay"] == 0.01
    assert by_name["fc.bias"]["lr"] == 0.0 and by_name["fc.weight"]["lr"] == 0.1
    assert [g["name"] for g in groups] == [
        "lr=0.0003,wd=1x",
        "lr=1x,wd=0.5x",
        "lr=1x,wd=1x",
        "lr=0,wd=1x",
    ]
    opt = torch.optim.SGD(groups, momentum=0.9)
    train_epoch(model, opt, batches(1))
    assert_groups_match_model(model, opt)


def test_model_that_disagrees_with_the_rules_is_an_error() -> None:
    model = make_net()
    with pytest.raises(freezedsl.UsageError, match="apply the rules first"):
        freezedsl.param_groups(model, "freeze layer1", lr=0.1)
    freezedsl.apply(model, "freeze layer1")
    assert len(freezedsl.param_groups(model, "freeze layer1", lr=0.1)[0]["params"]) == 4


def test_scheduled_rules_use_time_zero_or_the_given_time(tmp_path) -> None:
    path = tmp_path / "sched.frz"
    path.write_text(
        "freeze all; unfreeze fc\nat epoch 0: unfreeze layer2\nat epoch 2: unfreeze layer1\n"
    )
    model = make_net()
    freezedsl.Schedule(path, model)  # applies time 0: fc and layer2
    groups = freezedsl.param_groups(model, str(path), lr=0.1)
    assert groups[0]["param_names"] == ["layer2.weight", "layer2.bias", "fc.weight", "fc.bias"]
    with pytest.raises(freezedsl.UsageError):
        freezedsl.param_groups(model, path, lr=0.1, epoch=2)  # the model is not at epoch 2
    with pytest.raises(freezedsl.UsageError, match="pass epoch="):
        freezedsl.param_groups(model, path, lr=0.1, step=5)
    freezedsl.apply(model, freezedsl.load(path).at(epoch=2))
    assert len(freezedsl.param_groups(model, path, lr=0.1, epoch=2)[0]["params"]) == 6


# ----------------------------------------------------------------- lr decay layers (issue 13.5)


def test_decay_composes_with_relative_factors_and_absolute_values_win() -> None:
    """`lr decay` and `lr Nx` are separate settings that multiply (MMEngine's bias_lr_mult
    times the layer decay); an absolute `lr V` is used as it is."""
    model = make_net()
    rules = "lr decay 0.5 over layer1, layer2, fc\nlr 2x **.bias\nlr 3e-4 fc.weight"
    by_name = _by_name(freezedsl.param_groups(model, rules, lr=1.0))
    assert by_name["layer1.weight"]["lr"] == 0.125 and by_name["layer1.bias"]["lr"] == 0.25
    assert by_name["layer2.weight"]["lr"] == 0.25 and by_name["layer2.bias"]["lr"] == 0.5
    assert by_name["fc.bias"]["lr"] == 1.0 and by_name["fc.weight"]["lr"] == 3e-4
    # the order of the two kinds of statement does not matter; within a kind, the last wins
    swapped = "lr 2x **.bias\nlr decay 0.5 over layer1, layer2, fc\nlr decay 0.1 over fc"
    by_name = _by_name(freezedsl.param_groups(model, swapped, lr=1.0))
    assert by_name["layer1.bias"]["lr"] == 0.25 and by_name["fc.bias"]["lr"] == pytest.approx(0.2)


def test_braces_make_one_layer_and_parameters_are_layers() -> None:
    model = make_net()
    plan = freezedsl.plan(model, "lr decay 0.5 over {layer1, layer2.weight}, layer2.bias, fc")
    lr = {p.name: float(p.lr.value) for p in plan.params if p.lr is not None}
    assert lr == {"layer1.weight": 0.125, "layer1.bias": 0.125, "layer2.weight": 0.125,
                  "layer2.bias": 0.25, "fc.weight": 0.5, "fc.bias": 0.5}


def test_min_scale_and_freeze_below() -> None:
    model = make_net()
    rules = "lr decay 0.5 over layer1, layer2, fc min 0.2 freeze below 0.25"
    plan = freezedsl.plan(model, rules)
    lr = {p.name: float(p.lr.value) for p in plan.params}
    assert lr["layer1.weight"] == 0.2 and lr["layer2.weight"] == 0.25 and lr["fc.weight"] == 0.5
    assert plan.frozen == ["layer1.weight", "layer1.bias"]  # 0.2 < 0.25
    (row,) = [p for p in plan.params if p.name == "layer1.weight"]
    assert row.decided_by == 1
    # a later unfreeze wins over `freeze below`, as over any freeze
    assert freezedsl.plan(model, rules + "\nunfreeze layer1").frozen == []
    freezedsl.apply(model, rules)
    names = [n for g in freezedsl.param_groups(model, rules, lr=1.0) for n in g["param_names"]]
    assert "layer1.weight" not in names and "layer2.weight" in names
