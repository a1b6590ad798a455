"""Gradual unfreezing with freezedsl.Schedule (docs/pipeline.md): the head trains from
epoch 0, the last backbone block joins at epoch 1. Correct code."""

import torch
from torch import nn

import freezedsl

RULES = """
freeze all
unfreeze head
at epoch 1: unfreeze backbone.2
"""


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16))
        self.head = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x).relu())


torch.manual_seed(0)
model = Net()
sched = freezedsl.Schedule(RULES, model)
optimizer = torch.optim.SGD(sched.param_groups(lr=0.1), lr=0.1, momentum=0.9)
sched.attach(optimizer)
data = [(torch.randn(4, 8), torch.randn(4, 2)) for _ in range(2)]
for epoch in range(3):
    sched.epoch_start(epoch)
    for x, y in data:
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
