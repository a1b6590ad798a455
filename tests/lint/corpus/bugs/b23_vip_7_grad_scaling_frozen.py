# Source: https://github.com/MichiganCOG/ViP/issues/7
# The pseudo-batch loop scales every parameter's gradient; with a frozen layer its grad
# is None and the loop crashes.
import torch


def train(model, loader, optimizer, pseudo_batch):
    for p in model.backbone.parameters():
        p.requires_grad = False
    for step, (x, y) in enumerate(loader):
        torch.nn.functional.cross_entropy(model(x), y).backward()
        if (step + 1) % pseudo_batch == 0:
            for param in model.parameters():  # <- bug
                param.grad.data.div_(pseudo_batch)
            optimizer.step()
            optimizer.zero_grad()
