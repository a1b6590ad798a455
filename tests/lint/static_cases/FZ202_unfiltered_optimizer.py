"""FZ202 unfiltered-optimizer. Lines with an ``expect`` comment must be reported there."""

import torch
from torch import optim


def flagged_loop_then_opt(model):
    for p in model.backbone.parameters():
        p.requires_grad = False
    return torch.optim.SGD(model.parameters(), lr=0.01)  # expect: FZ202:12


def flagged_named(model):
    for name, param in model.named_parameters():
        if not name.startswith("fc."):
            param.requires_grad = False
    opt = optim.AdamW(list(model.parameters()), lr=1e-3)  # expect: FZ202
    return opt


class Trainer:
    def setup(self):
        self.model.encoder.requires_grad_(False)
        self.opt = torch.optim.Adam(self.model.parameters())  # expect: FZ202


def flagged_param_groups(model):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.requires_grad_(False)
    return torch.optim.SGD(  # expect: FZ202
        [{"params": model.parameters(), "lr": 0.1}],
        momentum=0.9,
    )


# ---- correct twins: nothing below may be reported


def twin_filter(model):
    model.backbone.requires_grad_(False)
    return torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.01)


def twin_comprehension(model):
    model.backbone.requires_grad_(False)
    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)


def twin_head_only(model):
    model.requires_grad_(False)
    model.fc.requires_grad_(True)
    return torch.optim.SGD(model.fc.parameters(), lr=0.01)


def twin_gradual_unfreeze(model, epochs, train):
    model.backbone.requires_grad_(False)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for epoch in range(epochs):
        if epoch == 5:
            model.backbone.layer4.requires_grad_(True)
        train(model, opt)


def twin_undone_before(model):
    model.requires_grad_(False)
    model.requires_grad_(True)
    return torch.optim.SGD(model.parameters(), lr=0.01)


def twin_rebuilt_model(model, build):
    model.requires_grad_(False)
    model = build()
    return torch.optim.SGD(model.parameters(), lr=0.01)


def flagged_after_to(model, device):
    model.backbone.requires_grad_(False)
    model = model.to(device)
    return torch.optim.SGD(model.parameters(), lr=0.01)  # expect: FZ202
