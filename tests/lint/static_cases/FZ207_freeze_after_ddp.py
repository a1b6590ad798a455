"""FZ207 freeze-after-ddp. Lines with an ``expect`` comment must be reported there."""

import deepspeed
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp import fully_shard
from torch.nn.parallel import DistributedDataParallel as DDP

import freezedsl


def flagged_ddp(model, rank):
    model = DDP(model, device_ids=[rank])
    model.module.backbone.requires_grad_(False)  # expect: FZ207:5


def flagged_ddp_other_name(model, rank):
    ddp_model = DDP(model, device_ids=[rank])
    for p in model.encoder.parameters():
        p.requires_grad = False  # expect: FZ207:9
    return ddp_model


def flagged_fsdp(model):
    model = FSDP(model)
    freezedsl.apply(model, "freeze encoder")  # expect: FZ207


def flagged_fully_shard(model):
    fully_shard(model)
    model.encoder.requires_grad_(False)  # expect: FZ207


def flagged_accelerate(accelerator, model, opt):
    model, opt = accelerator.prepare(model, opt)
    model.requires_grad_(False)  # expect: FZ207


def flagged_accelerate_in_loop_setup(accelerator, model, opt, loader):
    model, opt, loader = accelerator.prepare(model, opt, loader)
    for p in model.module.encoder.parameters():
        p.requires_grad = False  # expect: FZ207:9


def flagged_deepspeed(args, model):
    engine, opt, _, _ = deepspeed.initialize(
        args=args, model=model, model_parameters=model.parameters()
    )
    model.encoder.requires_grad_(False)  # expect: FZ207
    return engine, opt


def flagged_deepspeed_engine(args, model):
    engine, opt, _, _ = deepspeed.initialize(args, model)
    engine.module.encoder.requires_grad_(False)  # expect: FZ207
    return opt


# ---- correct twins: nothing below may be reported


def twin_accelerate_freeze_first(accelerator, model, opt, loader):
    for p in model.encoder.parameters():
        p.requires_grad = False
    model, opt, loader = accelerator.prepare(model, opt, loader)
    return model, opt, loader


def twin_deepspeed_freeze_first(args, model):
    model.encoder.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    engine, opt, _, _ = deepspeed.initialize(args=args, model=model, model_parameters=params)
    return engine, opt


def twin_deepspeed_other_model(args, model, teacher):
    engine, *_ = deepspeed.initialize(args=args, model=model)
    teacher.requires_grad_(False)
    return engine


def twin_other_initialize(model, init):
    init.initialize(model)
    model.encoder.requires_grad_(False)
    return model


def twin_freeze_first(model, rank):
    model.backbone.requires_grad_(False)
    model = DDP(model, device_ids=[rank])
    return model


def twin_branches(model, rank, distributed):
    if distributed:
        model = DDP(model, device_ids=[rank])
    else:
        model.backbone.requires_grad_(False)
    return model


def twin_other_model(model, teacher, rank):
    model = DDP(model, device_ids=[rank])
    teacher.requires_grad_(False)
    return model


def flagged_rule_set(model, rank):
    rules = freezedsl.load("rules/resnet.frz")
    model = DDP(model, device_ids=[rank])
    rules.apply(model)  # expect: FZ207:5


def twin_rule_set_first(model, rank, init_weights):
    freezedsl.compile("freeze layer1").apply(model)
    model = DDP(model, device_ids=[rank])
    model.apply(init_weights)
    return model
