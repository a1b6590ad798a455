"""A frozen conv backbone with BatchNorm and a trainable head.

--bug: the backbone stays in train() mode, so its running statistics drift although
its weights are frozen (FZ306). The correct twin puts it in eval() every epoch.
"""

import argparse

import torch
from torch import nn

ap = argparse.ArgumentParser()
ap.add_argument("--bug", action="store_true")
args = ap.parse_args()
torch.manual_seed(0)
backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
head = nn.Linear(8, 3)
model = nn.Sequential(backbone, head)
backbone.requires_grad_(False)
opt = torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9)
for _ in range(3):
    model.train()
    if not args.bug:
        backbone.eval()
    x, y = torch.randn(4, 3, 12, 12), torch.randint(0, 3, (4,))
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
