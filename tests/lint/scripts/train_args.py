"""Reads a JSON config from argv like a real training script and records what it saw."""

import json
import os
import sys

import torch
from torch import nn

if __name__ != "__main__":
    raise SystemExit("must run as __main__")

with open(sys.argv[1], encoding="utf-8") as fh:
    config = json.load(fh)
with open(config["record"], "w", encoding="utf-8") as fh:
    json.dump(
        {
            "argv": sys.argv,
            "path0": sys.path[0],
            "file": __file__,
            "pythonpath": os.environ.get("PYTHONPATH"),
            "leaked_env": sorted(k for k in os.environ if k.startswith("FREEZEDSL_BOOTSTRAP")),
        },
        fh,
    )

model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
if config.get("freeze_head"):
    model[2].requires_grad_(False)
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config["lr"])
for _ in range(5):
    opt.zero_grad()
    model(torch.randn(8, 4)).pow(2).mean().backward()
    opt.step()
