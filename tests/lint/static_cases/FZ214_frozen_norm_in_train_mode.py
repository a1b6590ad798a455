"""FZ214 frozen-norm-in-train-mode. Lines with an ``expect`` comment must be reported there."""

import torch
import torchvision
from torch import nn


def flagged(loader):
    model = torchvision.models.resnet50(weights=None)
    for p in model.parameters():
        p.requires_grad = False
    model.fc = nn.Linear(2048, 10)
    opt = torch.optim.SGD(model.fc.parameters(), lr=0.1)
    for _ in range(3):
        model.train()  # expect: FZ214:9
        for x, y in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        model.eval()  # validation: the whole model, fine


def flagged_backbone(model):
    model.backbone.requires_grad_(False)
    model.train()  # expect: FZ214


# ---- correct twins: nothing below may be reported


def twin_unfrozen_again(model):
    model.backbone.requires_grad_(False)
    model.backbone.requires_grad_(True)
    model.train()


def twin_train_then_freeze(model):
    model.train()
    model.backbone.requires_grad_(False)
