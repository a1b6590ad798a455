# Source: https://github.com/pgniewko/gt-pyg/issues/112
# freeze() puts frozen BatchNorm in eval mode once; the next model.train() of every
# epoch puts it back in train mode and the running statistics drift.
import torch
from torch import nn


class GraphTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8))
        self.head = nn.Linear(8, 1)

    def freeze(self):
        for param in self.encoder.parameters():
            param.requires_grad = False
        for m in self.encoder.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.eval()


def fit(loader, epochs):
    model = GraphTransformer()
    model.freeze()
    opt = torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()))
    for _ in range(epochs):
        model.train()  # <- bug
        for x, y in loader:
            opt.zero_grad()
            torch.nn.functional.mse_loss(model.head(model.encoder(x)), y).backward()
            opt.step()
