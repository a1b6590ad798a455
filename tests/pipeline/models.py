"""Tiny models and a training loop shared by the pipeline tests."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

import freezedsl


class Net(nn.Module):
    """Three linear layers; names layer1, layer2, fc."""

    def __init__(self) -> None:
        super().__init__()
        self.layer1 = nn.Linear(4, 8)
        self.layer2 = nn.Linear(8, 8)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.layer2(torch.relu(self.layer1(x)))))


def make_net(seed: int = 0) -> Net:
    torch.manual_seed(seed)
    return Net()


def batches(n: int = 3, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 4, generator=g), torch.randn(8, 2, generator=g)) for _ in range(n)]


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, data: list[Any]) -> None:
    for x, y in data:
        optimizer.zero_grad()
        F.mse_loss(model(x), y).backward()
        optimizer.step()


def group_members(optimizer: torch.optim.Optimizer) -> list[int]:
    """ids of every tensor in every group (duplicates kept, to catch them)."""
    return [id(p) for g in optimizer.param_groups for p in g["params"]]


def assert_groups_match_model(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Each trainable tensor is in exactly one group; no frozen tensor is in any."""
    members = group_members(optimizer)
    assert len(members) == len(set(members)), "a tensor is in two groups"
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert set(members) == trainable
    for g in optimizer.param_groups:
        if "param_names" in g:
            assert len(g["param_names"]) == len(g["params"])


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def schedule_run(
    rules: str,
    optimizer_factory: Any,
    epochs: int,
    *,
    lr: float = 0.1,
    scheduler_factory: Any = None,
) -> tuple[Net, torch.optim.Optimizer, freezedsl.Schedule, Any]:
    """Build model, schedule, optimizer (from sched.param_groups) and an optional LR scheduler."""
    model = make_net()
    sched = freezedsl.Schedule(rules, model)
    opt = optimizer_factory(sched.param_groups(lr=lr))
    lr_sched = scheduler_factory(opt) if scheduler_factory else None
    sched.attach(opt, lr_schedulers=[lr_sched] if lr_sched is not None else [])
    return model, opt, sched, lr_sched
