"""FZ210 unfreeze-all-after-freeze. Lines with an ``expect`` comment must be reported there."""

import torch


def flagged(model):
    for p in model.backbone.parameters():
        p.requires_grad = False
    # make sure the head trains
    for p in model.parameters():  # expect: FZ210:5
        p.requires_grad = True


def flagged_method(model):
    model.encoder.requires_grad_(False)
    model.requires_grad_(True)  # expect: FZ210:5


# ---- correct twins: nothing below may be reported


def twin_head_only(model):
    for p in model.backbone.parameters():
        p.requires_grad = False
    for p in model.head.parameters():
        p.requires_grad = True


def twin_two_phases(model, train):
    model.backbone.requires_grad_(False)
    train(model, epochs=5)  # the frozen phase is used before everything is unfrozen
    model.requires_grad_(True)
    train(model, epochs=10)


def twin_gradual(model, epoch):
    model.backbone.requires_grad_(False)
    if epoch >= 5:
        model.requires_grad_(True)
    return torch.optim.SGD(model.parameters(), lr=0.1)


def twin_unfreeze_then_freeze(model):
    model.requires_grad_(True)
    model.backbone.requires_grad_(False)
