# Control: DDP fine-tuning with the backbone frozen before wrapping.
import torch
from torch.nn.parallel import DistributedDataParallel as DDP


def main(model, rank):
    for p in model.backbone.parameters():
        p.requires_grad = False
    model = DDP(model.to(rank), device_ids=[rank])
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.05
    )
    return model, optimizer
