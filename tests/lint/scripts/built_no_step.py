"""Builds its models and optimizers, then ends before training (a dry run), unless
``--step`` is given. ``--bug`` freezes the whole classifier, head included, and hands
all of it to SGD. Without it, a GAN pair and its two optimizers are built too.
"""

import sys

import torch
from torch import nn

bug = "--bug" in sys.argv
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
model.requires_grad_(False)
if not bug:
    model[2].requires_grad_(True)
params = model.parameters() if bug else [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.SGD(params, lr=0.1)

if not bug:
    gen, disc = nn.Linear(2, 4), nn.Linear(4, 1)
    opt_g = torch.optim.Adam(gen.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-3)

if "--step" not in sys.argv:
    sys.exit(0)  # dry run: everything was built, nothing trains
x = torch.randn(8, 4)
model(x).sum().backward()
opt.step()
