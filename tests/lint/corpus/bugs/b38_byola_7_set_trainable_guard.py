# Source: https://github.com/nttcslab/byol-a/issues/7
# set_trainable() only changes parameters that still require grad, so once the network
# was frozen, set_trainable(True) can never make it trainable again.
# Static: FZ216.
from torch import nn


class AudioNTT2020(nn.Module):
    def __init__(self, d=512):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 64, 3, padding=1), nn.BatchNorm2d(64))
        self.fc = nn.Linear(64, d)

    def set_trainable(self, trainable=False):
        for p in self.parameters():
            if p.requires_grad:
                p.requires_grad = trainable  # <- bug


def finetune(model, train_head, train_all):
    model.set_trainable(False)
    train_head(model)
    model.set_trainable(True)
    train_all(model)
