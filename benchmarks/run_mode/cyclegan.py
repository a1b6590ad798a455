"""CycleGAN-style alternation: the discriminators are frozen while the generators step.

Correct code (no --bug variant): the frozen discriminator is in its own optimizer,
which steps only after it is unfrozen again.
"""

import itertools

import torch
from torch import nn


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad = flag


torch.manual_seed(0)
g_ab, g_ba = nn.Linear(6, 6), nn.Linear(6, 6)
d_a, d_b = nn.Sequential(nn.Linear(6, 4), nn.LeakyReLU(0.2), nn.Linear(4, 1)), nn.Sequential(nn.Linear(6, 4), nn.LeakyReLU(0.2), nn.Linear(4, 1))
opt_g = torch.optim.Adam(itertools.chain(g_ab.parameters(), g_ba.parameters()), lr=2e-4, betas=(0.5, 0.999))
opt_d = torch.optim.Adam(itertools.chain(d_a.parameters(), d_b.parameters()), lr=2e-4, betas=(0.5, 0.999))
for _ in range(4):
    a, b = torch.randn(8, 6), torch.randn(8, 6)
    set_requires_grad([d_a, d_b], False)
    opt_g.zero_grad()
    fake_b, fake_a = g_ab(a), g_ba(b)
    loss_g = (d_b(fake_b) - 1).pow(2).mean() + (d_a(fake_a) - 1).pow(2).mean()
    loss_g = loss_g + (g_ba(fake_b) - a).abs().mean() + (g_ab(fake_a) - b).abs().mean()
    loss_g.backward()
    opt_g.step()
    set_requires_grad([d_a, d_b], True)
    opt_d.zero_grad()
    loss_d = d_b(fake_b.detach()).pow(2).mean() + (d_b(b) - 1).pow(2).mean()
    loss_d = loss_d + d_a(fake_a.detach()).pow(2).mean() + (d_a(a) - 1).pow(2).mean()
    loss_d.backward()
    opt_d.step()
