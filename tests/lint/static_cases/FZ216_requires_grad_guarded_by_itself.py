"""FZ216 requires-grad-guarded-by-itself. Lines with an ``expect`` comment must be
reported there."""

from torch import nn


class Net(nn.Module):
    def set_trainable(self, trainable=False):
        for p in self.parameters():
            if p.requires_grad:
                p.requires_grad = trainable  # expect: FZ216:17


def unfreeze(model):
    for p in model.parameters():
        if p.requires_grad and p.ndim > 1:
            p.requires_grad_(True)  # expect: FZ216:13


def freeze(model, flag):
    for p in model.parameters():
        if not p.requires_grad:
            p.requires_grad_(flag)  # expect: FZ216:13


# ---- correct twins: nothing below may be reported


class Twin(nn.Module):
    def set_trainable(self, trainable=False):
        for p in self.parameters():
            p.requires_grad = trainable


def freeze_trainable(model, frozen):
    for p in model.parameters():
        if p.requires_grad:
            p.requires_grad = False
            frozen.append(p)


def unfreeze_frozen(model):
    for p in model.parameters():
        if not p.requires_grad:
            p.requires_grad_(True)


def other_guard(model, flag):
    for p in model.parameters():
        if p.ndim > 1:
            p.requires_grad = flag
