# Source: https://discuss.pytorch.org/t/why-there-is-still-a-small-change-in-frozen-layer-parameters/153740
# A layer is frozen by a helper after the optimizer exists; its stale gradients and
# momentum still move the "frozen" weights.
import torch


def set_freeze_by_layer_names(model, layer_names, freeze=True):
    for name, child in model.named_children():
        if name not in layer_names:
            continue
        for param in child.parameters():
            param.requires_grad = not freeze


def run(model, training):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)  # <- bug
    set_freeze_by_layer_names(model, ["fc1"], freeze=True)
    training(model, optimizer)
