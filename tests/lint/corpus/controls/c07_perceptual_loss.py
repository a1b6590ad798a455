# Control: a frozen VGG perceptual-loss network built in empty nn.Sequential slices.
import torchvision
from torch import nn


class VGGPerceptualLoss(nn.Module):
    def __init__(self, requires_grad=False):
        super().__init__()
        features = torchvision.models.vgg16(weights=None).features
        self.slice1 = nn.Sequential()
        self.slice2 = nn.Sequential()
        for x in range(4):
            self.slice1.add_module(str(x), features[x])
        for x in range(4, 9):
            self.slice2.add_module(str(x), features[x])
        if not requires_grad:
            for param in self.parameters():
                param.requires_grad = False

    def forward(self, x, y):
        return nn.functional.l1_loss(self.slice2(self.slice1(x)), self.slice2(self.slice1(y)))
