"""FZ208 train-undoes-eval. Lines with an ``expect`` comment must be reported there."""

from torch import nn


def flagged_backbone(model, loader, epochs, train_one_epoch):
    model.backbone.requires_grad_(False)
    model.backbone.eval()
    for _epoch in range(epochs):
        model.train()  # expect: FZ208:9
        train_one_epoch(model, loader)


def flagged_bn_loop(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
            m.requires_grad_(False)
    model.train()  # expect: FZ208


def flagged_train_false(model):
    model.encoder.train(False)
    model.train(True)  # expect: FZ208


# ---- correct twins: nothing below may be reported


def twin_reapply(model, loader, epochs, train_one_epoch):
    model.backbone.eval()
    for _epoch in range(epochs):
        model.train()
        model.backbone.eval()
        train_one_epoch(model, loader)


def twin_whole_eval(model, validate):
    model.eval()
    validate(model)
    model.train()


def twin_ddp_module(model, validate):
    model.module.eval()
    validate(model)
    model.train()


def twin_unconditional_modules(model):
    for m in model.modules():
        m.eval()
    model.train()


def twin_sibling(model):
    model.backbone.eval()
    model.head.train()


class Net(nn.Module):
    def train(self, mode=True):
        super().train(mode)
        for m in self.backbone.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self


def twin_helper_reapplies(model, freeze_bn, set_bn_eval, epochs):
    model.backbone.eval()
    for _epoch in range(epochs):
        model.train()
        freeze_bn(model)
    model.train()
    model.apply(set_bn_eval)
