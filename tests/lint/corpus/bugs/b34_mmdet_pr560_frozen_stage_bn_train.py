# Source: https://github.com/open-mmlab/mmdetection/pull/560
# _freeze_stages() sets requires_grad=False for the stem and the first stages, but their
# BatchNorm layers stay in train mode unless norm_eval is set, so the "frozen" stages
# keep updating running statistics (the fix also calls eval() on them).
# Static: not reported (the file mentions norm_eval, which keeps FZ214 silent, and the
# model's train() is called elsewhere).
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class ResNet(nn.Module):
    def __init__(self, frozen_stages=1, norm_eval=False):
        super().__init__()
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.norm1 = nn.BatchNorm2d(64)
        self.layer1 = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64))
        self.layer2 = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128))
        self._freeze_stages()

    def _freeze_stages(self):
        if self.frozen_stages >= 0:
            for m in [self.conv1, self.norm1]:
                for param in m.parameters():
                    param.requires_grad = False
        for i in range(1, self.frozen_stages + 1):
            m = getattr(self, f"layer{i}")
            for param in m.parameters():
                param.requires_grad = False  # <- bug

    def train(self, mode=True):
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
