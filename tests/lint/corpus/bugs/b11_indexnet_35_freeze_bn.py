# Source: https://github.com/poppinace/indexnet_matting/issues/35
# freeze_bn() puts BatchNorm layers in eval mode when the net is built, but train()
# calls net.train() and nothing re-applies it: BN trains after all.
from torch import nn


class HLMobileNetV2(nn.Module):
    def __init__(self, freeze_bn=True):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(4, 32, 3), nn.BatchNorm2d(32))
        if freeze_bn:
            self.freeze_bn()

    def freeze_bn(self):
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()


def main(loader, train_one_epoch):
    net = HLMobileNetV2(freeze_bn=True)
    net.train()  # <- bug
    train_one_epoch(net, loader)
