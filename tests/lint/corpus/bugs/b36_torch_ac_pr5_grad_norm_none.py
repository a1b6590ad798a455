# Source: https://github.com/lcswillems/torch-ac/pull/5
# The gradient norm is summed over every parameter of the model; with part of the model
# frozen (requires_grad=False) their .grad is None and the update crashes.
# Static: not reported (the freeze happens in the user's subclass, not in this file,
# and reading .grad is no update).
import torch


class PPOAlgo:
    def __init__(self, acmodel, max_grad_norm, lr):
        self.acmodel = acmodel
        self.max_grad_norm = max_grad_norm
        self.optimizer = torch.optim.Adam(self.acmodel.parameters(), lr)

    def update(self, loss):
        self.optimizer.zero_grad()
        loss.backward()
        grad_norm = sum(p.grad.data.norm(2).item() ** 2 for p in self.acmodel.parameters()) ** 0.5  # <- bug
        torch.nn.utils.clip_grad_norm_(self.acmodel.parameters(), self.max_grad_norm)
        self.optimizer.step()
        return grad_norm
