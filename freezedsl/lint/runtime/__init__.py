"""FZ3xx: checks of a live model and its optimizers.

Static checks see what a script *says*; these look at what the objects *are* right
before a step: which tensors each optimizer will touch, what DDP/FSDP recorded when
they were built, which norm layers still collect statistics. Every check reads state
only; nothing here changes a model, an optimizer or a gradient.

The checks live in one module per family over a shared analysis (``_context``):
``optimizer`` (FZ301-FZ303, FZ307), ``model`` (FZ304-FZ306), ``distributed``
(FZ308-FZ310), ``changes`` (FZ311, the every-step watch), and
``freezedsl.lint.peft_checks`` (FZ350/FZ351, PEFT adapters); this module runs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from freezedsl.lint.peft_checks import check_adapters
from freezedsl.lint.registry import Diagnostic
from freezedsl.lint.runtime._context import (
    CHECK_FAILED,
    FreezeLintError,
    _as_list,
    _context,
    _Ctx,
    _failed,
    _numel,
    _unwrap,
    built,
)
from freezedsl.lint.runtime.changes import (
    FROZEN_CHANGED,
    StepWatch,
    frozen_changes,
    snapshot_frozen,
)
from freezedsl.lint.runtime.distributed import (
    DDP_BEFORE_FREEZE,
    FSDP_MIXED,
    REENTRANT_AFTER_FROZEN,
    _check_ddp,
    _check_fsdp,
    _check_reentrant,
)
from freezedsl.lint.runtime.model import (
    HEAD_FROZEN,
    NORM_STATS_DRIFT,
    NOTHING_TRAINABLE,
    _check_head_frozen,
    _check_norm_stats,
    _check_nothing_trainable,
)
from freezedsl.lint.runtime.optimizer import (
    FROZEN_IN_OPTIMIZER,
    FROZEN_WILL_MOVE,
    PARAM_IN_TWO_GROUPS,
    TRAINABLE_NOT_IN_OPTIMIZER,
    _check_duplicates,
    _check_frozen_in_optimizer,
    _check_trainable_not_in_optimizer,
)

__all__ = [
    "CHECK_FAILED",
    "DDP_BEFORE_FREEZE",
    "FROZEN_CHANGED",
    "FROZEN_IN_OPTIMIZER",
    "FROZEN_WILL_MOVE",
    "FSDP_MIXED",
    "HEAD_FROZEN",
    "NORM_STATS_DRIFT",
    "NOTHING_TRAINABLE",
    "PARAM_IN_TWO_GROUPS",
    "REENTRANT_AFTER_FROZEN",
    "TRAINABLE_NOT_IN_OPTIMIZER",
    "FreezeLintError",
    "StepWatch",
    "assert_ok",
    "built",
    "check",
    "describe_model",
    "describe_optimizer",
    "frozen_changes",
    "snapshot_frozen",
]


# --------------------------------------------------------------------------- API


def _check_peft(ctx: _Ctx) -> None:
    """FZ350/FZ351 (freezedsl.lint.peft_checks) on each model, names as the other checks show them."""
    for view in ctx.models:
        ctx.out.extend(check_adapters(view.root, path=ctx.path, rename=view.rel))


_CHECKS = (
    _check_frozen_in_optimizer,
    _check_trainable_not_in_optimizer,
    _check_nothing_trainable,
    _check_head_frozen,
    _check_norm_stats,
    _check_duplicates,
    _check_ddp,
    _check_fsdp,
    _check_reentrant,
    _check_peft,
)

# The rule each check reports, to name a check that failed (FZ003).
_CHECK_NAMES: dict[Any, str] = {
    _check_frozen_in_optimizer: "frozen-param-in-optimizer",
    _check_trainable_not_in_optimizer: "trainable-param-not-in-optimizer",
    _check_nothing_trainable: "nothing-trainable",
    _check_head_frozen: "head-frozen",
    _check_norm_stats: "norm-stats-drift",
    _check_duplicates: "param-in-two-groups",
    _check_ddp: "ddp-built-before-freeze",
    _check_fsdp: "fsdp-mixed-requires-grad",
    _check_reentrant: "reentrant-checkpoint-after-frozen-prefix",
    _check_peft: "peft-base-weight-trainable",
}


def check(
    model: nn.Module | Sequence[nn.Module],
    optimizer: Optimizer | Sequence[Optimizer] | None = None,
    *,
    path: str = "<runtime>",
    stepping: Optimizer | None = None,
) -> list[Diagnostic]:
    """Run every FZ3xx check on live models and optimizers; reads state, changes nothing.

    With several models, parameter names are prefixed with the model's class name.
    ``stepping`` (run mode) limits FZ301/FZ302 to the optimizer about to step: another
    optimizer may hold tensors frozen on purpose while this one steps (GAN alternation).
    """
    ctx, failed = _context(_as_list(model), _as_list(optimizer), path)
    ctx.stepping = stepping
    with torch.no_grad():
        for run in _CHECKS:
            before = len(ctx.out)
            try:
                run(ctx)
            except Exception as exc:  # noqa: BLE001 - a crashed check is FZ003, not a pass
                del ctx.out[before:]  # a half-done check's findings are not trusted
                failed.append(_failed(f"check {_CHECK_NAMES[run]!r}", exc, path))
    return ctx.out + failed


def assert_ok(
    model: nn.Module | Sequence[nn.Module],
    optimizer: Optimizer | Sequence[Optimizer] | None = None,
    *,
    ignore: Iterable[str] = (),
) -> None:
    """Raise :class:`FreezeLintError` if :func:`check` finds anything not in ``ignore``.

    ``ignore`` takes codes (``"FZ301"``) or rule names (``"frozen-param-in-optimizer"``).
    """
    from freezedsl.lint.registry import RULES

    skip = set(ignore)
    skip |= {code for code, rule in RULES.items() if rule.name in skip}
    found = [d for d in check(model, optimizer) if d.code not in skip]
    if found:
        raise FreezeLintError(found)


def describe_model(model: nn.Module) -> str:
    """``ResNet (11,689,512 params, 5,130 trainable)``: a short label for reports."""
    root, _ = _unwrap(model)
    seen: set[int] = set()
    total = trainable = 0
    try:
        for p in model.parameters():
            if id(p) in seen:
                continue
            seen.add(id(p))
            total += _numel(p)
            trainable += _numel(p) if p.requires_grad else 0
    except Exception as exc:  # noqa: BLE001 - check() reports it as FZ003
        return f"{type(root).__name__} (parameters unreadable: {type(exc).__name__})"
    wrap = "" if root is model else f" in {type(model).__name__}"
    return f"{type(root).__name__}{wrap} ({total:,} params, {trainable:,} trainable)"


def describe_optimizer(opt: Optimizer) -> str:
    """``SGD(lr=0.1, momentum=0.9; 2 groups, 4 tensors)``: a short label for reports."""
    g0 = opt.param_groups[0] if opt.param_groups else {}
    keys = ("lr", "momentum", "weight_decay")
    hp = ", ".join(
        f"{k}={g0[k]:g}"
        for k in keys
        if isinstance(g0.get(k), (int, float)) and (k == "lr" or g0[k])
    )
    tensors = sum(len(g["params"]) for g in opt.param_groups)
    return f"{type(opt).__name__}({hp}; {len(opt.param_groups)} groups, {tensors} tensors)"
