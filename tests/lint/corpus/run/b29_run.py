"""b29 Grid-Anchor: test() calls net.eval() and training never calls net.train() again.

Expect: none (steps taken with the whole model in eval mode: no runtime rule watches
the mode a step runs in; nothing was frozen on purpose)
"""

import torch
from _load import BnNet, bug, images, sgd_step

m = bug("b29")
net = BnNet().train()
opt = torch.optim.SGD(net.parameters(), lr=0.1)
loader = [images(i) for i in range(2)]
m.train(net, loader, opt, 3, lambda n: m.test(n, loader, lambda *_: 0.0), sgd_step)
