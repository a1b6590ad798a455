# Source: https://github.com/CSCYQJ/MICCAI23-ProtoContra-SFDA/issues/18
# `self.model.outc.requires_grad = False` sets a plain attribute on a module: the last
# layer is not frozen. (Model classes condensed into the same file.)
from torch import nn


class OutConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=1)


class UNet(nn.Module):
    def __init__(self, n_classes):
        super().__init__()
        self.inc = nn.Conv2d(3, 64, 3)
        self.outc = OutConv(64, n_classes)


class Trainer:
    def __init__(self):
        self.model = UNet(4)

    def adapt(self):
        self.model.outc.requires_grad = False  # <- bug
