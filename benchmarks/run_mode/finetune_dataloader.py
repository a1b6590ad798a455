"""Fine-tune a classifier head: argparse, DataLoader with workers, SGD with momentum.

--bug: the backbone is frozen after SGD(momentum, weight_decay) was built from all
parameters, and zero_grad keeps zero gradients: weight decay moves it (FZ302, FZ311).
"""

import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bug", action="store_true")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU())
    model = nn.Sequential(backbone, nn.Linear(32, 4))
    data = TensorDataset(torch.randn(64, 16), torch.randint(0, 4, (64,)))
    loader = DataLoader(data, batch_size=8, shuffle=True, num_workers=args.workers)
    if args.bug:
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
        nn.functional.cross_entropy(model(data.tensors[0]), data.tensors[1]).backward()
        backbone.requires_grad_(False)
    else:
        backbone.requires_grad_(False)
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
    for _ in range(args.epochs):
        for x, y in loader:
            opt.zero_grad(set_to_none=False)
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()


if __name__ == "__main__":
    main()
