"""FZ215 param-group-loop-ignores-missing-grad. Lines with an ``expect`` comment must be
reported there."""

import torch


class DecayFirst(torch.optim.Optimizer):
    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                p.mul_(1 - group["lr"] * group["weight_decay"])  # expect: FZ215:17
                if p.grad is None:
                    continue
                p.add_(p.grad, alpha=-group["lr"])


class ReadsGrad(torch.optim.Optimizer):
    def step(self, closure=None):
        for i, group in enumerate(self.param_groups):
            for p in group["params"]:
                state = self.state[p]
                state["g"] = p.grad.data.clone()  # expect: FZ215:30


class Wrapper:
    def __init__(self, opt, wd, lr):
        self.opt, self.wd, self.lr = opt, wd, lr

    def step(self):
        for lr, wd, pg in zip(self.lr, self.wd, self.opt.param_groups):
            for p in pg["params"]:
                p.data.mul_(1 - wd * lr)  # expect: FZ215:17
        self.opt.step()

    def clip_step(self, grad_quant):
        for p in self.opt.param_groups[0]["params"]:
            g = p.grad
            g.data = grad_quant(g.data)  # expect: FZ215:13


# ---- correct twins: nothing below may be reported


class CheckFirst(torch.optim.Optimizer):
    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(p.grad, alpha=-group["lr"])


class AliasChecked(torch.optim.Optimizer):
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                p.add_(grad, alpha=-group["lr"])


class RequiresGradChecked(torch.optim.Optimizer):
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if not p.requires_grad:
                    continue
                p.data.mul_(0.99)


class Collects(torch.optim.Optimizer):
    def step(self):
        for group in self.param_groups:
            grads = [p.grad for p in group["params"] if p.grad is not None]
            for p in group["params"]:
                if p.grad is not None:
                    p.grad.data.clamp_(-1, 1)
            torch._foreach_add_(grads, 1.0)


def set_lr(opt, lr):
    for group in opt.param_groups:
        group["lr"] = lr
        for p in group["params"]:
            opt.state[p].clear()


def log_grads(opt, log):
    # not a step: a logging helper reading every group (left to run mode)
    for group in opt.param_groups:
        for p in group["params"]:
            log(p.grad.norm())


def test_clip(opt):
    for group in opt.param_groups:
        for p in group["params"]:
            p.grad.clamp_(0, 1)


def init_groups(groups):
    # a list of group specs that is no optimizer's param_groups
    for group in groups:
        for p in group["params"]:
            p.data.mul_(0.5)
