# Control: linear probing (PyTorch transfer-learning tutorial, "ConvNet as fixed
# feature extractor"): freeze everything, then a new head, optimizer over the head.
import torch
import torchvision
from torch import nn


def build():
    model = torchvision.models.resnet18(weights=None)
    for param in model.parameters():
        param.requires_grad = False
    model.fc = nn.Linear(model.fc.in_features, 10)
    optimizer = torch.optim.SGD(model.fc.parameters(), lr=1e-3, momentum=0.9)
    return model, optimizer
