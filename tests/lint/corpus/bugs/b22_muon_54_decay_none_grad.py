# Source: https://github.com/KellerJordan/Muon/issues/54
# The optimizer applies weight decay before checking the gradient, so parameters
# without a gradient (frozen ones) decay anyway.
# Static: FZ215.
import torch


class Muon(torch.optim.Optimizer):
    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                p.mul_(1 - group["lr"] * group["weight_decay"])  # <- bug
                if p.grad is None:
                    continue
                p.add_(p.grad, alpha=-group["lr"])
