"""FZ203 head-frozen-by-later-loop. Lines with an ``expect`` comment must be reported there."""

from torch import nn
from torch import nn as tnn


def flagged_fc(model):
    model.fc = nn.Linear(model.fc.in_features, 10)
    for p in model.parameters():  # expect: FZ203:5
        p.requires_grad = False
    return model


def flagged_classifier_index(model):
    model.classifier[-1] = tnn.Linear(4096, 10)
    for param in model.parameters():  # expect: FZ203
        param.requires_grad_(False)


def flagged_named_parameters(model):
    model.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(768, 10))
    for _name, param in model.named_parameters():  # expect: FZ203
        param.requires_grad = False


def flagged_requires_grad_(model):
    model.head = nn.Linear(768, 10)
    model.requires_grad_(False)  # expect: FZ203:5


def flagged_comprehension(net, MyHead):
    net.classifier = MyHead(512, 10)
    [p.requires_grad_(False) for p in net.parameters()]  # expect: FZ203


class Net(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.classifier = nn.Linear(512, 10)
        for p in self.parameters():  # expect: FZ203:9
            p.requires_grad = False


# ---- correct twins: nothing below may be reported


def twin_freeze_then_head(model):
    for p in model.parameters():
        p.requires_grad = False
    model.fc = nn.Linear(model.fc.in_features, 10)


def twin_unfreeze_head(model):
    model.fc = nn.Linear(512, 10)
    for p in model.parameters():
        p.requires_grad = False
    for p in model.fc.parameters():
        p.requires_grad = True


def twin_unfreeze_head_call(model):
    model.classifier[-1] = nn.Linear(4096, 10)
    model.requires_grad_(False)
    model.classifier[-1].requires_grad_(True)


def twin_conditional_loop(model):
    model.fc = nn.Linear(512, 10)
    for name, p in model.named_parameters():
        if not name.startswith("fc."):
            p.requires_grad = False


def twin_paramless(model):
    model.fc = nn.Identity()
    for p in model.parameters():
        p.requires_grad = False


def twin_backbone_only(model):
    model.fc = nn.Linear(512, 10)
    for p in model.backbone.parameters():
        p.requires_grad = False


def twin_unfreeze_via_modules(model):
    model.fc = nn.Linear(512, 10)
    model.requires_grad_(False)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            m.requires_grad_(True)


def twin_not_a_head(model, Config, cfg):
    model.config = Config(cfg)
    model.requires_grad_(False)


def twin_wrapped_old_head(model, LoRALinear):
    model.fc = LoRALinear(model.fc)
    model.requires_grad_(False)


class PerceptualLoss(nn.Module):
    # a frozen feature network by design: every parameter of self is meant to be frozen
    def __init__(self, features):
        super().__init__()
        self.slice1 = nn.Sequential()
        self.conv = nn.Conv2d(3, 3, 3)
        for i in range(4):
            self.slice1.add_module(str(i), features[i])
        for p in self.parameters():
            p.requires_grad = False
