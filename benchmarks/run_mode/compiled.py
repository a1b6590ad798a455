"""torch.compile on CPU (inductor): the frozen first layer stays out of the optimizer.

--bug: a warm-up backward runs before the freeze and SGD(momentum, weight_decay) gets
every parameter, so the compiled model's frozen layer keeps a zero .grad and decays
(FZ302 at the first step, FZ311 after it).
"""

import argparse

import torch
from torch import nn

ap = argparse.ArgumentParser()
ap.add_argument("--bug", action="store_true")
args = ap.parse_args()
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
compiled = torch.compile(model)
if args.bug:
    compiled(torch.randn(4, 8)).pow(2).mean().backward()  # "do gradients flow?"
model[0].requires_grad_(False)
params = model.parameters() if args.bug else [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3)
for _ in range(4):
    opt.zero_grad(set_to_none=False)
    compiled(torch.randn(4, 8)).pow(2).mean().backward()
    opt.step()
