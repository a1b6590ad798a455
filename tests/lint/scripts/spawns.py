"""Starts a long-lived helper process (like a data server) and then trains."""

import subprocess
import sys

import torch
from torch import nn

helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open(sys.argv[1], "w", encoding="utf-8") as fh:
    fh.write(str(helper.pid))

model = nn.Linear(4, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
model(torch.randn(3, 4)).sum().backward()
opt.step()
