"""freezedsl.Schedule: phases applied in a real training loop, with optimizer surgery."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
import torch

import freezedsl

from .models import (
    Net,
    assert_groups_match_model,
    batches,
    make_net,
    snapshot,
    train_epoch,
)

RULES = """
freeze all
unfreeze fc
lr 0.1x layer2
at epoch 1: unfreeze layer2
at epoch 3: freeze layer2
"""

SGD: Callable[[Any], torch.optim.Optimizer] = lambda groups: torch.optim.SGD(
    groups, lr=0.1, momentum=0.9, weight_decay=1e-3
)
ADAMW: Callable[[Any], torch.optim.Optimizer] = lambda groups: torch.optim.AdamW(groups, lr=0.01)


def build(
    rules: str = RULES,
    factory: Callable[[Any], torch.optim.Optimizer] = SGD,
    lr_scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
) -> tuple[Net, torch.optim.Optimizer, freezedsl.Schedule, Any]:
    """Model -> Schedule (time 0) -> optimizer from sched.param_groups -> attach."""
    model = make_net()
    sched = freezedsl.Schedule(rules, model)
    opt = factory(sched.param_groups(lr=0.1, weight_decay=1e-3))
    lr_sched = lr_scheduler(opt) if lr_scheduler else None
    sched.attach(opt, lr_schedulers=[lr_sched] if lr_sched is not None else [])
    return model, opt, sched, lr_sched


def run(
    model: Net,
    opt: torch.optim.Optimizer,
    sched: freezedsl.Schedule,
    lr_sched: Any,
    epochs: range,
    data: list[Any],
) -> None:
    for epoch in epochs:
        sched.epoch_start(epoch)
        train_epoch(model, opt, data)
        assert_groups_match_model(model, opt)
        if lr_sched is not None:
            lr_sched.step()


@pytest.mark.parametrize("factory", [SGD, ADAMW], ids=["sgd-momentum", "adamw"])
def test_phases_freeze_and_unfreeze_in_a_training_loop(
    factory: Callable[[Any], torch.optim.Optimizer],
) -> None:
    model, opt, sched, _ = build(factory=factory)
    data = batches()
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]
    assert len(opt.param_groups) == 1

    before = snapshot(model)
    assert not sched.epoch_start(0)  # nothing changes at epoch 0 (already applied)
    train_epoch(model, opt, data)
    after0 = snapshot(model)
    assert torch.equal(before["layer2.weight"], after0["layer2.weight"])
    assert not torch.equal(before["fc.weight"], after0["fc.weight"])

    change = sched.epoch_start(1)
    assert change.unfrozen == ("layer2.weight", "layer2.bias") and change.frozen == ()
    assert change.added_groups == (1,)
    new = opt.param_groups[1]
    assert new["params"][0] is model.layer2.weight  # by identity, never a copy
    assert new["lr"] == pytest.approx(0.01) and new["weight_decay"] == 1e-3  # 0.1x the base
    assert new["name"] == "epoch 1: lr=0.1x,wd=1x"
    assert new["param_names"] == ["layer2.weight", "layer2.bias"]
    assert_groups_match_model(model, opt)
    assert not sched.epoch_start(1)  # idempotent
    train_epoch(model, opt, data)
    assert not torch.equal(after0["layer2.weight"], model.layer2.weight)  # now it trains
    assert all(p in opt.state and opt.state[p] for p in model.layer2.parameters())

    sched.epoch_start(2)
    train_epoch(model, opt, data)
    change = sched.epoch_start(3)
    assert change.frozen == ("layer2.weight", "layer2.bias") and change.unfrozen == ()
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["params"] == []  # kept, empty
    assert all(p not in opt.state and p.grad is None for p in model.layer2.parameters())
    frozen_at = snapshot(model)
    for epoch in (3, 4):
        sched.epoch_start(epoch)
        train_epoch(model, opt, data)
    # momentum / Adam moments and weight decay would keep moving it: they must not
    assert torch.equal(frozen_at["layer2.weight"], model.layer2.weight)
    assert torch.equal(frozen_at["layer2.bias"], model.layer2.bias)
    assert not torch.equal(frozen_at["fc.weight"], model.fc.weight)
    assert torch.equal(before["layer1.weight"], model.layer1.weight)  # never trained
    assert sched.state_dict()["history"] == [1, 3]


def _checkpoint(
    model: Net, opt: torch.optim.Optimizer, sched: freezedsl.Schedule, lr_sched: Any
) -> bytes:
    buf = io.BytesIO()
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "freeze": sched.state_dict(),
    }
    if lr_sched is not None:
        state["lr_scheduler"] = lr_sched.state_dict()
    torch.save(state, buf)
    return buf.getvalue()


def _resume(
    blob: bytes, factory: Any, lr_scheduler: Any
) -> tuple[Net, torch.optim.Optimizer, freezedsl.Schedule, Any]:
    """The documented order: model -> Schedule -> optimizer (+ schedulers) -> attach ->
    sched.load_state_dict -> optimizer.load_state_dict -> scheduler.load_state_dict."""
    saved = torch.load(io.BytesIO(blob), weights_only=True)
    model = Net()  # fresh, differently initialised: everything must come from the checkpoint
    model.load_state_dict(saved["model"])
    sched = freezedsl.Schedule(RULES, model)
    opt = factory(sched.param_groups(lr=0.1, weight_decay=1e-3))
    lr_sched = lr_scheduler(opt) if lr_scheduler else None
    sched.attach(opt, lr_schedulers=[lr_sched] if lr_sched is not None else [])
    sched.load_state_dict(saved["freeze"])
    opt.load_state_dict(saved["optimizer"])
    if lr_sched is not None:
        lr_sched.load_state_dict(saved["lr_scheduler"])
    return model, opt, sched, lr_sched


def _lambda(opt: torch.optim.Optimizer) -> Any:
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.8**e)


def _step(opt: torch.optim.Optimizer) -> Any:
    return torch.optim.lr_scheduler.StepLR(opt, 2, 0.5)


@pytest.mark.parametrize(
    ("factory", "lr_scheduler", "stop"),
    [
        (SGD, None, 1),  # before any phase boundary
        (SGD, _step, 4),  # after layer2 joined and left again (an empty group)
        (ADAMW, _lambda, 2),  # mid-run, after layer2 joined
        (ADAMW, None, 3),  # just before the freeze at epoch 3
    ],
    ids=["sgd-1", "sgd-steplr-4", "adamw-lambdalr-2", "adamw-3"],
)
def test_resume_continues_exactly_like_an_uninterrupted_run(
    factory: Any, lr_scheduler: Any, stop: int
) -> None:
    data = batches()
    full = build(factory=factory, lr_scheduler=lr_scheduler)
    run(*full, range(6), data)

    first = build(factory=factory, lr_scheduler=lr_scheduler)
    run(*first, range(stop), data)
    blob = _checkpoint(*first)
    torch.manual_seed(123)
    resumed = _resume(blob, factory, lr_scheduler)
    assert resumed[2].time == stop - 1
    assert [len(g["params"]) for g in resumed[1].param_groups] == [
        len(g["params"]) for g in first[1].param_groups
    ]
    run(*resumed, range(stop, 6), data)

    for (name, a), (_, b) in zip(full[0].named_parameters(), resumed[0].named_parameters()):
        assert torch.equal(a, b), name
    assert resumed[2].state_dict() == full[2].state_dict()
    assert [g["lr"] for g in resumed[1].param_groups] == [g["lr"] for g in full[1].param_groups]


def test_resume_with_other_rules_or_out_of_order_is_a_clear_error() -> None:
    sched = build()[2]
    sched.epoch_start(1)
    state = sched.state_dict()

    other = freezedsl.Schedule(RULES.replace("0.1x", "0.2x"), make_net())
    with pytest.raises(freezedsl.UsageError, match="different rules"):
        other.load_state_dict(state)
    with pytest.raises(freezedsl.UsageError, match="not entered a later phase"):
        sched.load_state_dict(state)  # already advanced
    bare = freezedsl.Schedule(RULES, make_net())  # no optimizer attached
    with pytest.raises(freezedsl.UsageError, match="resume in this order"):
        bare.load_state_dict(state)
    with pytest.raises(freezedsl.UsageError, match="not a freezedsl Schedule state"):
        bare.load_state_dict({"time": 3})


def test_progressive_freezing_with_an_optimizer_over_all_parameters() -> None:
    rules = "at epoch 1: freeze layer1\nat epoch 2: freeze layer2\n"
    model = make_net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = freezedsl.Schedule(rules, model, opt)
    data = batches()
    frozen: dict[str, torch.Tensor] = {}
    for epoch in range(4):
        change = sched.epoch_start(epoch)
        if epoch == 1:
            assert change.frozen == ("layer1.weight", "layer1.bias")
        if epoch == 2:
            assert change.frozen == ("layer2.weight", "layer2.bias")
        for name in change.frozen:
            frozen[name] = dict(model.named_parameters())[name].detach().clone()
        train_epoch(model, opt, data)
        assert_groups_match_model(model, opt)
        for name, value in frozen.items():
            assert torch.equal(dict(model.named_parameters())[name], value), name
    assert len(opt.param_groups) == 1 and len(opt.param_groups[0]["params"]) == 2
    assert not any(change.added_groups for change in [sched.epoch_start(5)])


def test_construction_removes_what_time_zero_freezes_from_a_given_optimizer() -> None:
    model = make_net()
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    freezedsl.Schedule(RULES, model, opt)
    assert opt.param_groups[0]["params"] == [model.fc.weight, model.fc.bias]


def test_step_unit_schedule_is_cheap_between_boundaries() -> None:
    rules = "freeze all; unfreeze fc\nat step 4: unfreeze layer2\nat step 7: unfreeze layer1\n"
    model, opt, sched, _ = build(rules=rules)
    data = batches(1)
    entered = []
    for global_step in range(10):
        change = sched.step(global_step)
        if change.plan is not None:
            entered.append((global_step, change.unfrozen))
        else:
            assert change.unfrozen == () and not change
        train_epoch(model, opt, data)
        assert_groups_match_model(model, opt)
    assert entered == [(4, ("layer2.weight", "layer2.bias")), (7, ("layer1.weight", "layer1.bias"))]
    assert [g["name"] for g in opt.param_groups] == [
        "lr=1x,wd=1x",
        "step 4: lr=1x,wd=1x",
        "step 7: lr=1x,wd=1x",
    ]
    with pytest.raises(freezedsl.UsageError, match="schedule by step"):
        sched.epoch_start(1)


def test_failed_expect_at_a_phase_changes_nothing() -> None:
    rules = "freeze all; unfreeze fc\nat epoch 2: unfreeze layer2\nat epoch 2: expect trainable 0%..1%\n"
    model, opt, sched, _ = build(rules=rules)
    groups_before = [list(g["params"]) for g in opt.param_groups]
    with pytest.raises(freezedsl.ExpectationError):
        sched.epoch_start(2)
    assert not model.layer2.weight.requires_grad
    assert [list(g["params"]) for g in opt.param_groups] == groups_before


def test_new_group_joins_a_running_lr_schedule() -> None:
    model, opt, sched, lr_sched = build(lr_scheduler=_step)
    data = batches(1)
    run(model, opt, sched, lr_sched, range(1), data)
    lr_sched.step()  # two scheduler steps: the base group is at 0.5x of its initial lr
    sched.epoch_start(2)
    base, new = opt.param_groups
    assert base["lr"] == pytest.approx(0.05)
    assert new["initial_lr"] == pytest.approx(0.01) and new["lr"] == pytest.approx(0.005)
    assert lr_sched.base_lrs == [pytest.approx(0.1), pytest.approx(0.01)]
    lr_sched.step()
    lr_sched.step()
    assert new["lr"] == pytest.approx(0.0025)


def test_lambda_lr_keeps_working_after_a_group_is_added() -> None:
    model, opt, sched, lr_sched = build(lr_scheduler=_lambda)
    run(model, opt, sched, lr_sched, range(3), batches(1))
    assert len(lr_sched.lr_lambdas) == 2
    assert opt.param_groups[1]["lr"] == pytest.approx(0.01 * 0.8**3)


def test_unsupported_scheduler_is_refused_up_front() -> None:
    model = make_net()
    sched = freezedsl.Schedule(RULES, model)
    opt = torch.optim.SGD(sched.param_groups(lr=0.1), lr=0.1)
    cyc = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    with pytest.raises(freezedsl.UsageError, match="OneCycleLR"):
        sched.attach(opt, lr_schedulers=[cyc])


def test_rules_without_schedule_and_unit_mismatch() -> None:
    model = make_net()
    sched = freezedsl.Schedule("freeze layer1", model)
    assert not model.layer1.weight.requires_grad
    assert not sched.epoch_start(3) and not sched.step(10)
    timed = freezedsl.Schedule(RULES, make_net())
    with pytest.raises(freezedsl.UsageError, match="schedule by epoch"):
        timed.step(1000)


def test_pipeline_import_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, freezedsl; freezedsl.Schedule; freezedsl.param_groups; "
        "import freezedsl.planning.memory; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_groups_without_param_names_get_none_added() -> None:
    model = make_net()
    sched = freezedsl.Schedule(RULES, model)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.2)
    sched.attach(opt)
    change = sched.epoch_start(1)  # torch refuses mixing groups with and without names
    assert change.added_groups == (1,)
    assert "param_names" not in opt.param_groups[1]
    assert opt.param_groups[1]["lr"] == pytest.approx(0.02)  # 0.1x the optimizer's default lr
    assert sched.state_dict()["added_groups"] == [["layer2.weight", "layer2.bias"]]
