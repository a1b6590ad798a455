"""FZ209 pretrained-deprecated. Lines with an ``expect`` comment must be reported there."""

import timm
import torchvision
import torchvision.models as tvm
from torchvision import models
from torchvision.models import resnet50
from torchvision.models.detection import fasterrcnn_resnet50_fpn as frcnn


def flagged(flag):
    a = torchvision.models.resnet18(pretrained=True)  # expect: FZ209:37
    b = models.vgg16_bn(pretrained=False)  # expect: FZ209
    c = resnet50(pretrained=flag)  # expect: FZ209
    d = frcnn(pretrained=True, pretrained_backbone=False)  # expect: FZ209:15, FZ209:32
    e = tvm.quantization.resnet18(pretrained=True, quantize=True)  # expect: FZ209
    return a, b, c, d, e


# ---- correct twins: nothing below may be reported


def twin(my_resnet18):
    a = torchvision.models.resnet18(weights=None)
    b = timm.create_model("resnet18", pretrained=True)
    c = timm.models.resnet18(pretrained=True)
    d = my_resnet18(pretrained=True)
    e = models.get_model("resnet18", weights="DEFAULT")
    return a, b, c, d, e
