"""Freezes the whole model by mistake: backward() crashes before the first step."""

import torch
from torch import nn

model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
model.requires_grad_(False)  # meant: model[0].requires_grad_(False)
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
x, y = torch.randn(16, 4), torch.randn(16, 2)
for _ in range(3):
    nn.functional.mse_loss(model(x), y).backward()  # "does not require grad"
    opt.step()
    opt.zero_grad()
