"""b38 BYOL-A: set_trainable(True) after set_trainable(False) unfreezes nothing.

Expect: FZ304
"""

import torch
from _load import bug
from torch import nn

m = bug("b38")
x = torch.randn(4, 1, 6, 6)


def train_head(model):
    head = nn.Linear(64, 2)
    opt = torch.optim.SGD(head.parameters(), lr=0.1)
    head(model.features(x).mean((2, 3))).sum().backward()
    opt.step()


def train_all(model):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        model.fc(model.features(x).mean((2, 3))).sum().backward()
        opt.step()
        opt.zero_grad()


m.finetune(m.AudioNTT2020(d=8), train_head, train_all)
