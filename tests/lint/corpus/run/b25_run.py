"""b25 accelerate: part of the model is frozen, then model.train() before the loop.

Expect: FZ306
"""

import torch
from _load import BnNet, bug, sgd_step
from torch.utils.data import DataLoader, TensorDataset

m = bug("b25")
model = BnNet()
opt = torch.optim.SGD([p for n, p in model.named_parameters() if n.startswith("fc")], lr=0.1)
data = TensorDataset(torch.randn(32, 3, 8, 8), torch.randint(0, 2, (32,)))
m.main(model, opt, DataLoader(data, batch_size=8), sgd_step)
