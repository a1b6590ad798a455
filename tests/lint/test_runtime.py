"""FZ3xx runtime checks on real models and optimizers.

The optimizer tests are "honesty" tests: whatever a check claims about the next step
(FZ302: it moves; FZ301: it does not) is verified by taking that step.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest
import torch
import torch.distributed as dist
from torch import nn

from freezedsl.lint import runtime
from freezedsl.lint.registry import RULES, Diagnostic, Severity

torch.manual_seed(0)


def codes(diags: list[Diagnostic], code: str) -> set[str | None]:
    return {d.obj for d in diags if d.code == code}


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def train_step(model: nn.Module, opt: torch.optim.Optimizer) -> None:
    opt.zero_grad()
    model(torch.randn(6, 4)).pow(2).sum().backward()
    opt.step()


def test_codes_registered_in_order() -> None:
    expected = {
        "FZ301": "frozen-param-in-optimizer",
        "FZ302": "frozen-param-will-move",
        "FZ303": "trainable-param-not-in-optimizer",
        "FZ304": "nothing-trainable",
        "FZ305": "head-frozen",
        "FZ306": "norm-stats-drift",
        "FZ307": "param-in-two-groups",
        "FZ308": "ddp-built-before-freeze",
        "FZ309": "fsdp-mixed-requires-grad",
        "FZ310": "reentrant-checkpoint-after-frozen-prefix",
        "FZ311": "frozen-param-changed",
        "FZ003": "check-failed",
    }
    for code, name in expected.items():
        rule = RULES[code]
        assert rule.name == name
        assert "## Use instead" in rule.doc()
    assert RULES["FZ302"].severity is Severity.ERROR
    assert RULES["FZ301"].severity is Severity.WARNING


# ---------------------------------------------------------------- FZ301 / FZ302 honesty


def _opt(kind: str) -> Callable[[list[nn.Parameter]], torch.optim.Optimizer]:
    table: dict[str, Callable[[list[nn.Parameter]], torch.optim.Optimizer]] = {
        "sgd-momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
        "sgd-plain": lambda ps: torch.optim.SGD(ps, lr=0.1),
        "sgd-wd": lambda ps: torch.optim.SGD(ps, lr=0.1, weight_decay=0.1),
        "sgd-lr0": lambda ps: torch.optim.SGD(ps, lr=0.0, momentum=0.9),
        "adamw-wd": lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.01),
        "adam": lambda ps: torch.optim.Adam(ps, lr=0.01),
        "adagrad": lambda ps: torch.optim.Adagrad(ps, lr=0.1),
        "rmsprop-momentum": lambda ps: torch.optim.RMSprop(ps, lr=0.01, momentum=0.9),
        "rmsprop": lambda ps: torch.optim.RMSprop(ps, lr=0.01),
    }
    return table[kind]


# (optimizer, train one step first?, how the frozen layer's grad is left, expected code)
SCENARIOS = [
    ("sgd-momentum", True, "zeros", "FZ302"),  # momentum buffer keeps moving it
    ("sgd-momentum", True, "none", "FZ301"),  # grad None: SGD skips it
    ("sgd-plain", True, "zeros", "FZ301"),
    ("sgd-plain", False, "stale", "FZ302"),  # backward, then frozen without zero_grad
    ("sgd-lr0", False, "stale", "FZ301"),
    ("sgd-wd", False, "zeros", "FZ302"),  # coupled decay
    ("adamw-wd", False, "zeros", "FZ302"),  # decoupled decay applies to params with a grad
    ("adamw-wd", True, "zeros", "FZ302"),
    ("adamw-wd", True, "none", "FZ301"),
    ("adam", False, "zeros", "FZ301"),  # fresh state, zero grad: update is exactly 0
    ("adam", True, "zeros", "FZ302"),  # exp_avg keeps moving it
    ("adagrad", True, "zeros", "FZ301"),  # update proportional to the grad
    ("rmsprop-momentum", True, "zeros", "FZ302"),
    ("rmsprop", True, "zeros", "FZ301"),
]


@pytest.mark.parametrize(("kind", "pretrain", "grad", "expected"), SCENARIOS)
def test_will_move_claims_match_what_step_does(
    kind: str, pretrain: bool, grad: str, expected: str
) -> None:
    torch.manual_seed(1)
    model = mlp()
    opt = _opt(kind)(list(model.parameters()))
    if pretrain:
        train_step(model, opt)
    if grad == "stale":
        opt.zero_grad()
        model(torch.randn(6, 4)).pow(2).sum().backward()
        model[0].requires_grad_(False)
    else:
        model[0].requires_grad_(False)
        opt.zero_grad(set_to_none=(grad == "none"))
        if grad == "zeros":
            for p in model[0].parameters():
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
        model(torch.randn(6, 4)).pow(2).sum().backward()  # the head still trains

    found = runtime.check(model, opt)
    frozen = {"0.weight", "0.bias"}
    assert codes(found, expected) == frozen
    other = "FZ301" if expected == "FZ302" else "FZ302"
    assert not codes(found, other)

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt.step()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    if expected == "FZ302":
        assert frozen <= moved
    else:
        assert not frozen & moved


def test_brief_scenario_sgd_and_adamw_side_by_side() -> None:
    """Train a step, freeze layers "the moving way" and "the safe way"; step again; compare."""
    torch.manual_seed(2)
    model = nn.Sequential(
        nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.Linear(8, 2)
    )
    sgd = torch.optim.SGD(list(model[0].parameters()), lr=0.1, momentum=0.9)
    rest = [p for i in (2, 4, 5) for p in model[i].parameters()]
    adamw = torch.optim.AdamW(rest, lr=0.01, weight_decay=0.01)
    for opt in (sgd, adamw):
        opt.zero_grad()
    model(torch.randn(6, 4)).pow(2).sum().backward()
    sgd.step()
    adamw.step()

    # The moving way: freeze, then zero_grad(set_to_none=False) leaves zero gradients.
    model[0].requires_grad_(False)  # SGD: momentum_buffer keeps moving it
    model[2].requires_grad_(False)  # AdamW: exp_avg and decoupled decay keep moving it
    sgd.zero_grad(set_to_none=False)
    adamw.zero_grad(set_to_none=False)
    # The safe way: frozen but its .grad is None, so AdamW skips it.
    model[4].requires_grad_(False)
    for p in model[4].parameters():
        p.grad = None
    model(torch.randn(6, 4)).pow(2).sum().backward()  # the head (5) still trains

    found = runtime.check(model, [sgd, adamw])
    assert codes(found, "FZ302") == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert codes(found, "FZ301") == {"4.weight", "4.bias"}
    msgs = {d.obj: d.message for d in found}
    assert "momentum_buffer" in msgs["0.weight"] and "\n" not in msgs["0.weight"]
    assert "weight_decay=0.01" in msgs["2.weight"]

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    sgd.step()
    adamw.step()
    for n in ("0.weight", "0.bias", "2.weight", "2.bias", "5.weight"):
        assert not torch.equal(before[n], model.get_parameter(n)), n
    for n in ("4.weight", "4.bias"):
        assert torch.equal(before[n], model.get_parameter(n)), n


def test_adamw_decay_alone_moves_a_zero_grad_param() -> None:
    model = mlp()
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.01)
    model[0].requires_grad_(False)
    for p in model[0].parameters():
        p.grad = torch.zeros_like(p)
    found = runtime.check(model, opt)
    assert codes(found, "FZ302") == {"0.weight", "0.bias"}
    assert "decoupled" in next(d.message for d in found if d.code == "FZ302")
    weight = model.get_parameter("0.weight")
    before = weight.detach().clone()
    opt.step()
    assert not torch.equal(before, weight)


def test_filtered_optimizer_is_clean() -> None:
    model = mlp()
    model[0].requires_grad_(False)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    assert runtime.check(model, opt) == []


# ---------------------------------------------------------------- FZ303 / FZ304 / FZ305


def test_lazy_modules_do_not_break_checks() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.LazyLinear(2))
    model[0].requires_grad_(False)
    opt = torch.optim.SGD(model[0].parameters(), lr=0.1)
    found = runtime.check(model, opt)
    assert codes(found, "FZ303") == {"1.weight", "1.bias"}
    assert runtime.describe_model(model) == "Sequential (20 params, 0 trainable)"
    assert set(runtime.snapshot_frozen(model)) == {"0.weight", "0.bias"}


def test_trainable_not_in_optimizer() -> None:
    model = nn.Sequential()
    model.add_module("body", nn.Linear(4, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.add_module("fc", nn.Linear(4, 2))  # new head after the optimizer was built
    found = runtime.check(model, opt)
    assert codes(found, "FZ303") == {"fc.weight", "fc.bias"}
    assert not codes(runtime.check(model), "FZ303")  # only with an optimizer


def test_nothing_trainable_and_frozen_head() -> None:
    model = mlp().requires_grad_(False)
    found = runtime.check(model)
    assert [d.code for d in found if d.code == "FZ304"] == ["FZ304"]
    assert codes(found, "FZ305") == {"2"}
    assert runtime.check(nn.ReLU()) == []  # no parameters: nothing to say


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8))
        self.classifier = nn.Linear(8, 2)
        self.aux = nn.Linear(8, 8)  # registered later, but not the head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def test_head_by_name_then_last_linear() -> None:
    net = Net()
    net.classifier.requires_grad_(False)
    assert codes(runtime.check(net), "FZ305") == {"classifier"}
    net.classifier.requires_grad_(True)
    net.aux.requires_grad_(False)
    assert not codes(runtime.check(net), "FZ305")

    model = mlp()
    model[2].requires_grad_(False)  # last Linear
    found = runtime.check(model)
    assert codes(found, "FZ305") == {"2"}
    assert "unfreeze 2" in next(d.message for d in found if d.code == "FZ305")


def test_frozen_teacher_beside_trainable_student_is_not_flagged() -> None:
    teacher, student = mlp().requires_grad_(False), Net()
    found = runtime.check([teacher, student])
    assert not codes(found, "FZ305") and not codes(found, "FZ304")


def test_tied_head_is_skipped() -> None:
    class LM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.body = nn.Linear(4, 4)
            self.lm_head = nn.Linear(4, 10, bias=False)
            self.lm_head.weight = self.embed.weight

    lm = LM()
    lm.embed.requires_grad_(False)
    assert not codes(runtime.check(lm), "FZ305")


# ---------------------------------------------------------------- FZ306


def test_frozen_batchnorm_in_train_mode_drifts() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2)).train()
    model[:2].requires_grad_(False)
    found = runtime.check(model)
    assert codes(found, "FZ306") == {"1"}
    # The finding is real: a forward pass moves the running statistics.
    running_mean = model.get_buffer("1.running_mean")
    before = running_mean.clone()
    model(torch.randn(6, 4))
    assert not torch.equal(before, running_mean)

    model[1].eval()
    assert not codes(runtime.check(model), "FZ306")
    model[1].train().requires_grad_(False)
    import freezedsl

    freezedsl.apply(model, "freeze stats 1")  # freezedsl's own fix: a keep-eval pre-hook
    model.train()
    assert model[1].training and not codes(runtime.check(model), "FZ306")
    model[1].train().requires_grad_(True)
    assert not codes(runtime.check(model), "FZ306")


def test_non_affine_and_instance_norm() -> None:
    block = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, affine=False))
    model = nn.Sequential(block, nn.InstanceNorm2d(4, affine=True, track_running_stats=True))
    model.add_module("head", nn.Sequential(nn.Flatten(), nn.LazyLinear(2)))
    model(torch.randn(2, 3, 6, 6))
    block.requires_grad_(False)
    model[1].requires_grad_(False)
    assert codes(runtime.check(model), "FZ306") == {"0.1", "1"}
    block.requires_grad_(True)
    assert codes(runtime.check(model), "FZ306") == {"1"}


# ---------------------------------------------------------------- FZ307


def test_param_in_two_groups_hand_built() -> None:
    model = mlp()
    opt = torch.optim.SGD(model[0].parameters(), lr=0.1)
    opt.param_groups.append({**opt.defaults, "params": [model[0].weight, model[2].bias]})
    opt.param_groups[0]["params"].append(model[2].weight)
    opt.param_groups[0]["params"].append(model[2].weight)  # twice in one group
    found = runtime.check(model, opt)
    assert codes(found, "FZ307") == {"0.weight", "2.weight"}
    assert all(d.severity is Severity.ERROR for d in found if d.code == "FZ307")


def test_param_in_two_optimizers() -> None:
    model = mlp()
    a = torch.optim.SGD(model.parameters(), lr=0.1)
    b = torch.optim.Adam(model[2].parameters(), lr=0.1)
    found = runtime.check(model, [a, b])
    assert codes(found, "FZ307") == {"2.weight", "2.bias"}
    assert "Adam #1 group 0" in next(d.message for d in found if d.code == "FZ307")


def test_assert_ok_and_ignore() -> None:
    model = mlp()
    model[0].requires_grad_(False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(AssertionError) as err:
        runtime.assert_ok(model, opt)
    assert isinstance(err.value, runtime.FreezeLintError)
    assert {d.code for d in err.value.diagnostics} == {"FZ301"}
    assert "FZ301" in str(err.value)
    runtime.assert_ok(model, opt, ignore=["FZ301"])
    runtime.assert_ok(model, opt, ignore=["frozen-param-in-optimizer"])


def test_obj_path_and_multi_model_names() -> None:
    teacher, student = mlp(), mlp()
    student[0].requires_grad_(False)
    opt = torch.optim.SGD(student.parameters(), lr=0.1)
    found = runtime.check([teacher, student], opt, path="train.py")
    assert codes(found, "FZ301") == {"Sequential1.0.weight", "Sequential1.0.bias"}
    assert all(d.path == "train.py" and d.line is None for d in found)


def test_compile_prefix_is_stripped() -> None:
    model = mlp()
    model[0].requires_grad_(False)
    compiled = cast(nn.Module, torch.compile(model))  # not run: only the wrapper's naming matters
    opt = torch.optim.SGD(compiled.parameters(), lr=0.1)
    assert codes(runtime.check(compiled, opt), "FZ301") == {"0.weight", "0.bias"}


def test_snapshot_and_frozen_changes() -> None:
    model = mlp()
    model[0].requires_grad_(False)
    snap = runtime.snapshot_frozen(model)
    assert set(snap) == {"0.weight", "0.bias"}
    with torch.no_grad():
        model.get_parameter("0.bias").add_(0.5)
    found = runtime.frozen_changes(snap, steps=2, path="t.py")
    assert [(d.code, d.obj) for d in found] == [("FZ311", "0.bias")]
    assert found[0].extra["max_abs_change"] == pytest.approx(0.5)


# ---------------------------------------------------------------- FZ310


def _ckpt_model(impl: str, prefix_trainable: bool) -> nn.Sequential:
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        CheckpointImpl,
        checkpoint_wrapper,
    )

    impl_enum = CheckpointImpl.REENTRANT if impl == "reentrant" else CheckpointImpl.NO_REENTRANT
    block = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
    model = nn.Sequential(
        nn.Linear(4, 8), checkpoint_wrapper(block, checkpoint_impl=impl_enum), nn.Linear(8, 2)
    )
    model[0].requires_grad_(prefix_trainable)
    return model


@pytest.mark.parametrize(
    ("impl", "prefix_trainable", "flagged"),
    [("reentrant", False, True), ("reentrant", True, False), ("plain", False, False)],
)
def test_reentrant_checkpoint_after_frozen_prefix(
    impl: str, prefix_trainable: bool, flagged: bool
) -> None:
    model = _ckpt_model(impl, prefix_trainable)
    found = runtime.check(model)
    assert codes(found, "FZ310") == ({"1"} if flagged else set())
    # ...and the finding is real: the block's trainable weights get no gradient.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model(torch.randn(3, 4)).sum().backward()
    inner = model.get_parameter("1._checkpoint_wrapped_module.0.weight")
    assert (inner.grad is None) is flagged
    assert model[2].weight.grad is not None


def test_checkpoint_wrapper_names_are_cleaned() -> None:
    model = _ckpt_model("reentrant", True)
    model[1].requires_grad_(False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    assert codes(runtime.check(model, opt), "FZ301") == {"1.0.weight", "1.0.bias"}


class HFStyle(nn.Module):
    """The Hugging Face convention: the container checkpoints each layer of a ModuleList."""

    def __init__(self) -> None:
        super().__init__()
        import functools

        from torch.utils.checkpoint import checkpoint

        self.embed = nn.Linear(4, 8)
        self.layers = nn.ModuleList([nn.Linear(8, 8) for _ in range(2)])
        self.gradient_checkpointing = True
        self._gradient_checkpointing_func = functools.partial(checkpoint, use_reentrant=True)
        self.out = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for layer in self.layers:
            h = self._gradient_checkpointing_func(layer, h)
        return self.out(h)


def test_hf_style_reentrant_checkpointing() -> None:
    model = HFStyle()
    model.embed.requires_grad_(False)
    assert codes(runtime.check(model), "FZ310") == {"layers.0", "layers.1"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model(torch.randn(3, 4)).sum().backward()
    assert all(layer.weight.grad is None for layer in model.layers)

    # enable_input_require_grads-style hook makes the embedding output require grad.
    def make_inputs_require_grads(module: nn.Module, inp: object, out: torch.Tensor) -> None:
        out.requires_grad_(True)

    model.embed.register_forward_hook(make_inputs_require_grads)
    assert not codes(runtime.check(model), "FZ310")
    model(torch.randn(3, 4)).sum().backward()
    assert all(layer.weight.grad is not None for layer in model.layers)


# ---------------------------------------------------------------- FZ308 / FZ309 (real gloo)


@pytest.fixture(scope="module")
def gloo() -> Iterator[None]:
    if dist.is_initialized():
        yield
        return
    with tempfile.TemporaryDirectory() as tmp:
        dist.init_process_group(
            "gloo", init_method=f"file://{Path(tmp) / 'store'}", rank=0, world_size=1
        )
        try:
            yield
        finally:
            dist.destroy_process_group()


def test_ddp_built_before_freeze(gloo: None) -> None:
    from torch.nn.parallel import DistributedDataParallel as DDP

    model = mlp()
    ddp = DDP(model)
    model[0].requires_grad_(False)  # frozen after DDP registered it
    found = runtime.check(ddp)
    assert codes(found, "FZ308") == {"0.weight", "0.bias"}
    assert "frozen now" in next(d.message for d in found if d.code == "FZ308")
    # The finding is real: DDP's reducer still waits for those gradients.
    with pytest.raises(RuntimeError, match="Expected to have finished reduction"):
        for _ in range(2):
            ddp(torch.randn(3, 4)).sum().backward()

    # Built after freezing: nothing to report; names lose DDP's "module." prefix.
    model2 = mlp()
    model2[0].requires_grad_(False)
    ddp2 = DDP(model2)
    opt = torch.optim.SGD(ddp2.parameters(), lr=0.1)
    found2 = runtime.check(ddp2, opt)
    assert not codes(found2, "FZ308")
    assert codes(found2, "FZ301") == {"0.weight", "0.bias"}

    # Unfrozen after DDP was built: DDP never all-reduces it.
    model2[0].weight.requires_grad_(True)
    found3 = runtime.check(ddp2)
    assert codes(found3, "FZ308") == {"0.weight"}
    assert "unfrozen after" in next(d.message for d in found3 if d.code == "FZ308")


def test_ddp_large_model_falls_back_to_counts(gloo: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from torch.nn.parallel import DistributedDataParallel as DDP

    monkeypatch.setattr(runtime.distributed, "_DDP_BUCKET_BUDGET_BYTES", 0)
    model = mlp()
    ddp = DDP(model)
    assert not codes(runtime.check(ddp), "FZ308")
    model[0].requires_grad_(False)
    found = [d for d in runtime.check(ddp) if d.code == "FZ308"]
    assert len(found) == 1 and "built for 4 trainable tensors" in found[0].message


def test_fsdp_freeze_inside_summon_is_lost(gloo: None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        model = mlp()
        fsdp = FSDP(model, device_id=torch.device("cpu"), use_orig_params=False)
        opt = torch.optim.SGD(fsdp.parameters(), lr=0.1)
        assert not codes(runtime.check(fsdp, opt), "FZ309")

        with FSDP.summon_full_params(fsdp):
            model[0].weight.requires_grad_(False)
            found = runtime.check(fsdp, opt)
            before = model.get_parameter("0.weight").detach().clone()
        assert codes(found, "FZ309") == {"0.weight"}
        assert "use_orig_params=True" in next(d.message for d in found if d.code == "FZ309")

        # The finding is real: the "frozen" weight trains with the rest of the FlatParameter.
        fsdp(torch.randn(5, 4)).sum().backward()
        opt.step()
        with FSDP.summon_full_params(fsdp):
            assert not torch.equal(before, model.get_parameter("0.weight"))
            assert model[0].weight.requires_grad  # the flag was silently reset

        # torch itself refuses mixed flags at wrap time with use_orig_params=False.
        mixed = mlp()
        mixed[0].weight.requires_grad_(False)
        with pytest.raises(ValueError, match="uniform `requires_grad`"):
            FSDP(mixed, device_id=torch.device("cpu"), use_orig_params=False)


class _RaisingParams(nn.Sequential):
    def named_parameters(self, *a: object, **kw: object) -> Iterator[tuple[str, nn.Parameter]]:  # type: ignore[override]
        raise RuntimeError("parameters live on a remote shard")


class _HalfBuilt(nn.Module):
    def __init__(self) -> None:  # never calls nn.Module.__init__
        pass


def test_unreadable_model_is_fz003_not_a_pass() -> None:
    """Issue 11: a model whose parameters() raises is reported, never a clean result."""
    bad = _RaisingParams(nn.Linear(2, 2))
    found = runtime.check(bad, torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1))
    fz003 = [d for d in found if d.code == "FZ003"]
    assert len(fz003) == 1 and "remote shard" in fz003[0].message
    assert fz003[0].severity is Severity.ERROR and fz003[0].obj == "_RaisingParams"
    half = runtime.check(_HalfBuilt.__new__(_HalfBuilt))
    assert [d.code for d in half] == ["FZ003"] and "half-built" in half[0].message
    assert not runtime.built(_HalfBuilt.__new__(_HalfBuilt)) and runtime.built(nn.Linear(1, 1))


def test_crashing_check_is_fz003_and_the_others_still_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    clean = runtime.check(model, opt)
    assert "FZ003" not in {d.code for d in clean} and "FZ301" in {d.code for d in clean}

    def boom(ctx: object) -> None:
        raise KeyError("params")

    checks = list(runtime._CHECKS)
    monkeypatch.setitem(runtime._CHECK_NAMES, boom, "norm-stats-drift")
    monkeypatch.setattr(runtime, "_CHECKS", (*checks[:4], boom, *checks[5:]))
    found = runtime.check(model, opt)
    fz003 = [d.message for d in found if d.code == "FZ003"]
    want = "check 'norm-stats-drift' did not run: KeyError: 'params'; its findings are missing"
    assert fz003 == [want + " from this report"]
    assert {d.code for d in found} - {"FZ003"} == {d.code for d in clean}


def test_stepping_limits_fz301_to_the_optimizer_about_to_step() -> None:
    """CycleGAN: D is frozen on purpose while G's optimizer steps."""
    g, d = nn.Linear(4, 4), nn.Linear(4, 1)
    opt_g, opt_d = torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters())
    d.requires_grad_(False)
    assert {x.code for x in runtime.check([g, d], [opt_g, opt_d])} == {"FZ301"}
    assert runtime.check([g, d], [opt_g, opt_d], stepping=opt_g) == []
    stepping_d = runtime.check([g, d], [opt_g, opt_d], stepping=opt_d)
    assert {x.obj for x in stepping_d if x.code == "FZ301"} == {"Linear1.weight", "Linear1.bias"}


def test_step_watch_reports_a_step_that_moves_a_frozen_tensor() -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    teacher = nn.Linear(3, 3).requires_grad_(False)
    watch = runtime.StepWatch([model], "t.py", budget_bytes=1 << 20)
    found: list[Diagnostic] = []
    for step in (1, 2, 3):
        if step == 2:
            model[0].requires_grad_(False)  # stale zero grads + momentum keep moving it
        opt.zero_grad(set_to_none=False)
        model(torch.randn(4, 3)).sum().backward()
        watch.start(opt)
        opt.step()
        with torch.no_grad():  # an EMA update outside step() is not the optimizer's doing
            teacher.weight.mul_(0.5)
        found += watch.finish(opt, step)
    assert [(d.obj, d.extra["step"]) for d in found] == [("0.weight", 2), ("0.bias", 2)]
    assert "changed in optimizer step 2 of SGD" in found[0].message


def test_changed_since_prepare_is_one_finding_per_model() -> None:
    from freezedsl.lint.runtime.distributed import changed_since_prepare, requires_grad_at

    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    recorded = requires_grad_at(model)
    assert changed_since_prepare(model, recorded, "t.py") == []  # nothing changed: clean
    model[0].requires_grad_(False)
    found = changed_since_prepare(model, recorded, "t.py")
    assert [(d.code, d.obj) for d in found] == [("FZ314", "Sequential")]
    assert "2 frozen (0.weight, 0.bias)" in found[0].message
    assert RULES["FZ314"].name == "freeze-after-accelerate-prepare"
