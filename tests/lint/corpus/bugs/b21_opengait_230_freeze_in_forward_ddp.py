# Source: https://github.com/ShiqiYu/OpenGait/issues/230
# A branch is frozen inside forward() after some iterations while the model runs under
# DDP: "Expected to have finished reduction in the prior iteration".
# Static: not reported (the DDP wrap happens in the framework, not in this file).
from torch import nn


class BigGait(nn.Module):
    def __init__(self):
        super().__init__()
        self.netA = nn.Linear(8, 8)
        self.iteration = 0

    def forward(self, inputs):
        if self.training and self.iteration >= 60000:
            self.netA.eval()
            self.netA.requires_grad_(False)  # <- bug
        return self.netA(inputs)
