"""b37 OpenPCDet: the wrapper's decoupled weight decay shrinks frozen tensors too.

Expect: FZ311 (the wrapper decays the frozen tensors before calling the inner
optimizer's step(), outside the step FZ311 watches; FZ301 only says frozen tensors
sit in Adam)
"""

import torch
from _load import bug
from torch import nn

m = bug("b37")
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
model[0].requires_grad_(False)
opt = m.OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-3), [0.1], [0.1])
x, y = torch.randn(16, 4), torch.randn(16, 2)
for _ in range(4):
    nn.functional.mse_loss(model(x), y).backward()
    opt.step()
    opt.opt.zero_grad()
