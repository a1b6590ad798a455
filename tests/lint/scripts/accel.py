"""Single-process Accelerate on CPU (``python accel.py before|after``).

``after`` freezes the backbone after ``accelerator.prepare`` (FZ314: multi-process DDP
would hang or keep updating it); ``before`` freezes first and is correct.
"""

import sys

import torch
from accelerate import Accelerator
from torch import nn

when = sys.argv[1]
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
accelerator = Accelerator(cpu=True)
if when == "before":
    model[0].requires_grad_(False)
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
model, opt = accelerator.prepare(model, opt)
if when == "after":
    model[0].requires_grad_(False)
x, y = torch.randn(16, 4), torch.randn(16, 2)
for _ in range(4):
    opt.zero_grad()
    accelerator.backward(nn.functional.mse_loss(model(x), y))
    opt.step()
