"""b19 finetuner: everything frozen, then Adam over the (no) trainable parameters.

Expect: FZ304 (with the `requires_grad` filter the optimizer constructor raises
"optimizer got an empty parameter list": lint shows the crash, but no optimizer exists
whose model could be checked)
"""

import torch
from _load import bug
from torch import nn

m = bug("b19")
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
opt = m.fit(model)
x, y = torch.randn(16, 4), torch.randn(16, 2)
for _ in range(4):
    nn.functional.mse_loss(model(x), y).backward()
    opt.step()
    opt.zero_grad()
