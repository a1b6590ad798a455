"""b21 OpenGait: netA is frozen inside forward() while the model runs under DDP.

Expect: FZ308
"""

import os
import socket

import torch
import torch.distributed as dist
from _load import bug
from torch import nn
from torch.nn.parallel import DistributedDataParallel

m = bug("b21")


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.gait = m.BigGait()
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.gait(x))


with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
dist.init_process_group("gloo", rank=0, world_size=1)
net = Model()
net.gait.iteration = 60000  # the freeze happens in the next forward
ddp = DistributedDataParallel(net)
opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
for _ in range(4):
    ddp(torch.randn(4, 8)).sum().backward()
    opt.step()
    opt.zero_grad()
dist.destroy_process_group()
