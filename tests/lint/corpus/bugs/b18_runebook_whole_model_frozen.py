# Source: https://runebook.dev/en/docs/pytorch/generated/torch.nn.module/torch.nn.Module.requires_grad_
# "A common mistake": requires_grad_(False) on the whole model instead of the backbone;
# nothing is left to train.
import torch


def setup(model):
    model.requires_grad_(False)
    return torch.optim.Adam(model.parameters(), lr=1e-3)  # <- bug
