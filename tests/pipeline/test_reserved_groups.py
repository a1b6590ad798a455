"""reserved_groups: empty groups for what the phases will add, filled by Schedule in place.

The reference is a run without reservation: at every epoch the optimizer with reserved
groups must hold the same tensors under the same group names, with the same lr and
weight decay, as the optimizer the Schedule grows with add_param_group - only its
number of groups never changes.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

import freezedsl
from freezedsl.pipeline import RESERVED, reserved_groups

from .models import batches, make_net, train_epoch

RULES = """
freeze all
unfreeze fc
lr 0.1x layer2
weight_decay 0 **.bias
at epoch 1: unfreeze layer2
at epoch 2: unfreeze layer1
at epoch 3: freeze layer2
at epoch 4: unfreeze layer2
"""


def build(reserve: bool) -> tuple[Any, torch.optim.Optimizer, freezedsl.Schedule]:
    model = make_net()
    sched = freezedsl.Schedule(RULES, model)
    groups = sched.param_groups(lr=0.1, weight_decay=0.01)
    extra = reserved_groups(model, RULES, groups, lr=0.1, weight_decay=0.01) if reserve else []
    opt = torch.optim.SGD(groups + extra, lr=0.1, momentum=0.9)
    sched.attach(opt)
    return model, opt, sched


def view(opt: torch.optim.Optimizer, names: dict[int, str]) -> dict[str, Any]:
    """Non-empty groups by name: tensor names, lr, weight decay."""
    return {
        g["name"]: ([names[id(p)] for p in g["params"]], g["lr"], g["weight_decay"])
        for g in opt.param_groups
        if g["params"]
    }


def test_reserved_groups_are_empty_and_named_as_the_schedule_names_them() -> None:
    _, opt, _ = build(reserve=True)
    reserved = [g for g in opt.param_groups if g.get(RESERVED)]
    assert [(g["name"], g["params"], g["lr"]) for g in reserved] == [
        ("epoch 1: lr=0.1x,wd=1x", [], pytest.approx(0.01)),
        ("epoch 1: lr=0.1x,wd=0", [], pytest.approx(0.01)),
        ("epoch 2: lr=1x,wd=1x", [], 0.1),
        ("epoch 2: lr=1x,wd=0", [], 0.1),
        ("epoch 4: lr=0.1x,wd=1x", [], pytest.approx(0.01)),  # layer2 left its groups at 3
        ("epoch 4: lr=0.1x,wd=0", [], pytest.approx(0.01)),
    ]


def test_a_run_with_reserved_groups_matches_one_that_adds_groups() -> None:
    data = batches()
    runs = [build(reserve) for reserve in (False, True)]
    names = [{id(p): n for n, p in model.named_parameters()} for model, _, _ in runs]
    counts = []
    for epoch in range(6):
        changes = [sched.epoch_start(epoch) for _, _, sched in runs]
        assert changes[0] == changes[1], epoch  # same names unfrozen/frozen, same group indices
        assert view(runs[0][1], names[0]) == view(runs[1][1], names[1]), epoch
        counts.append([len(opt.param_groups) for _, opt, _ in runs])
        for model, opt, _ in runs:
            train_epoch(model, opt, data)
    assert counts == [[2, 8], [4, 8], [6, 8], [6, 8], [8, 8], [8, 8]]
    for (_, a), (_, b) in zip(runs[0][0].named_parameters(), runs[1][0].named_parameters()):
        assert torch.equal(a, b)
    assert not any(g.get(RESERVED) for g in runs[1][1].param_groups)


def test_resume_fills_the_reserved_groups_the_saved_run_filled() -> None:
    data = batches()
    model, opt, sched = build(reserve=True)
    for epoch in range(3):
        sched.epoch_start(epoch)
        train_epoch(model, opt, data)
    # deep copies: a loaded optimizer would otherwise share momentum buffers with `opt`
    saved = copy.deepcopy(
        {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}
    )

    model2, opt2, sched2 = build(reserve=True)
    model2.load_state_dict(saved["model"])
    sched2.load_state_dict(saved["sched"])
    opt2.load_state_dict(saved["opt"])  # torch checks group count and sizes
    for epoch in range(3, 6):
        for m, o, s in ((model, opt, sched), (model2, opt2, sched2)):
            s.epoch_start(epoch)
            train_epoch(m, o, data)
    for (_, a), (_, b) in zip(model.named_parameters(), model2.named_parameters()):
        assert torch.equal(a, b)


def test_files_without_phases_reserve_nothing() -> None:
    model = make_net()
    freezedsl.apply(model, "freeze layer1")
    groups = freezedsl.param_groups(model, "freeze layer1", lr=0.1)
    assert reserved_groups(model, "freeze layer1", groups, lr=0.1) == []
