"""FZ208 across functions: eval() of frozen norm layers in one function, train() later."""

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.freeze_bn()

    def freeze_bn(self):
        for m in self.backbone.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()


def train_one_epoch(model, loader, opt):
    model.train()
    for x, y in loader:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def flagged(backbone, loader):
    net = Net(backbone)
    net.train()  # expect: FZ208
    return torch.optim.SGD(net.parameters(), lr=0.1)


def flagged_stats_only(model, loader, opt):
    model.backbone.eval()  # statistics-only freeze: affine stays trainable
    train_one_epoch(model, loader, opt)  # expect: FZ208


class Strategy:
    """The train() that undoes the eval sits in a method of the same object: reported on
    that line (once, however many calls run it), not at the calls."""

    def __init__(self, model):
        self.model = model

    def adapt(self):
        for m in self.model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()

    def periodic_eval(self):
        self.model.eval()
        self.model.train()  # expect: FZ208

    def fit(self, epochs):
        self.model.train()
        self.adapt()
        for _ in range(epochs):
            self.periodic_eval()
        self.periodic_eval()


# ---- correct twins: nothing below may be reported


class RestoringStrategy(Strategy):
    def periodic_eval(self):
        self.model.eval()
        self.model.train()
        self.adapt()

    def fit(self, epochs):
        self.model.train()
        self.adapt()
        for _ in range(epochs):
            self.periodic_eval()


class SafeNet(Net):
    def train(self, mode=True):
        super().train(mode)
        self.freeze_bn()
        return self


def twin_override(backbone):
    net = SafeNet(backbone)
    net.train()


def train_keep_eval(model, loader, opt):
    model.train()
    model.backbone.eval()
    for x, y in loader:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def twin_helper_reapplies(model, loader, opt):
    model.backbone.eval()
    train_keep_eval(model, loader, opt)
