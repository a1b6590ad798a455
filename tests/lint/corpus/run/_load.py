"""Helpers of the run harnesses: load a corpus bug file as a module, tiny models.

Each ``bNN_run.py`` next to this file drives the code of ``../bugs/bNN_*.py`` the way
its source project did, on a tiny model and synthetic data on the CPU, so that
``freezedsl lint --steps 3 bNN_run.py`` can watch it (benchmarks/bench_corpus_recall.py).
Its ``Expect:`` line names the runtime codes that explain the bug; ``Expect: none``
means run mode has no check for it (the reason follows). ``cNN_run.py`` drives a
correct control the same way (``Expect: clean``: no runtime finding).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

CORPUS = Path(__file__).resolve().parent.parent


def bug(prefix: str) -> ModuleType:
    """The corpus file ``bugs/<prefix>_*.py`` (or ``controls/<prefix>_*.py``), imported."""
    folder = CORPUS / ("controls" if prefix.startswith("c") else "bugs")
    path = next(folder.glob(f"{prefix}_*.py"))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BnNet(nn.Module):
    """A backbone with BatchNorm and a linear head (named ``backbone`` and ``fc``)."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
        )
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone(x).flatten(1))


def images(n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(n)
    return torch.randn(8, 3, 8, 8), torch.randint(0, 2, (8,))


def sgd_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: object) -> None:
    x, y = batch  # type: ignore[misc]
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    optimizer.zero_grad()
