"""c05: frozen BatchNorm re-applied after every train() (an mmdet-style override, and
eval() of the frozen backbone after each model.train()).

Expect: clean
"""

import torch
from _load import BnNet, bug, images, sgd_step
from torch import nn

c = bug("c05")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = c.ResNetBackbone()
        self.fc = nn.Linear(64, 2)

    def forward(self, x):
        return self.fc(self.backbone.stem(x).mean((2, 3)))


net = Net()
opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
c.run([images(i) for i in range(2)], lambda model, batch: sgd_step(net, opt, batch))

model = BnNet()
model.backbone.requires_grad_(False)
opt2 = torch.optim.SGD(model.fc.parameters(), lr=0.1)
c.run_plain(model, [images(i) for i in range(2)], lambda m, batch: sgd_step(m, opt2, batch))
