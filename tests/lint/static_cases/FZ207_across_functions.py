"""FZ207 across functions: a wrap in one function, the freeze in another (summaries)."""

import torch
from accelerate import Accelerator
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP


class BaseTrainer:
    def prepare(self):
        self.model = DDP(self.model)


class FinetuneTrainer(BaseTrainer):
    def prepare(self):
        super().prepare()
        self.model.module.backbone.requires_grad_(False)  # expect: FZ207


def wrap(model):
    return DDP(model)


def freeze_backbone(model):
    for p in model.backbone.parameters():
        p.requires_grad = False


def flagged_accelerate(model, opt):
    accelerator = Accelerator()
    model, opt = accelerator.prepare(model, opt)
    freeze_backbone(model)  # expect: FZ207


# ---- correct twins: nothing below may be reported


class GoodTrainer(BaseTrainer):
    def prepare(self):
        self.model.backbone.requires_grad_(False)
        super().prepare()


def twin_freeze_then_prepare(model, opt):
    accelerator = Accelerator()
    freeze_backbone(model)
    model, opt = accelerator.prepare(model, opt)
    return torch.compile(model), nn.Identity()
