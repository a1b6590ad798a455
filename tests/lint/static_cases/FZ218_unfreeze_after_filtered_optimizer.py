"""FZ218 unfreeze-after-filtered-optimizer. Lines with an ``expect`` comment must be
reported there."""

import torch
from torch import nn


def finetune(model, train_epochs):
    for param in model.parameters():
        param.requires_grad = False
    model.fc = nn.Linear(512, 10)
    optimizer = torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()), lr=1e-3)
    train_epochs(model, optimizer, 3)
    for param in model.layer4.parameters():  # expect: FZ218:5
        param.requires_grad = True
    train_epochs(model, optimizer, 3)


def comprehension(model, train_epochs):
    model.backbone.requires_grad_(False)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for epoch in range(10):
        if epoch == 5:
            model.backbone.requires_grad_(True)  # expect: FZ218:13
        train_epochs(model, opt, 1)


# ---- correct twins: nothing below may be reported


def rebuilt(model, train_epochs):
    for param in model.parameters():
        param.requires_grad = False
    model.fc = nn.Linear(512, 10)
    optimizer = torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()), lr=1e-3)
    train_epochs(model, optimizer, 3)
    for param in model.layer4.parameters():
        param.requires_grad = True
    optimizer = torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()), lr=1e-4)
    train_epochs(model, optimizer, 3)


def unfiltered(model, train_epochs):
    model.backbone.requires_grad_(False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train_epochs(model, opt, 1)
    model.backbone.requires_grad_(True)
    train_epochs(model, opt, 1)


def optimizer_not_used_after(model, train_epochs):
    model.backbone.requires_grad_(False)
    opt = torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.1)
    train_epochs(model, opt, 1)
    model.backbone.requires_grad_(True)
    return model


def rebuilt_each_epoch(model, train_epochs):
    model.backbone.requires_grad_(False)
    for epoch in range(10):
        opt = torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.1)
        train_epochs(model, opt, 1)
        if epoch == 5:
            model.backbone.requires_grad_(True)


def head_was_new(model, train_epochs):
    model.requires_grad_(False)
    model.fc = nn.Linear(512, 10)
    opt = torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.1)
    model.fc.requires_grad_(True)
    train_epochs(model, opt, 1)
