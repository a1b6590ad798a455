"""b17: layer4 is unfrozen after the optimizer was built from the trainable parameters.

Expect: FZ303 (the unfreeze comes after the first training phase, past the
`--steps 3` window; within the window only `add_param_group` triggers a recheck, not a
`requires_grad` change, so run mode does not see the stale optimizer)
"""

import torch
from _load import bug
from torch import nn

m = bug("b17")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer3, self.layer4, self.fc = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.layer4(torch.relu(self.layer3(x)))))


x, y = torch.randn(16, 4), torch.randint(0, 10, (16,))


def train_epochs(model, optimizer, epochs):
    for _ in range(epochs):
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        optimizer.zero_grad()


m.finetune(Net(), train_epochs)
