"""The twin of leaky.py with the optimizer built from trainable parameters only."""

import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
x, y = torch.randn(16, 4), torch.randn(16, 2)

nn.functional.mse_loss(model(x), y).backward()
model[0].requires_grad_(False)

opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
for step in range(20):
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=False)
    print(f"step {step} loss {loss.item():.4f}")
