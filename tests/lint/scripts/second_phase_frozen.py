"""Two training phases: the head alone, then "everything" with set_trainable(True)
that only changes parameters that still require grad, so nothing is unfrozen and the
second phase crashes at backward(). ``--fixed`` unfreezes for real."""

import sys

import torch
from torch import nn


def set_trainable(model, trainable):
    for p in model.parameters():
        if "--fixed" in sys.argv or p.requires_grad:
            p.requires_grad = trainable


model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
x, y = torch.randn(16, 4), torch.randn(16, 2)
head = nn.Linear(8, 2)
set_trainable(model, False)
opt = torch.optim.SGD(head.parameters(), lr=0.1)
nn.functional.mse_loss(head(model[1](model[0](x))), y).backward()
opt.step()
set_trainable(model, True)
opt2 = torch.optim.SGD(model.parameters(), lr=0.1)
for _ in range(3):
    nn.functional.mse_loss(model(x), y).backward()
    opt2.step()
    opt2.zero_grad()
