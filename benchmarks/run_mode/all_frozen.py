"""--bug: the whole model is frozen by mistake (meant: only the stem); backward()
crashes before the first step. The run reports FZ304/FZ305 and the crash."""

import argparse

import torch
from torch import nn

ap = argparse.ArgumentParser()
ap.add_argument("--bug", action="store_true")
args = ap.parse_args()
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
(model if args.bug else model[0]).requires_grad_(False)
opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad] or model.parameters(), lr=0.1)
for _ in range(3):
    opt.zero_grad()
    nn.functional.mse_loss(model(torch.randn(8, 4)), torch.randn(8, 2)).backward()
    opt.step()
