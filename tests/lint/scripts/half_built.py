"""A model whose __init__ failed before nn.Module.__init__ stays alive in a traceback.

The script recovers and trains a correct model; the half-built one must not break the
runtime checks (it used to crash them and still print "All checks passed").
"""

import sys

import torch
from torch import nn


class Broken(nn.Module):
    def __init__(self, width: int) -> None:
        if width <= 0:
            raise ValueError("width must be positive")
        super().__init__()


try:
    Broken(0)
except ValueError:
    kept = sys.exc_info()  # keeps the half-built module alive through the frame

model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
model[0].requires_grad_(False)
opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
x, y = torch.randn(16, 4), torch.randn(16, 2)
nn.functional.mse_loss(model(x), y).backward()
opt.step()
