# Control: names read for weight init, logging and checks (no training decision).
from torch import nn


def init_weights(model):
    for name, p in model.named_parameters():
        if "layer1" in name and p.dim() > 1:
            nn.init.kaiming_normal_(p)
        if name.startswith("blocks.1"):
            print(name, p.shape)


def test_frozen(model):
    for name, p in model.named_parameters():
        if "layer1" in name:
            assert not p.requires_grad
