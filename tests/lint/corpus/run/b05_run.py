"""b05 S-Prompts: all but the task's prompt and classifier frozen, SGD over everything.

Expect: FZ301
"""

import torch
from _load import bug
from torch import nn

m = bug("b05")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(4, 8)
        self.prompt_pool = nn.ModuleList([nn.Linear(8, 8) for _ in range(2)])
        self.classifier_pool = nn.ModuleList([nn.Linear(8, 2) for _ in range(2)])

    def forward(self, x):
        return self.classifier_pool[1](self.prompt_pool[1](self.backbone(x)))


learner = m.Learner()
learner._network = Net()
opt = learner.train_task(1)
x, y = torch.randn(16, 4), torch.randn(16, 2)
for _ in range(4):
    nn.functional.mse_loss(learner._network(x), y).backward()
    opt.step()
    opt.zero_grad()
