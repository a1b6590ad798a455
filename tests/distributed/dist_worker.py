"""One rank of the two-process DDP/FSDP proof in test_ddp.py (gloo on CPU).

    python dist_worker.py RANK WORLD_SIZE STORE_FILE OUT_DIR

Runs its scenarios in one process group, each on a freshly seeded ``small_cnn``, and
writes what it saw to ``OUT_DIR/rank{RANK}.pt`` for the test to compare across ranks:

``freeze_first``
    ``freezedsl.apply`` before ``DistributedDataParallel`` (the documented order),
    default ``find_unused_parameters=False``; trains on rank-specific data.
``rewrap``
    gradual unfreezing done right: a ``freezedsl.Schedule`` unfreezes a block at epoch
    1 and DDP is built again.
``unfreeze_after_wrap``
    the wrong order, one way: unfreeze after DDP was built. Training runs, but DDP
    never all-reduces those gradients, so the replicas drift apart.
``fsdp2`` / ``fsdp2_schedule``
    FSDP2 (``fully_shard``, per-parameter DTensor sharding): frozen and trainable
    parameters mixed inside one sharded module, and a ``freezedsl.Schedule`` that
    unfreezes a block after sharding (FSDP2 needs no re-wrapping for that).
``fsdp1``
    FSDP1 with ``use_orig_params=False`` refuses a unit of mixed requires_grad;
    ``use_orig_params=True`` accepts it, and so does ``use_orig_params=False`` with one
    unit per block (each unit all frozen or all trainable).
``freeze_after_wrap``
    the wrong order, the other way: freeze after DDP was built. The reducer waits for
    gradients that never come and the next iteration raises. Runs last, because it
    leaves that DDP instance broken.

Not collected by pytest (no ``test_`` prefix); test_ddp.py starts it as a subprocess.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

import freezedsl
from freezedsl.testing import small_cnn

BACKBONE_RULES = """
freeze features.0, features.1
freeze stats features.0, features.1
expect trainable features.3, classifier
"""
GRADUAL_RULES = "freeze features\nat epoch 1: unfreeze features.3"
STEPS = 4
TIMEOUT = timedelta(seconds=30)


def fresh_model() -> nn.Module:
    """The same initial weights on every rank (and in every scenario)."""
    torch.manual_seed(1234)
    return small_cnn(num_classes=10)


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def flags(model: nn.Module) -> dict[str, bool]:
    return {n: p.requires_grad for n, p in model.named_parameters()}


def train(ddp: nn.Module, params: list[nn.Parameter], rank: int, seed: int) -> None:
    """A few SGD steps on data that differs between ranks (so only all-reduce syncs them)."""
    optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(seed + 1000 * rank)
    loss_fn = nn.CrossEntropyLoss()
    ddp.train()
    for _ in range(STEPS):
        x = torch.randn(16, 1, 8, 8, generator=gen)
        y = torch.randint(0, 10, (16,), generator=gen)
        optimizer.zero_grad(set_to_none=True)
        loss_fn(ddp(x), y).backward()
        optimizer.step()


def ddp_tensor_count(ddp: DDP) -> int | None:
    """How many parameter tensors DDP registered with its reducer (private API, best effort)."""
    try:
        return int(ddp._get_ddp_logging_data().get("num_parameter_tensors", -1))
    except Exception:  # noqa: BLE001 - private API, only used as extra evidence
        return None


def freeze_first(rank: int) -> dict[str, object]:
    model = fresh_model()
    plan = freezedsl.apply(model, BACKBONE_RULES)  # BEFORE wrapping
    initial = snapshot(model)
    bn_before = {n: b.detach().clone() for n, b in model.named_buffers()}
    ddp = DDP(model)  # CPU module: no device_ids; find_unused_parameters=False (default)
    registered = ddp_tensor_count(ddp)
    train(ddp, [p for p in model.parameters() if p.requires_grad], rank, seed=1)
    return {
        "initial": initial,
        "final": snapshot(model),
        "flags": flags(model),
        "buffers_before": bn_before,
        "buffers_after": {n: b.detach().clone() for n, b in model.named_buffers()},
        "plan_trainable": sorted(plan.trainable),
        "plan_frozen": sorted(plan.frozen),
        "ddp_registered": registered,
        "trainable_tensors": sum(1 for p in model.parameters() if p.requires_grad),
    }


def rewrap(rank: int) -> dict[str, object]:
    """Gradual unfreezing with DDP, as docs/distributed.md shows it: a Schedule on the
    bare model, and a new DDP wrapper whenever a phase changes requires_grad."""
    model = fresh_model()
    schedule = freezedsl.Schedule(GRADUAL_RULES, model)  # applies epoch 0: the head only
    ddp = DDP(model)
    optimizer = torch.optim.SGD(schedule.param_groups(lr=0.1), lr=0.1, momentum=0.9)
    schedule.attach(optimizer)
    after: dict[int, dict[str, torch.Tensor]] = {}
    rebuilt = []
    gen = torch.Generator().manual_seed(2 + 1000 * rank)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(2):
        if schedule.epoch_start(epoch):  # truthy when requires_grad changed
            del ddp  # drop the old reducer and its hooks first
            ddp = DDP(model)
            rebuilt.append(epoch)
        for _ in range(STEPS):
            x = torch.randn(16, 1, 8, 8, generator=gen)
            y = torch.randint(0, 10, (16,), generator=gen)
            optimizer.zero_grad(set_to_none=True)
            loss_fn(ddp(x), y).backward()
            optimizer.step()
        after[epoch] = snapshot(model)
    return {"after": after, "flags": flags(model), "rebuilt": rebuilt}


def unfreeze_after_wrap(rank: int) -> dict[str, object]:
    model = fresh_model()
    freezedsl.apply(model, "freeze features; unfreeze classifier")
    ddp = DDP(model)
    freezedsl.apply(model, "unfreeze features.3")  # WRONG: DDP was built without it
    train(ddp, [p for p in model.parameters() if p.requires_grad], rank, seed=4)
    return {"final": snapshot(model)}


def full_snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """Unsharded copies of every parameter (a collective for DTensors: call on all ranks)."""
    out = {}
    for name, p in model.named_parameters():
        full = p.full_tensor() if hasattr(p, "full_tensor") else p
        out[name] = full.detach().clone()
    return out


def shard_blocks(model: nn.Module) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    for name in ("features.0", "features.1", "features.3"):
        fully_shard(model.get_submodule(name), mesh=mesh)
    fully_shard(model, mesh=mesh)  # the root unit holds the classifier


def fsdp2(rank: int) -> dict[str, object]:
    model = fresh_model()
    freezedsl.apply(model, BACKBONE_RULES)  # before sharding, as with DDP
    initial = snapshot(model)
    shard_blocks(model)
    train(model, [p for p in model.parameters() if p.requires_grad], rank, seed=6)
    return {"initial": initial, "final": full_snapshot(model), "flags": flags(model)}


def fsdp2_schedule(rank: int) -> dict[str, object]:
    model = fresh_model()
    schedule = freezedsl.Schedule(GRADUAL_RULES, model)
    shard_blocks(model)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    schedule.attach(optimizer)
    after: dict[int, dict[str, torch.Tensor]] = {}
    gen = torch.Generator().manual_seed(7 + 1000 * rank)
    for epoch in range(2):
        schedule.epoch_start(epoch)
        for _ in range(STEPS):
            x = torch.randn(16, 1, 8, 8, generator=gen)
            y = torch.randint(0, 10, (16,), generator=gen)
            optimizer.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        after[epoch] = full_snapshot(model)
    return {"after": after, "flags": flags(model)}


def fsdp1(rank: int) -> dict[str, object]:
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy

    out: dict[str, object] = {}
    cases: dict[str, dict[str, Any]] = {
        "use_orig_params=False": {"use_orig_params": False},
        "use_orig_params=True": {"use_orig_params": True},
        # one unit per conv block: each unit all frozen or all trainable
        "use_orig_params=False, per-block units": {
            "use_orig_params": False,
            "auto_wrap_policy": ModuleWrapPolicy({nn.Sequential}),
        },
    }
    for key, kwargs in cases.items():
        model = fresh_model()
        freezedsl.apply(model, BACKBONE_RULES)
        try:
            wrapped = FSDP(model, device_id=torch.device("cpu"), **kwargs)
            wrapped(torch.randn(4, 1, 8, 8)).sum().backward()
            out[key] = None
        except ValueError as exc:
            out[key] = str(exc)
        dist.barrier()
    return out


def optional(run: Callable[[int], dict[str, object]], rank: int) -> object:
    """FSDP scenarios; None where this torch build has no FSDP on CPU."""
    try:
        import torch.distributed.fsdp  # noqa: F401
    except ImportError:
        return None
    return run(rank)


def freeze_after_wrap(rank: int) -> dict[str, object]:
    model = fresh_model()
    ddp = DDP(model)  # everything trainable at construction
    plan = freezedsl.apply(ddp, "freeze features.0")  # WRONG order; plan warns
    error: str | None = None
    try:
        train(ddp, [p for p in model.parameters() if p.requires_grad], rank, seed=5)
    except RuntimeError as exc:
        error = str(exc)
    return {"error": error, "warnings": list(plan.warnings)}


def main(argv: list[str]) -> int:
    rank, world, store_file, out_dir = int(argv[1]), int(argv[2]), argv[3], Path(argv[4])
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{store_file}", rank=rank, world_size=world, timeout=TIMEOUT
    )
    results: dict[str, object] = {}
    try:
        results["freeze_first"] = freeze_first(rank)
        dist.barrier()
        results["rewrap"] = rewrap(rank)
        dist.barrier()
        results["unfreeze_after_wrap"] = unfreeze_after_wrap(rank)
        dist.barrier()
        for name, run in (("fsdp2", fsdp2), ("fsdp2_schedule", fsdp2_schedule), ("fsdp1", fsdp1)):
            results[name] = optional(run, rank)
            dist.barrier()
        results["freeze_after_wrap"] = freeze_after_wrap(rank)
    except Exception:  # noqa: BLE001 - report to the parent test, then fail
        results["crash"] = traceback.format_exc()
    torch.save(results, out_dir / f"rank{rank}.pt")
    dist.destroy_process_group()
    return 1 if "crash" in results else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
