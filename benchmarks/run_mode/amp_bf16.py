"""Mixed precision on CPU: autocast(bfloat16) and a GradScaler, AdamW on the head.

--bug: the optimizer gets every parameter: the frozen stem is in AdamW (FZ301). It
stays fixed only while its .grad is None: a latent bug, so no FZ311.
"""

import argparse

import torch
from torch import nn

ap = argparse.ArgumentParser()
ap.add_argument("--bug", action="store_true")
args = ap.parse_args()
torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
model[0].requires_grad_(False)
params = model.parameters() if args.bug else [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05)
scaler = torch.amp.GradScaler("cpu")
for _ in range(5):
    x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 5, (4,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
