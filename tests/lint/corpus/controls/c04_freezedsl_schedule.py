# Control: gradual unfreezing with freezedsl.Schedule (docs/pipeline.md).
import torch
from torch import nn

import freezedsl

RULES = """
freeze all
unfreeze head
at epoch 1: unfreeze backbone.2
"""


def train(model, data):
    sched = freezedsl.Schedule(RULES, model)
    optimizer = torch.optim.SGD(sched.param_groups(lr=0.1), lr=0.1, momentum=0.9)
    sched.attach(optimizer)
    for epoch in range(5):
        sched.epoch_start(epoch)
        for x, y in data:
            optimizer.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
