"""Trains only in worker processes; the main process never calls optimizer.step().

argv[1]: how the workers start -- "spawn" (torch.multiprocessing.spawn), "fork"
(multiprocessing with the fork start method) or "subprocess" (``python -c`` children,
as a torchrun-style launcher starts them). argv[2]: "leaky" passes frozen parameters
to the optimizer, "correct" does not.
"""

import subprocess
import sys

import torch
import torch.multiprocessing as mp
from torch import nn


def worker(rank: int, kind: str) -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    for p in model[0].parameters():
        p.requires_grad_(False)
    params = model.parameters() if kind == "leaky" else model[1].parameters()
    opt = torch.optim.SGD(params, lr=0.1)
    for _ in range(50):
        model(torch.randn(3, 4)).sum().backward()
        opt.step()
        opt.zero_grad()
    print(f"worker {rank} trained to the end", flush=True)


if __name__ == "__main__":
    how, kind = sys.argv[1], sys.argv[2]
    if how == "spawn":
        mp.spawn(worker, args=(kind,), nprocs=2, join=True)
    elif how == "fork":
        ctx = mp.get_context("fork")
        procs = [ctx.Process(target=worker, args=(r, kind)) for r in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    else:
        code = f"import sys; sys.path.insert(0, {str(__file__.rsplit('/', 1)[0])!r}); "
        code += f"import spawn_workers; spawn_workers.worker(0, {kind!r})"
        subprocess.run([sys.executable, "-c", code], check=True)
