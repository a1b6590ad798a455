"""Freezes the first layer after a debug backward and keeps it in SGD with momentum.

The stale gradient moves it at the first step; zero_grad(set_to_none=False) then keeps
a zero gradient in place, so momentum moves it at every later step.
"""

import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
x, y = torch.randn(16, 4), torch.randn(16, 2)

nn.functional.mse_loss(model(x), y).backward()  # "do gradients flow?" debug pass
model[0].requires_grad_(False)

opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
for step in range(20):
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=False)
    print(f"step {step} loss {loss.item():.4f}")
