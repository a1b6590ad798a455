"""Fails while validating its configuration, before any training step."""

import torch
from torch import nn


def build(lr: float) -> torch.optim.Optimizer:
    if lr <= 0:
        raise ValueError(f"learning rate must be positive, got {lr}")
    return torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=lr)


build(-1.0)
