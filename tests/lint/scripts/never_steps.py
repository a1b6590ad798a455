"""Builds a model and an optimizer but only evaluates: no optimizer.step()."""

import torch
from torch import nn

model = nn.Sequential(nn.Linear(4, 2)).eval()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
with torch.no_grad():
    print("eval loss", model(torch.randn(3, 4)).pow(2).mean().item())
