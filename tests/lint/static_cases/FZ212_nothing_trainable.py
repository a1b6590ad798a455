"""FZ212 nothing-trainable. Lines with an ``expect`` comment must be reported there."""

import itertools

import torch
from torch import nn, optim


def flagged(model):
    for p in model.parameters():
        p.requires_grad = False
    return optim.SGD(filter(lambda p: p.requires_grad, model.parameters()))  # expect: FZ212:12


def flagged_unfiltered(model):
    model.requires_grad_(False)
    return torch.optim.Adam(model.parameters(), lr=1e-3)  # expect: FZ212


# ---- correct twins: nothing below may be reported


def twin_new_head(model):
    for p in model.parameters():
        p.requires_grad = False
    model.fc = nn.Linear(512, 10)
    return torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.1)


def twin_unfreeze_head(model):
    model.requires_grad_(False)
    model.fc.requires_grad_(True)
    return torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.1)


def twin_other_params(model, head):
    model.requires_grad_(False)
    params = itertools.chain(model.parameters(), head.parameters())
    return torch.optim.SGD(filter(lambda p: p.requires_grad, params), lr=0.1)


def twin_unknown_helper(model, add_adapters):
    model.requires_grad_(False)
    add_adapters(model)  # may add trainable parameters
    return torch.optim.AdamW(filter(lambda p: p.requires_grad, model.parameters()))
