"""b15 PyTorch forum 153740: SGD(momentum) is built, then fc1 is frozen.

Expect: FZ301
"""

import torch
from _load import bug
from torch import nn

m = bug("b15")
model = nn.Sequential()
model.add_module("fc1", nn.Linear(4, 8))
model.add_module("act", nn.ReLU())
model.add_module("fc2", nn.Linear(8, 2))
x, y = torch.randn(16, 4), torch.randn(16, 2)


def training(model, optimizer):
    for _ in range(4):
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        optimizer.zero_grad()


m.run(model, training)
