"""b18: the whole model, head included, is frozen before Adam is built.

Expect: FZ304
"""

import torch
from _load import bug
from torch import nn

m = bug("b18")
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
opt = m.setup(model)
x, y = torch.randn(16, 4), torch.randn(16, 2)
for _ in range(4):
    nn.functional.mse_loss(model(x), y).backward()
    opt.step()
    opt.zero_grad()
