"""Train everything for a while, then freeze the encoder mid-training (step 3).

--bug: the encoder stays in Adam with its moments and zero gradients, so Adam keeps
moving it after the freeze (FZ311 at step 2). The correct twin drops its gradients and
optimizer state when it freezes.
"""

import argparse

import torch
from torch import nn

ap = argparse.ArgumentParser()
ap.add_argument("--bug", action="store_true")
args = ap.parse_args()
torch.manual_seed(0)
model = nn.ModuleDict({"encoder": nn.Linear(8, 8), "decoder": nn.Linear(8, 8)})
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for step in range(8):
    if step == 1:
        model["encoder"].requires_grad_(False)
        if not args.bug:
            for p in model["encoder"].parameters():
                p.grad = None
                opt.state.pop(p, None)
    x = torch.randn(4, 8)
    opt.zero_grad(set_to_none=not args.bug)
    model["decoder"](model["encoder"](x).relu()).pow(2).mean().backward()
    opt.step()
