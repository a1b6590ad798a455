"""FZ301-FZ303 and FZ307: what the optimizers hold compared with what is frozen."""

from __future__ import annotations

from typing import Any

import torch
from torch.optim import Optimizer

from freezedsl.lint.registry import Rule, Severity, register
from freezedsl.lint.runtime._context import (
    _Ctx,
    _nonzero,
)

# --------------------------------------------------------------------------- FZ301 / FZ302

FROZEN_IN_OPTIMIZER = register(
    Rule(
        "FZ301",
        "frozen-param-in-optimizer",
        Severity.WARNING,
        "A frozen parameter (requires_grad=False) sits in an optimizer's param groups.",
        what="""
Looks through every param group of every given optimizer for parameters whose
``requires_grad`` is False.
""",
        why="""
Torch optimizers skip a parameter only while its ``.grad`` is None. A frozen parameter
in a group is one stale gradient, ``zero_grad(set_to_none=False)`` or weight decay away
from being updated, and its optimizer state (if any) is kept in memory for nothing.
""",
        example="""
model.backbone.requires_grad_(False)
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
""",
        use_instead="""
model.backbone.requires_grad_(False)
opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
""",
    )
)

FROZEN_WILL_MOVE = register(
    Rule(
        "FZ302",
        "frozen-param-will-move",
        Severity.ERROR,
        "A frozen parameter in an optimizer will still change at the next step().",
        what="""
For a frozen parameter inside an optimizer group, decides whether the next ``step()``
changes it: the optimizer only skips it when ``.grad is None``; with a gradient present
(even all zeros) it moves when the gradient is non-zero, when the group's
``weight_decay`` is non-zero (coupled decay adds ``wd * p`` to the gradient, AdamW's
decoupled decay shrinks ``p`` directly), or when the optimizer state still holds
momentum (SGD ``momentum_buffer``, Adam-family ``exp_avg``, RMSprop ``momentum_buffer``).
""",
        why="""
The parameter is meant to stay fixed, but the optimizer updates it anyway, usually
after freezing mid-training with ``zero_grad(set_to_none=False)`` or without clearing
gradients. Nothing fails; the "frozen" weights drift.
""",
        example="""
loss.backward(); opt.step()              # momentum now stored for every parameter
model.backbone.requires_grad_(False)
opt.zero_grad(set_to_none=False)         # zero grads, not None: momentum keeps moving them
""",
        use_instead="""
model.backbone.requires_grad_(False)
for p in model.backbone.parameters():
    p.grad = None
    opt.state.pop(p, None)
# better: rebuild the optimizer from the parameters that still require grad
""",
    )
)

_ADAM_FAMILY = ("Adam", "AdamW", "Adamax", "NAdam", "RAdam")
# Updates of these are proportional to the current gradient: a zero grad moves nothing
# (LBFGS's direction keeps a zero component where the gradient has always been zero).
_GRAD_DRIVEN = ("Adagrad", "Adadelta", "Rprop", "SparseAdam", "LBFGS")


def _base_optimizer(opt: Optimizer) -> str:
    for cls in type(opt).__mro__:
        if cls.__module__.startswith("torch.optim"):
            return cls.__name__
    return type(opt).__name__


def _why_it_moves(opt: Optimizer, group: dict[str, Any], p: torch.Tensor) -> str | None:
    """Why the next ``opt.step()`` changes ``p`` (None: it will not), following torch's rules."""
    if p.grad is None:
        return None  # every torch optimizer skips parameters without a gradient
    lr = group.get("lr", 1.0)
    if isinstance(lr, (int, float, torch.Tensor)) and float(lr) == 0.0:
        return None
    if _nonzero(p.grad):
        return "it still has a non-zero .grad (a stale gradient from an earlier backward)"
    kind = _base_optimizer(opt)
    wd = group.get("weight_decay", 0) or 0
    if wd and _nonzero(p):
        if kind == "AdamW" or group.get("decoupled_weight_decay"):
            how = "AdamW's decoupled decay shrinks it directly"
        else:
            how = "coupled decay adds weight_decay*param to its gradient"
        return f"its .grad is zeros, not None, and its group has weight_decay={wd}: {how}"
    state = opt.state.get(p, {})
    key: str | None = None
    if kind == "SGD":
        key = "momentum_buffer" if group.get("momentum", 0) else None
    elif kind in _ADAM_FAMILY:
        key = "exp_avg"
    elif kind == "RMSprop":
        key = "momentum_buffer" if group.get("momentum", 0) else None
    elif kind == "ASGD" and group.get("lambd", 0):
        return f"its .grad is zeros, not None, and ASGD decays it by lambd={group['lambd']}"
    elif kind not in _GRAD_DRIVEN:
        # Unknown optimizer: any non-zero float state other than the step counter may move it.
        for k, v in state.items():
            if (
                k != "step"
                and isinstance(v, torch.Tensor)
                and v.is_floating_point()
                and _nonzero(v)
            ):
                return (
                    f"its .grad is zeros, not None, and {type(opt).__name__} keeps a non-zero "
                    f"state '{k}' for it that may keep moving it"
                )
        return None
    if key is not None and _nonzero(state.get(key)):
        return (
            f"its .grad is zeros, not None, and optimizer.state holds a non-zero '{key}', "
            "so momentum keeps moving it"
        )
    return None


def _check_frozen_in_optimizer(ctx: _Ctx) -> None:
    seen: set[int] = set()
    for oi, opt in enumerate(ctx.optimizers):
        if ctx.stepping is not None and opt is not ctx.stepping:
            continue
        oname = type(opt).__name__
        for gi, group in enumerate(opt.param_groups):
            for p in group["params"]:
                if p.requires_grad or id(p) in seen:
                    continue
                seen.add(id(p))
                name = ctx.name(p, f"optimizer {oi} group {gi}")
                reason = _why_it_moves(opt, group, p)
                if reason is not None:
                    ctx.add(
                        FROZEN_WILL_MOVE,
                        f"frozen parameter {name} will still be changed by the next "
                        f"{oname}.step(): {reason}; set its .grad to None and drop "
                        "optimizer.state for it, or rebuild the optimizer from the "
                        "parameters that require grad",
                        name,
                        optimizer=oi,
                        group=gi,
                    )
                else:
                    ctx.add(
                        FROZEN_IN_OPTIMIZER,
                        f"frozen parameter {name} is in {oname} param group {gi}; it stays "
                        "fixed only while its .grad is None; build the optimizer from "
                        "[p for p in model.parameters() if p.requires_grad]",
                        name,
                        optimizer=oi,
                        group=gi,
                    )


# --------------------------------------------------------------------------- FZ303

TRAINABLE_NOT_IN_OPTIMIZER = register(
    Rule(
        "FZ303",
        "trainable-param-not-in-optimizer",
        Severity.WARNING,
        "A trainable parameter is in no param group of any given optimizer.",
        what="""
Lists parameters with ``requires_grad=True`` that no given optimizer holds. Only runs
when at least one optimizer is given.
""",
        why="""
The parameter receives gradients (costing memory and compute) but never changes.
Typical cause: the optimizer was built before a module was unfrozen, added or
replaced (a new head), or before FSDP/compile swapped the parameter objects.
""",
        example="""
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
model.fc = nn.Linear(512, 10)        # new head created after the optimizer
""",
        use_instead="""
model.fc = nn.Linear(512, 10)
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
# or freeze it on purpose: model.fc.requires_grad_(False)
""",
    )
)


def _check_trainable_not_in_optimizer(ctx: _Ctx) -> None:
    if not ctx.optimizers:
        return
    held = {id(p) for opt in ctx.optimizers for g in opt.param_groups for p in g["params"]}
    for name, p in ctx.all_params():
        if p.requires_grad and id(p) not in held:
            ctx.add(
                TRAINABLE_NOT_IN_OPTIMIZER,
                f"trainable parameter {name} is in no optimizer, so it gets gradients but "
                "never changes; add it to an optimizer (build the optimizer after the last "
                "freeze/unfreeze) or freeze it",
                name,
            )


# --------------------------------------------------------------------------- FZ307

PARAM_IN_TWO_GROUPS = register(
    Rule(
        "FZ307",
        "param-in-two-groups",
        Severity.ERROR,
        "The same parameter tensor is in two optimizer groups (or twice in one, or in two optimizers).",
        what="""
Compares parameters by identity across every group of every given optimizer.
""",
        why="""
The tensor is updated once per occurrence in every step: the effective learning rate,
weight decay and momentum are multiplied, and it follows two sets of hyperparameters.
``add_param_group`` refuses overlaps, but hand-built ``param_groups``, groups edited
after construction and two optimizers over overlapping parameter lists are not checked
by torch.
""",
        example="""
opt = torch.optim.SGD(model.parameters(), lr=0.1)
# a head group added by hand (add_param_group would refuse the overlap):
opt.param_groups.append({**opt.defaults, "params": list(model.fc.parameters()), "lr": 1e-2})
""",
        use_instead="""
head = set(model.fc.parameters())
body = [p for p in model.parameters() if p not in head]
opt = torch.optim.SGD([{"params": body}, {"params": list(head), "lr": 1e-2}], lr=0.1)
""",
    )
)


def _check_duplicates(ctx: _Ctx) -> None:
    first: dict[int, str] = {}
    multi = len(ctx.optimizers) > 1
    for oi, opt in enumerate(ctx.optimizers):
        for gi, group in enumerate(opt.param_groups):
            for p in group["params"]:
                where = f"{type(opt).__name__}{f' #{oi}' if multi else ''} group {gi}"
                if id(p) in first:
                    name = ctx.name(p, where)
                    ctx.add(
                        PARAM_IN_TWO_GROUPS,
                        f"parameter {name} is in both {first[id(p)]} and {where}, so each "
                        "step updates it twice; put every parameter in exactly one group of "
                        "one optimizer",
                        name,
                    )
                else:
                    first[id(p)] = where
