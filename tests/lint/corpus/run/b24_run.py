"""b24 sparseml: the modifier freezes parameters after backward(), before step().

Expect: FZ302, FZ311
"""

import torch
from _load import bug
from torch import nn

m = bug("b24")
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
modifier = m.TrainableParamsModifier(list(model[0].parameters()))
x, y = torch.randn(16, 4), torch.randn(16, 2)
for epoch in range(4):
    nn.functional.mse_loss(model(x), y).backward()
    modifier.update(model, opt, epoch)
    opt.step()
    opt.zero_grad()
