"""FZ311: frozen tensors that changed - around every ``optimizer.step()`` in run mode
(:class:`StepWatch`) or over a whole window (:func:`snapshot_frozen`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.optim import Optimizer

from freezedsl.lint.registry import Diagnostic, Rule, Severity, diag, register
from freezedsl.lint.runtime._context import (
    _as_list,
    _context,
    _lazy,
)

# --------------------------------------------------------------------------- FZ311

FROZEN_CHANGED = register(
    Rule(
        "FZ311",
        "frozen-param-changed",
        Severity.ERROR,
        "A frozen parameter changed during the observed training steps.",
        what="""
Used by ``freezedsl lint train.py --steps N``: around every ``optimizer.step()`` of the
first N steps, the optimizer's tensors that have ``requires_grad=False`` when the step
starts are copied and compared when it returns. A change is reported with the tensor's
name and the step number, so a freeze added mid-training (stale gradients, momentum,
weight decay) is caught at the step it goes wrong. Changes made outside ``step()`` (an
EMA teacher updated under ``no_grad``) and tensors unfrozen on a schedule are not
findings. ``snapshot_frozen``/``frozen_changes`` compare a whole window instead.
""",
        why="""
Whatever the mechanism (optimizer momentum, weight decay, a manual in-place update,
an EMA or a reloaded checkpoint), the weights that were meant to stay fixed did not.
""",
        example="""
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
...                                   # train for a while
model.backbone.requires_grad_(False)
opt.zero_grad(set_to_none=False)
""",
        use_instead="""
model.backbone.requires_grad_(False)
opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
""",
    )
)


def snapshot_frozen(
    model: nn.Module | Sequence[nn.Module], *, budget_bytes: int | None = None
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """CPU copies of every frozen parameter, keyed by display name: ``{name: (param, copy)}``.

    With ``budget_bytes``, stops copying once the budget is spent (large frozen backbones).
    """
    ctx, _ = _context(_as_list(model), [], "<runtime>")  # unreadable models: FZ003 in check()
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    spent = 0
    for name, p in ctx.all_params():
        if p.requires_grad or _lazy(p):
            continue
        size = p.numel() * p.element_size()
        if budget_bytes is not None and spent + size > budget_bytes:
            continue
        spent += size
        out[name] = (p, p.detach().to("cpu", copy=True))
    return out


def frozen_changes(
    snapshot: dict[str, tuple[torch.Tensor, torch.Tensor]], *, steps: int, path: str = "<runtime>"
) -> list[Diagnostic]:
    """FZ311 for every snapshotted parameter whose values differ now."""
    out: list[Diagnostic] = []
    for name, (p, before) in snapshot.items():
        now = p.detach().to("cpu")
        if now.shape != before.shape:
            delta = float("inf")
        else:
            delta = float((now.double() - before.double()).abs().max()) if now.numel() else 0.0
        if delta > 0:
            out.append(
                diag(
                    FROZEN_CHANGED,
                    f"frozen parameter {name} changed during {steps} optimizer step(s) (max abs "
                    f"change {delta:.3g}); keep frozen parameters out of the optimizer and set "
                    "their .grad to None",
                    path,
                    obj=name,
                    extra={"max_abs_change": delta, "steps": steps},
                )
            )
    return out


class StepWatch:
    """Watches every ``optimizer.step()``: a tensor frozen when the step starts must not move.

    Only the stepping optimizer's own tensors that have ``requires_grad=False`` at the
    start of the step are copied (nothing at all for correct code), so changes made
    outside ``step()`` (an EMA/momentum teacher updated under ``no_grad``) and tensors
    unfrozen on a schedule (they are trainable when their step starts) are never
    reported. One FZ311 per tensor, at the first step that moved it.
    """

    def __init__(self, models: Sequence[nn.Module], path: str, budget_bytes: int) -> None:
        ctx, _ = _context(list(models), [], path)
        self.names = ctx.names
        self.path = path
        self.budget = budget_bytes
        self.reported: set[int] = set()
        self.skipped = 0  # frozen tensors not copied (budget)
        self.open: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def start(self, opt: Optimizer) -> None:
        """Copy the optimizer's tensors that are frozen as this step starts."""
        spent, copies = 0, []
        for group in opt.param_groups:
            for p in group["params"]:
                if p.requires_grad or _lazy(p) or id(p) in self.reported:
                    continue
                size = p.numel() * p.element_size()
                if spent + size > self.budget:
                    self.skipped += 1
                    continue
                spent += size
                copies.append((p, p.detach().to("cpu", copy=True)))
        self.open[id(opt)] = copies

    def finish(self, opt: Optimizer, step: int) -> list[Diagnostic]:
        """FZ311 for each tensor that was frozen when the step started and moved in it."""
        out: list[Diagnostic] = []
        with torch.no_grad():
            for p, before in self.open.pop(id(opt), []):
                now = p.detach().to("cpu")
                if now.shape != before.shape:
                    delta = float("inf")
                else:
                    delta = float((now.double() - before.double()).abs().max()) if now.numel() else 0.0
                if delta <= 0:
                    continue
                self.reported.add(id(p))
                name = self.names.get(id(p)) or f"<tensor {tuple(p.shape)}, not in the model>"
                out.append(
                    diag(
                        FROZEN_CHANGED,
                        f"frozen parameter {name} changed in optimizer step {step} of "
                        f"{type(opt).__name__} (max abs change {delta:.3g}); it had "
                        "requires_grad=False when the step started, so a stale .grad, "
                        "momentum or weight decay moved it; keep frozen parameters out of "
                        "the optimizer and set their .grad to None",
                        self.path,
                        obj=name,
                        extra={"max_abs_change": delta, "step": step},
                    )
                )
        return out
