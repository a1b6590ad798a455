# Control: frozen BatchNorm re-applied after every train(), mmdet-style override.
from torch import nn


class ResNetBackbone(nn.Module):
    def __init__(self, norm_eval=True):
        super().__init__()
        self.norm_eval = norm_eval
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7), nn.BatchNorm2d(64))
        self._freeze_stages()

    def _freeze_stages(self):
        self.stem.eval()
        for param in self.stem.parameters():
            param.requires_grad = False

    def train(self, mode=True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self


def run(loader, step):
    backbone = ResNetBackbone()
    backbone.train()
    for batch in loader:
        step(backbone, batch)


def run_plain(model, loader, step):
    for _epoch in range(3):
        model.train()
        model.backbone.eval()  # re-applied after every train()
        for batch in loader:
            step(model, batch)
