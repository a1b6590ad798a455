# Source: https://github.com/oval-group/dfw/pull/5
# The DFW optimizer reads param.grad.data for every parameter; with a frozen embedding
# the step crashes ('NoneType' object has no attribute 'data').
# Static: FZ215.
import torch


class DFW(torch.optim.Optimizer):
    @torch.no_grad()
    def step(self, closure):
        w_dict = {}
        for group in self.param_groups:
            for param in group["params"]:
                w_dict[param] = {"delta_t": param.grad.data}  # <- bug
        return closure()
