"""freezedsl.planning.memory: the estimate matches what torch really allocates."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import freezedsl
from freezedsl.cli import main
from freezedsl.planning.memory import OPTIMIZERS, estimate

RULES = "freeze layer1, norm"

O = torch.optim
FACTORIES = {
    "sgd": lambda p: O.SGD(p, lr=0.1),
    "sgd-momentum": lambda p: O.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda p: O.Adam(p),
    "adamw": lambda p: O.AdamW(p),
    "radam": lambda p: O.RAdam(p),
    "adam-amsgrad": lambda p: O.Adam(p, amsgrad=True),
    "adamw-amsgrad": lambda p: O.AdamW(p, amsgrad=True),
    "nadam": lambda p: O.NAdam(p),
    "adamax": lambda p: O.Adamax(p),
    "adadelta": lambda p: O.Adadelta(p),
    "rmsprop": lambda p: O.RMSprop(p),
    "rmsprop-momentum": lambda p: O.RMSprop(p, momentum=0.9),
    "rmsprop-centered": lambda p: O.RMSprop(p, centered=True),
    "adagrad": lambda p: O.Adagrad(p),
    "rprop": lambda p: O.Rprop(p),
    "asgd": lambda p: O.ASGD(p),
}


class Mixed(nn.Module):
    """fp32 layers, a bf16 layer and an integer parameter that can never train."""

    def __init__(self, device: str | None = None) -> None:
        super().__init__()
        self.layer1 = nn.Linear(16, 32, device=device)
        self.norm = nn.LayerNorm(32, device=device)
        self.layer2 = nn.Linear(32, 32, device=device, dtype=torch.bfloat16)
        self.fc = nn.Linear(32, 4, device=device)
        self.counter = nn.Parameter(
            torch.zeros(3, dtype=torch.int64, device=device), requires_grad=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.layer1(x))
        h = self.layer2(h.to(torch.bfloat16)).float()
        return self.fc(torch.relu(h))


def _used_bytes(model: nn.Module, opt: torch.optim.Optimizer) -> tuple[int, int, int]:
    """(gradient bytes, per-element state bytes, 0-dim state bytes) torch really holds."""
    grads = sum(
        p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None
    )
    elems = scalars = 0
    for state in opt.state.values():
        for value in state.values():
            if torch.is_tensor(value):
                nbytes = value.numel() * value.element_size()
                if value.dim() == 0:
                    scalars += nbytes
                else:
                    elems += nbytes
    return grads, elems, scalars


def _one_step(model: nn.Module, name: str) -> torch.optim.Optimizer:
    opt = FACTORIES[name]([p for p in model.parameters() if p.requires_grad])
    torch.manual_seed(0)
    model(torch.randn(5, 16)).square().mean().backward()
    opt.step()
    return opt


def test_every_table_entry_is_checked() -> None:
    assert set(FACTORIES) | {"lion"} == set(OPTIMIZERS)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_estimate_equals_what_one_real_step_allocates(name: str) -> None:
    model = Mixed()
    plan = freezedsl.apply(model, RULES)
    est = estimate(plan, name)
    opt = _one_step(model, name)
    grads, elems, scalars = _used_bytes(model, opt)
    assert est.grad_bytes == grads
    assert est.state_bytes == elems + scalars
    assert est.scalar_state_bytes == scalars
    for p in (*model.layer1.parameters(), *model.norm.parameters()):
        assert p.grad is None and p not in opt.state  # frozen: nothing allocated

    # without the freeze, torch allocates exactly the estimate's "without" figure
    free = Mixed()
    free.load_state_dict(model.state_dict())
    opt = _one_step(free, name)
    assert est.total_bytes_without_freezing == sum(_used_bytes(free, opt))
    assert est.saved_bytes == est.total_bytes_without_freezing - est.total_bytes


def test_meta_model_aliases_and_dtype_override() -> None:
    real = estimate(freezedsl.plan(Mixed(), RULES), "AdamW")
    meta = estimate(freezedsl.plan(Mixed(device="meta"), RULES), "adamw")
    assert real == meta
    assert estimate(freezedsl.plan(Mixed(), RULES), "sgdm").optimizer == "sgd-momentum"
    half = estimate(freezedsl.plan(Mixed(), RULES), "adamw", dtype_bytes=2)
    assert half.frozen_elements == real.frozen_elements == 16 * 32 + 32 + 64
    assert half.saved_grad_bytes == real.frozen_elements * 2
    assert half.saved_state_bytes == real.frozen_elements * 2 * 2 + 4 * 4  # 4 frozen tensors' step
    with pytest.raises(freezedsl.UsageError, match="unknown optimizer"):
        estimate(freezedsl.plan(Mixed(), RULES), "adafactor")


def test_cli_plan_prints_the_estimate_and_adds_it_to_json(tmp_path) -> None:
    rules = tmp_path / "r.frz"
    rules.write_text("freeze features\n")
    runner = CliRunner()
    out = runner.invoke(
        main, ["plan", str(rules), "freezedsl.testing:small_cnn", "--optimizer", "adamw"]
    )
    assert out.exit_code == 0, out.output
    assert "memory, gradients and optimizer state only (adamw" in out.output and "saved by the freeze" in out.output
    assert "activations are not counted" in out.output
    out = runner.invoke(
        main,
        ["plan", str(rules), "freezedsl.testing:small_cnn", "--optimizer", "sgd-momentum", "--json"],
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    from freezedsl.testing import small_cnn

    want = estimate(freezedsl.plan(small_cnn(), str(rules)), "sgd-momentum").to_dict()
    assert data["memory"] == want
    assert "memory" not in json.loads(
        runner.invoke(main, ["plan", str(rules), "freezedsl.testing:small_cnn", "--json"]).output
    )
