# Source: https://e-com-net.com/article/1304057678703661056.htm
# A transfer-learning recipe (quoted from a book) freezes VGG16's feature layers with
# `param.requeires_grad=False`: a misspelt attribute that freezes nothing.
import torchvision
from torch import optim


def build(lr):
    vgg = torchvision.models.vgg16(weights=None)
    for param in vgg.features.parameters():
        param.requeires_grad = False  # <- bug
    return vgg, optim.SGD(vgg.classifier.parameters(), lr=lr)
