"""FZ213 manual-update-ignores-requires-grad. Lines with an ``expect`` comment must be
reported there."""

import torch


def flagged_decay(model, lr, wd):
    model.backbone.requires_grad_(False)
    with torch.no_grad():
        for p in model.parameters():  # expect: FZ213:9
            p.mul_(1 - lr * wd)


def sgd_step(model, lr):
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.data -= lr * p.grad


def flagged_helper(model):
    for p in model.encoder.parameters():
        p.requires_grad = False
    sgd_step(model, 0.1)  # expect: FZ213


# ---- correct twins: nothing below may be reported


def twin_guarded(model, lr, wd):
    model.backbone.requires_grad_(False)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.mul_(1 - lr * wd)
        for p in model.parameters():
            if p.grad is None:
                continue
            p.add_(p.grad, alpha=-lr)


def twin_ema(teacher, student, m=0.999):
    teacher.requires_grad_(False)
    with torch.no_grad():
        for t, s in zip(teacher.parameters(), student.parameters()):
            t.mul_(m).add_(s.detach(), alpha=1 - m)


def twin_init(model):
    model.backbone.requires_grad_(False)
    for p in model.head.parameters():
        p.data.mul_(0.1)


def twin_no_freeze(model, lr):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(p.grad, alpha=-lr)


def twin_dtype_cast(model):
    # peft's prepare_model_for_kbit_training: freeze, then cast parameters to fp32
    for _name, param in model.named_parameters():
        param.requires_grad = False
    for param in model.parameters():
        if param.dtype == torch.float16:
            param.data = param.data.to(torch.float32)
    for param in model.parameters():
        param.data = param.to(dtype=torch.float32)
