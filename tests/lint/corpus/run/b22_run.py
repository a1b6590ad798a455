"""b22 Muon: weight decay runs before the grad-is-None test, so frozen tensors decay.

Expect: FZ311
"""

import torch
from _load import bug
from torch import nn

m = bug("b22")
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
model[0].requires_grad_(False)
opt = m.Muon(model.parameters(), {"lr": 0.1, "weight_decay": 0.1})
x, y = torch.randn(16, 4), torch.randn(16, 2)
for _ in range(4):
    nn.functional.mse_loss(model(x), y).backward()
    opt.step()
    opt.zero_grad()
