"""FZ201 optimizer-before-freeze. Lines with an ``expect`` comment must be reported there."""

import torch
from torch import optim
from torch.optim import SGD

import freezedsl


def flagged_attr_call(model):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)  # expect: FZ201:11
    model.backbone.requires_grad_(False)
    return opt


def flagged_loop(model):
    opt = SGD(params=model.parameters(), lr=0.1)  # expect: FZ201
    for p in model.backbone.parameters():
        p.requires_grad = False
    return opt


def flagged_freezedsl(model, rules):
    opt = optim.Adam([{"params": model.parameters(), "lr": 1e-3}])  # expect: FZ201
    freezedsl.apply(model, rules)
    return opt


def flagged_nested_block(model, cfg):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)  # expect: FZ201
    if cfg.freeze:
        model.fc.weight.requires_grad = False
    return opt


def flagged_filter_too_early(model):
    # The filter runs when the optimizer is built, before anything is frozen.
    opt = SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.1)  # expect: FZ201
    model.backbone.requires_grad_(False)
    model.fc.requires_grad_(True)
    return opt


model = torch.nn.Linear(2, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)  # expect: FZ201:7
for name, param in model.named_parameters():
    if not name.startswith("fc."):
        param.requires_grad = False


# ---- correct twins: nothing below may be reported


def twin_freeze_first(model):
    model.backbone.requires_grad_(False)
    return torch.optim.AdamW((p for p in model.parameters() if p.requires_grad), lr=1e-4)


def twin_other_model(model, teacher):
    opt = torch.optim.AdamW(model.parameters())
    teacher.requires_grad_(False)
    return opt


def twin_gan_toggle(net_g, net_d, loader, step_g, step_d):
    opt_d = torch.optim.Adam(net_d.parameters())
    for batch in loader:
        for p in net_d.parameters():
            p.requires_grad = False
        step_g(batch)
        for p in net_d.parameters():
            p.requires_grad = True
        step_d(batch, opt_d)


def twin_rebound(build):
    model = build()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model = build()
    model.requires_grad_(False)
    return opt


def twin_exclusive_branches(model, cfg):
    if cfg.finetune:
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
    else:
        model.backbone.requires_grad_(False)
        opt = torch.optim.SGD(model.fc.parameters(), lr=0.1)
    return opt


def twin_other_scope(model):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def later():
        model.requires_grad_(False)

    return opt, later


def twin_unfreeze_only(model):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.requires_grad_(True)
    return opt


def twin_warmup_toggle(model, epochs, warmup, train):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(epochs):
        if epoch < warmup:
            model.backbone.requires_grad_(False)
        else:
            model.backbone.requires_grad_(True)
        train(model, opt)


def twin_unfreeze_later(model, train):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.backbone.requires_grad_(False)
    train(model, opt, epochs=5)
    model.backbone.requires_grad_(True)
    train(model, opt, epochs=20)


def twin_no_op_attribute(model):
    # `model.outc` is no parameter: the assignment freezes nothing, so nothing is ordered
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.outc.requires_grad = False
    return opt


def flagged_grads_dropped_state_kept(model, steps, train_step):
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)  # expect: FZ201
    for step in range(steps):
        if step == 1:
            model.encoder.requires_grad_(False)
            for p in model.encoder.parameters():
                p.grad = None  # Adam's moments still move them
        train_step(model, opt)


def twin_mid_training_freeze_drops_state(model, steps, train_step):
    # a deliberate mid-training freeze that removes the frozen tensors' optimizer state
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(steps):
        if step == 1:
            model.encoder.requires_grad_(False)
            for p in model.encoder.parameters():
                p.grad = None
                opt.state.pop(p, None)
        train_step(model, opt)
