"""b04 fairseq: Adam is built from every parameter, then fc1/fc2 are frozen.

Expect: FZ301
"""

import torch
from _load import bug
from torch import nn

m = bug("b04")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


model = Net()
opt = m.main(model)
x, y = torch.randn(16, 4), torch.randn(16, 2)
for _ in range(4):
    nn.functional.mse_loss(model(x), y).backward()
    opt.step()
    opt.zero_grad()
