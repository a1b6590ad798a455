"""b31 ultralytics: layers frozen by name keep their BatchNorm in train mode.

Expect: FZ306
"""

import torch
from _load import BnNet, bug, images, sgd_step

m = bug("b31")
model = BnNet()


def train_epoch(model):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for i in range(2):
        sgd_step(model, opt, images(i))


m.setup_train(model, ["backbone."], train_epoch, 2)
