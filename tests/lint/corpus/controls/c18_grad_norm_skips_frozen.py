# Control: gradient norm and clipping over the parameters that have a gradient, with
# part of the model frozen (the fix of torch-ac PR 5).
import torch


def build(model, lr):
    for p in model.rnn.parameters():
        p.requires_grad = False
    return torch.optim.Adam((p for p in model.parameters() if p.requires_grad), lr)


def update(model, optimizer, loss, max_grad_norm):
    optimizer.zero_grad()
    loss.backward()
    grad_norm = sum(p.grad.norm(2).item() ** 2 for p in model.parameters() if p.grad is not None)
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], max_grad_norm)
    optimizer.step()
    return grad_norm**0.5
