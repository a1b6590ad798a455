# Source: https://github.com/jfzhang95/pytorch-deeplab-xception/issues/140
# The model freezes BN in __init__; the trainer calls model.train() every epoch, which
# undoes it.
from torch import nn


class DeepLab(nn.Module):
    def __init__(self, freeze_bn=False):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 64, 3), nn.BatchNorm2d(64))
        if freeze_bn:
            self.freeze_bn()

    def freeze_bn(self):
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()


def training(loader, epochs, step):
    model = DeepLab(freeze_bn=True)
    for _ in range(epochs):
        model.train()  # <- bug
        for batch in loader:
            step(model, batch)
