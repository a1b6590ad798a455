"""b36 torch-ac: the gradient norm reads p.grad.data of every parameter, frozen ones too.

Expect: none (the run crashes with AttributeError in update(), which lint shows; the
findings on the crash name the frozen tensors in Adam, not the .grad read that fails)
"""

import torch
from _load import bug
from torch import nn

m = bug("b36")
acmodel = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
acmodel[0].requires_grad_(False)
algo = m.PPOAlgo(acmodel, 0.5, 1e-3)
x = torch.randn(16, 4)
for _ in range(3):
    algo.update(acmodel(x).pow(2).mean())
