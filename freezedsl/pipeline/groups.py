"""Optimizer parameter groups from a rule file: ``param_groups`` and what it is built on.

A rule file's ``lr`` / ``weight_decay`` statements (``lr=0.1x``, layer-wise decay) say
how fast each trainable parameter learns; ``param_groups`` plans the rules against a
model and turns that into torch-optimizer parameter groups, one per resolved
``(lr, weight_decay)``. The same grouping (``build_groups``) and the rules in force at
a time (``rules_at``) serve ``freezedsl.pipeline.schedule``, which adds groups as
later phases unfreeze parameters; ``check_phases`` plans every phase up front so a
typo in ``at epoch 5:`` fails at start-up, not hours into training.

This module does not import torch: it only handles tensors the caller already has.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from freezedsl.api import Rules, RulesLike, rules_from
from freezedsl.errors import UsageError
from freezedsl.syntax import ast

if TYPE_CHECKING:
    from freezedsl.planning.plan import ParamDecision, Plan

__all__ = ["check_phases", "param_groups"]


def param_groups(
    model: Any,
    rules: RulesLike,
    *,
    lr: float,
    weight_decay: float = 0.0,
    epoch: int | None = None,
    step: int | None = None,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups for the trainable parameters of ``model`` under ``rules``.

    The rules are *planned* (the model is not changed) and the plan decides: a
    parameter is in a group when the rules leave it trainable, with ``lr`` and
    ``weight_decay`` resolved from the last matching ``lr`` / ``weight_decay``
    statement against the base values given here. Because the optimizer must agree
    with ``requires_grad``, the model has to be in the state the rules describe:
    call this after ``freezedsl.apply(model, rules)`` (or after building a
    ``Schedule``); a model whose flags disagree with the plan is a ``UsageError``
    rather than an optimizer that silently skips or wastes parameters.

    For a file with ``at`` statements the state at ``epoch`` (or ``step``) is used,
    and time 0 when neither is given: the state a ``Schedule`` starts in.

    Every trainable tensor is in exactly one group (tied tensors once), grouped by the
    resolved ``(lr, weight_decay)``; groups come in model order of their first
    parameter. Each group has ``params``, ``lr``, ``weight_decay``, ``param_names``
    (canonical names; torch keeps this key in ``state_dict``) and ``name`` (e.g.
    ``"lr=0.1x,wd=0"``, used by Lightning's LearningRateMonitor). Every group sets
    ``weight_decay``, so the optimizer's own default (0.01 for AdamW) never applies:
    pass the base value you want.
    """
    compiled = rules_from(rules)
    plan = _plan_at(compiled, model, epoch=epoch, step=step)
    stale = [p for p in plan.params if p.changed]
    if stale:
        shown = ", ".join(
            f"{p.name} ({'trainable' if p.after else 'frozen'} in the rules)" for p in stale[:3]
        )
        more = f" and {len(stale) - 3} more" if len(stale) > 3 else ""
        raise UsageError(
            f"the model's requires_grad flags do not match the rules: {shown}{more}",
            hint="apply the rules first (freezedsl.apply(model, rules) or freezedsl.Schedule), "
            "or pass the epoch/step the model is at",
        )
    base_lr, base_wd = float(lr), float(weight_decay)
    chosen = [(obj, p) for obj, p in zip(plan._objects, plan.params) if p.after]
    return build_groups(chosen, base_lr, base_wd, prefix="", taken=set())


def _plan_at(rules: Rules, model: Any, *, epoch: int | None, step: int | None) -> Plan:
    """Plan the rules in force at the given time (time 0 of the file's unit by default)."""
    if epoch is not None and step is not None:
        raise UsageError("give epoch= or step=, not both")
    unit = rules.schedule_unit
    if unit is None:
        return rules.plan(model)
    if unit == "epoch" and step is not None:
        raise UsageError(f"{rules.path or 'the rules'} schedule by epoch; pass epoch=, not step=")
    if unit == "step" and epoch is not None:
        raise UsageError(f"{rules.path or 'the rules'} schedule by step; pass step=, not epoch=")
    time = epoch if unit == "epoch" else step
    return rules_at(rules, unit, 0 if time is None else int(time)).plan(model)


def check_phases(rules: Rules, model: Any, *, skip: Iterable[int] = ()) -> None:
    """Plan the rules in force at each phase (each distinct ``at`` time) once.

    A scheduled statement is otherwise planned only when its epoch or step comes, so a
    typo in ``at epoch 5: unfreeze layr4`` would surface hours into training. Planning
    changes nothing; the first statement that does not fit the model raises its usual
    error, naming its line. ``skip`` holds times the caller plans itself.
    """
    unit = rules.schedule_unit
    if unit is None:
        return
    done = set(skip)
    for time in rules.phases():
        if time not in done:
            rules_at(rules, unit, time).plan(model)


def rules_at(rules: Rules, unit: str | None, time: int) -> Rules:
    """The rules in force at ``time`` of ``unit`` (the rules as they are when ``unit`` is None)."""
    if unit == "epoch":
        return rules.at(epoch=time)
    if unit == "step":
        return rules.at(step=time)
    return rules


def _factor_text(factor: ast.Factor | None) -> str:
    """A short label for a group name; 6 significant digits keep decay powers readable."""
    if factor is None:
        return "1x"
    value = format(float(factor.value), ".6g") if factor.value != Decimal(0) else "0"
    return value + ("x" if factor.relative else "")


def _resolve(factor: ast.Factor | None, base: float) -> float:
    return base if factor is None else factor.resolve(base)


def build_groups(
    chosen: Iterable[tuple[Any, ParamDecision]],
    base_lr: float,
    base_wd: float,
    *,
    prefix: str,
    taken: set[str],
) -> list[dict[str, Any]]:
    """Group (tensor, decision) pairs by resolved (lr, weight_decay), in first-seen order.

    ``taken`` holds group names already in use; a clash gets a ``#2`` suffix so that
    tools keyed on names (LearningRateMonitor) see each group once.
    """
    groups: dict[tuple[float, float], dict[str, Any]] = {}
    for obj, p in chosen:
        g_lr, g_wd = _resolve(p.lr, base_lr), _resolve(p.weight_decay, base_wd)
        group = groups.get((g_lr, g_wd))
        if group is None:
            name = f"{prefix}lr={_factor_text(p.lr)},wd={_factor_text(p.weight_decay)}"
            unique, n = name, 1
            while unique in taken:
                n += 1
                unique = f"{name} #{n}"
            taken.add(unique)
            group = {
                "params": [],
                "param_names": [],
                "lr": g_lr,
                "weight_decay": g_wd,
                "name": unique,
            }
            groups[(g_lr, g_wd)] = group
        group["params"].append(obj)
        group["param_names"].append(p.name)
    return list(groups.values())
