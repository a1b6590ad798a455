# Source: https://github.com/vballoli/nfnets-pytorch/issues/9
# The first seven children are frozen, then SGD_AGC gets every parameter; its clipping
# reads p.grad of frozen parameters and fails with 'NoneType' object has no attribute.
import torch
from nfnets import SGD_AGC


def setup(net):
    net.fc = torch.nn.Linear(net.fc.in_features, 13)
    ct = 0
    for _name, child in net.named_children():
        ct += 1  # noqa: SIM113 - as in the report
        if ct < 8:
            for _name2, params in child.named_parameters():
                params.requires_grad = False
    return SGD_AGC(net.parameters(), 1e-3, momentum=0.9)  # <- bug
