"""FZ209 twin: ``models`` here is not torchvision's, so nothing may be reported."""

from mylib import models
from pretrainedmodels import resnet18


def build():
    return models.resnet18(pretrained=True), resnet18(pretrained="imagenet")
