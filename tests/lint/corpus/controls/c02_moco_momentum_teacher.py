# Control: MoCo-style momentum encoder (facebookresearch/moco, moco/builder.py): the key
# encoder is frozen and updated outside the optimizer from the query encoder.
import torch
from torch import nn


class MoCo(nn.Module):
    def __init__(self, base_encoder, m=0.999):
        super().__init__()
        self.m = m
        self.encoder_q = base_encoder()
        self.encoder_k = base_encoder()
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            param_k.data.copy_(param_q.data)
            param_k.requires_grad = False

    @torch.no_grad()
    def _momentum_update_key_encoder(self):
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            param_k.data = param_k.data * self.m + param_q.data * (1.0 - self.m)


def build(base_encoder):
    model = MoCo(base_encoder)
    return torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
