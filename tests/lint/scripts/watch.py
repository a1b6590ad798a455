"""Training loops whose freezing changes while they run (``python watch.py MODE``).

* ``midfreeze``: freezes the first layer at step 2 but keeps it in SGD with momentum and
  zero gradients (``set_to_none=False``): momentum moves it at step 3. A bug.
* ``midfreeze-ok``: the same freeze with ``zero_grad(set_to_none=True)`` and its
  momentum dropped: it stays fixed. Correct.
* ``ok``: CycleGAN-style alternation (D frozen while G's optimizer steps), a MoCo-style
  EMA teacher updated under ``no_grad`` outside ``step()``, and gradual unfreezing with
  ``add_param_group`` at step 2. Correct: no finding.
"""

import sys

import torch
from torch import nn

mode = sys.argv[1]
torch.manual_seed(0)


def set_requires_grad(net: nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad = flag


if mode.startswith("midfreeze"):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(16, 4), torch.randn(16, 2)
    for step in range(6):
        if step == 2:
            model[0].requires_grad_(False)
            if mode == "midfreeze-ok":
                for p in model[0].parameters():
                    p.grad = None
                    opt.state.pop(p, None)
        opt.zero_grad(set_to_none=mode == "midfreeze-ok")
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    sys.exit(0)

G = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4))
D = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
teacher = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4))
teacher.load_state_dict(G.state_dict())
teacher.requires_grad_(False)
student = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
student[0].requires_grad_(False)  # unfrozen at step 2 (BaseFinetuning style)
opt_s = torch.optim.SGD(student[2].parameters(), lr=0.1, momentum=0.9)
for step in range(6):
    x = torch.randn(8, 4)
    set_requires_grad(D, False)
    opt_g.zero_grad()
    D(G(x)).mean().backward()
    opt_g.step()
    set_requires_grad(D, True)
    opt_d.zero_grad()
    (D(G(x).detach()).mean() - D(x).mean()).backward()
    opt_d.step()
    with torch.no_grad():  # EMA teacher, outside any step()
        for t, s in zip(teacher.parameters(), G.parameters()):
            t.data.mul_(0.99).add_(s.data, alpha=0.01)
    if step == 2:
        student[0].requires_grad_(True)
        opt_s.add_param_group({"params": list(student[0].parameters()), "lr": 0.01})
    opt_s.zero_grad()
    student(x).pow(2).mean().backward()
    opt_s.step()
