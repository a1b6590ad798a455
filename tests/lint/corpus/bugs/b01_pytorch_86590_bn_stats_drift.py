# Source: https://github.com/pytorch/pytorch/issues/86590
# Every parameter of the feature extractor is frozen, then net.train() is called for
# training: BatchNorm running_mean/var keep changing, the "frozen" network drifts.
import torch
import torchvision


def train(loader):
    net = torchvision.models.resnet50(weights=None)
    for param in net.parameters():
        param.requires_grad = False
    net.fc = torch.nn.Linear(2048, 10)
    opt = torch.optim.SGD(net.fc.parameters(), lr=0.01)
    net.train()  # <- bug
    for x, y in loader:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
