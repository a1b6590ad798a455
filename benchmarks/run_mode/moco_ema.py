"""MoCo-style momentum encoder: the key encoder is frozen and follows the query encoder
by an exponential moving average under no_grad, outside optimizer.step(). Correct code.
"""

import copy

import torch
from torch import nn

torch.manual_seed(0)
encoder_q = nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 8))
encoder_k = copy.deepcopy(encoder_q)
for p in encoder_k.parameters():
    p.requires_grad = False
opt = torch.optim.SGD(encoder_q.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
for _ in range(5):
    x = torch.randn(16, 10)
    q = nn.functional.normalize(encoder_q(x + 0.1 * torch.randn_like(x)), dim=1)
    with torch.no_grad():
        for pk, pq in zip(encoder_k.parameters(), encoder_q.parameters()):
            pk.data.mul_(0.999).add_(pq.data, alpha=0.001)
        k = nn.functional.normalize(encoder_k(x), dim=1)
    loss = -(q * k).sum(dim=1).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
