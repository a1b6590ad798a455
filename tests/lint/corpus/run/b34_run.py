"""b34 mmdetection: _freeze_stages() freezes the stem and layer1, their BN stays in train.

Expect: FZ306
"""

import torch
from _load import bug, images, sgd_step
from torch import nn

m = bug("b34")


class Net(m.ResNet):
    def __init__(self):
        super().__init__(frozen_stages=1)
        self.fc = nn.Linear(128, 2)

    def forward(self, x):
        x = self.layer2(self.layer1(self.norm1(self.conv1(x))))
        return self.fc(x.mean((2, 3)))


net = Net()
net.train()
opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
for i in range(4):
    sgd_step(net, opt, images(i))
