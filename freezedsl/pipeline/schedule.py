"""Unfreeze schedules: ``Schedule`` runs a rule file's ``at epoch N:`` / ``at step N:`` phases.

During training a ``Schedule`` applies each phase as its epoch or step comes and keeps a
live optimizer in step with the model: a parameter that becomes trainable joins the
optimizer (by identity), one that becomes frozen leaves it with its state and gradient
dropped, so a frozen tensor never moves again (momentum and weight decay would otherwise
keep changing it). LR schedulers attached to the optimizer get their per-group lists
extended for each added group, ``reserved_groups`` builds the empty groups an optimizer
can be created with so its number of groups never changes, and ``state_dict`` /
``load_state_dict`` let a run resume mid-schedule. ``PhaseChange`` is what each step
reports.

The groups themselves come from ``freezedsl.pipeline.groups`` (``param_groups``), so a
group added mid-run resolves ``lr`` / ``weight_decay`` exactly as a time-0 group does.
This module does not import torch: it only handles tensors the caller already has.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from freezedsl.api import RulesLike, rules_from
from freezedsl.errors import UsageError
from freezedsl.pipeline.groups import build_groups, check_phases, param_groups, rules_at
from freezedsl.syntax import ast

if TYPE_CHECKING:
    from freezedsl.planning.result import ParamDecision, Plan

__all__ = ["RESERVED", "PhaseChange", "Schedule", "reserved_groups"]

STATE_FORMAT = "freezedsl-schedule/1"

#: Key of a parameter group reserved for a later phase (see ``reserved_groups``).
RESERVED = "freezedsl_reserved"

# LR schedulers whose per-group settings (max_lr, momentum ranges...) cannot be derived
# for a group that joins mid-run.
_UNSUPPORTED_SCHEDULERS = ("OneCycleLR", "CyclicLR")


@dataclass(frozen=True)
class PhaseChange:
    """What one ``Schedule.epoch_start`` / ``Schedule.step`` call changed.

    It is falsy when no parameter changed state, so ``if sched.epoch_start(e):`` reads
    as "did anything change". ``plan`` is the Plan applied when a phase boundary was
    crossed (None otherwise); ``added_groups`` are indices into
    ``optimizer.param_groups``.
    """

    unit: str | None
    time: int
    unfrozen: tuple[str, ...] = ()
    frozen: tuple[str, ...] = ()
    added_groups: tuple[int, ...] = ()
    plan: Plan | None = field(default=None, compare=False, repr=False)

    def __bool__(self) -> bool:
        return bool(self.unfrozen or self.frozen)


class Schedule:
    """Drive a rule file's ``at`` statements during training, with optimizer surgery.

    ::

        sched = freezedsl.Schedule("rules.frz", model)          # applies time 0
        opt = torch.optim.AdamW(sched.param_groups(lr=1e-3, weight_decay=0.01))
        sched.attach(opt)
        for epoch in range(epochs):
            sched.epoch_start(epoch)                              # or sched.step(global_step)
            ...

    Construction applies the rules in force at time 0 (statements without ``at`` and
    every ``at epoch 0`` / ``at step 0`` one), so epochs and steps count from 0 like
    Lightning's ``current_epoch`` / ``global_step``. When a phase boundary is crossed,
    ``rules.at(time)`` is applied atomically and, if an optimizer is attached:

    * parameters that became frozen leave every group (groups stay, possibly empty, so
      group indices and LR schedulers keep lining up), their ``optimizer.state`` entry
      is deleted and their ``.grad`` set to None;
    * parameters that became trainable and are in no group join as new groups, one
      per resolved ``(lr, weight_decay)`` (normally one per phase), added by identity.
      ``lr`` / ``weight_decay`` statements in force resolve against the base values:
      ``lr=`` / ``weight_decay=`` given here, else those given to
      :meth:`param_groups`, else the optimizer's ``defaults``. When other groups carry
      ``initial_lr`` (an LR scheduler is attached), the new group gets ``initial_lr``
      = its resolved lr and starts at the same point of the schedule (its lr is scaled
      by the current ``lr / initial_lr`` of the first such group). Schedulers passed as
      ``lr_schedulers`` get their per-group lists (``base_lrs``, ``lr_lambdas``...)
      extended so they keep working with the new group.

    Scheduled ``lr`` / ``weight_decay`` statements only affect the groups a phase adds;
    groups already in the optimizer keep their settings.

    Resume: build the model, then the Schedule and the optimizer exactly as in a fresh
    run (and the LR schedulers), then ``sched.load_state_dict(saved)``, then
    ``optimizer.load_state_dict(saved)`` (then the schedulers'): ``load_state_dict``
    replays the phases the saved run went through, re-creating its added groups in the
    same order, so the optimizer's saved state fits.
    """

    def __init__(
        self,
        rules: RulesLike,
        model: Any,
        optimizer: Any | None = None,
        *,
        lr: float | None = None,
        weight_decay: float | None = None,
        lr_schedulers: Sequence[Any] = (),
    ) -> None:
        self.rules = rules_from(rules)
        self.model = model
        self.unit: str | None = self.rules.schedule_unit
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer: Any | None = None
        self.lr_schedulers: list[Any] = []
        self.plan: Plan | None = None
        self._phases = self.rules.phases()
        self._time = 0
        self._lo: float = -math.inf
        self._hi: float = math.inf
        self._history: list[int] = []  # times at which a phase was entered after time 0
        self._added: list[list[str]] = []  # names of every group added, in order
        if optimizer is not None:
            self.attach(optimizer, lr_schedulers=lr_schedulers)
        elif lr_schedulers:
            raise UsageError("lr_schedulers need the optimizer they drive; pass optimizer= too")
        first = rules_at(self.rules, self.unit, 0).plan(self.model)
        check_phases(self.rules, self.model, skip=(0,))  # a later phase's typo fails now
        self._enter(0, first)

    # ------------------------------------------------------------ public API
    @property
    def time(self) -> int:
        """The last epoch (or step) seen; 0 right after construction."""
        return self._time

    def attach(self, optimizer: Any, *, lr_schedulers: Sequence[Any] = ()) -> Schedule:
        """Let phase changes edit ``optimizer`` (and keep ``lr_schedulers`` in line).

        Attach before training starts, and before ``load_state_dict`` when resuming.
        """
        grows = any(
            isinstance(st.statement, ast.Rule) and st.statement.action == "unfreeze"
            for st in self.rules.program.scheduled
        )
        for sched in _flatten(lr_schedulers):
            name = type(sched).__name__
            if grows and name in _UNSUPPORTED_SCHEDULERS:
                raise UsageError(
                    f"{name} keeps per-group settings that cannot be derived for a parameter "
                    "group added when a phase unfreezes parameters",
                    hint="use a scheduler such as LambdaLR, CosineAnnealingLR or StepLR, or build the "
                    "optimizer with every parameter the schedule will unfreeze",
                )
            if getattr(sched, "optimizer", optimizer) is not optimizer:
                raise UsageError(f"{name} drives another optimizer than the one attached")
        self.optimizer = optimizer
        self.lr_schedulers = list(lr_schedulers)
        return self

    def param_groups(self, *, lr: float, weight_decay: float = 0.0) -> list[dict[str, Any]]:
        """``freezedsl.param_groups`` for the model at the current time.

        The base values are remembered (unless given to the constructor) so groups
        that later phases add resolve their factors against the same base.
        """
        if self.lr is None:
            self.lr = lr
        if self.weight_decay is None:
            self.weight_decay = weight_decay
        kw: dict[str, int] = {self.unit: self._time} if self.unit else {}
        return param_groups(self.model, self.rules, lr=lr, weight_decay=weight_decay, **kw)

    def epoch_start(self, epoch: int) -> PhaseChange:
        """Call at the start of every epoch (0-based) of an epoch-unit file."""
        self._check_unit("epoch", "epoch_start(epoch)", "step(global_step)")
        return self._advance(int(epoch))

    def step(self, step: int) -> PhaseChange:
        """Call before every optimizer step with the global step count (0-based).

        Between phase boundaries this is two comparisons.
        """
        if self._lo <= step < self._hi and self.unit != "epoch":  # hot path: same phase
            self._time = step
            return PhaseChange(self.unit, step)
        self._check_unit("step", "step(global_step)", "epoch_start(epoch)")
        return self._advance(int(step))

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to resume this schedule (plain lists, ints, strings)."""
        return {
            "format": STATE_FORMAT,
            "unit": self.unit,
            "time": self._time,
            "rules_sha256": self.rules.sha256,
            "history": list(self._history),
            "added_groups": [list(names) for names in self._added],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Bring a freshly built Schedule (and its attached optimizer) to a saved time.

        Replays the phases the saved run entered, so the optimizer gets the same added
        groups in the same order; call ``optimizer.load_state_dict`` afterwards.
        """
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise UsageError(f"not a freezedsl Schedule state (expected format {STATE_FORMAT})")
        if state.get("rules_sha256") != self.rules.sha256:
            raise UsageError(
                "the schedule state was saved with different rules "
                f"(sha256 {str(state.get('rules_sha256'))[:12]}..., these rules are {self.rules.sha256[:12]}...)",
                hint="resume with the rule file the run started with, or start the schedule afresh",
            )
        if state.get("unit") != self.unit:
            raise UsageError(
                f"the schedule state counts {state.get('unit')}s, these rules count {self.unit}s"
            )
        if self._history:
            raise UsageError(
                "load_state_dict needs a Schedule that has not entered a later phase yet",
                hint="build a new Schedule, attach the optimizer, then load the state",
            )
        saved_added = [list(names) for names in state.get("added_groups", [])]
        if self.optimizer is None and len(saved_added) > len(self._added):
            raise UsageError(
                "the saved run added optimizer groups but no optimizer is attached",
                hint="resume in this order: model, optimizer, Schedule.attach, "
                "Schedule.load_state_dict, optimizer.load_state_dict",
            )
        for time in state.get("history", []):
            self._enter(int(time))
            self._history.append(int(time))
        time = int(state.get("time", 0))
        if not self._lo <= time < self._hi:
            raise UsageError(f"inconsistent schedule state: time {time} is outside its last phase")
        self._time = time
        if self.optimizer is not None and self._added != saved_added:
            raise UsageError(
                "the optimizer groups re-created on resume differ from the saved run's "
                f"({len(self._added)} groups vs {len(saved_added)})",
                hint="build the model and optimizer exactly as in the saved run before loading",
            )

    def __repr__(self) -> str:
        where = self.rules.path or "<rules>"
        return f"<freezedsl.Schedule {where}: {self.unit or 'no'} schedule, time {self._time}>"

    # ------------------------------------------------------------ internals
    def _check_unit(self, unit: str, call: str, other: str) -> None:
        if self.unit is not None and self.unit != unit:
            raise UsageError(
                f"{self.rules.path or 'these rules'} schedule by {self.unit}; call {other}, not {call}"
            )

    def _advance(self, time: int) -> PhaseChange:
        if self._lo <= time < self._hi:
            self._time = time
            return PhaseChange(self.unit, time)
        change = self._enter(time)
        self._history.append(time)
        return change

    def _set_window(self, time: int) -> None:
        """The [lo, hi) range of times that share the phase in force at ``time``."""
        if self.unit is None:
            self._lo, self._hi = -math.inf, math.inf
            return
        k = bisect.bisect_right(self._phases, time)
        self._lo = self._phases[k - 1] if k > 0 else -math.inf
        self._hi = self._phases[k] if k < len(self._phases) else math.inf

    def _enter(self, time: int, plan: Plan | None = None) -> PhaseChange:
        """Apply the rules in force at ``time`` (planned as ``plan`` when given, just now)
        and edit the optimizer to match."""
        if plan is None:
            plan = rules_at(self.rules, self.unit, time).plan(self.model)
        from freezedsl.application import apply_plan

        apply_plan(plan)  # atomic; raises (changing nothing) on a failed expect
        self.plan = plan
        self._time = time
        self._set_window(time)
        pairs = list(zip(plan._objects, plan.params))
        # `convert` replaces modules: their old parameters leave the model.
        live = {id(t) for t in _parameters(self.model)}
        gone = [(o, p) for o, p in pairs if p.before and (not p.after or id(o) not in live)]
        came = [(o, p) for o, p in pairs if not p.before and p.after and id(o) in live]
        for obj, _p in gone:
            obj.grad = None
        added: tuple[int, ...] = ()
        if self.optimizer is not None:
            self._remove(self.optimizer, [o for o, _ in gone])
            added = self._add(self.optimizer, came, time)
        return PhaseChange(
            self.unit,
            time,
            unfrozen=tuple(p.name for _, p in came),
            frozen=tuple(p.name for _, p in gone),
            added_groups=added,
            plan=plan,
        )

    @staticmethod
    def _remove(optimizer: Any, tensors: list[Any]) -> None:
        if not tensors:
            return
        drop = {id(t) for t in tensors}
        for group in optimizer.param_groups:
            params = group["params"]
            keep = [i for i, t in enumerate(params) if id(t) not in drop]
            if len(keep) == len(params):
                continue
            names = group.get("param_names")
            group["params"] = [params[i] for i in keep]
            if isinstance(names, list) and len(names) == len(params):
                group["param_names"] = [names[i] for i in keep]
        for t in tensors:
            optimizer.state.pop(t, None)

    def _add(
        self, optimizer: Any, came: list[tuple[Any, ParamDecision]], time: int
    ) -> tuple[int, ...]:
        present = {id(t) for g in optimizer.param_groups for t in g["params"]}
        todo = [(o, p) for o, p in came if id(o) not in present]
        if not todo:
            return ()
        defaults = getattr(optimizer, "defaults", {})
        base_lr = float(self.lr if self.lr is not None else defaults.get("lr", 0.0))
        base_wd = float(
            self.weight_decay
            if self.weight_decay is not None
            else defaults.get("weight_decay", 0.0)
        )
        groups = optimizer.param_groups
        with_names = bool(groups) and "param_names" in groups[0]
        # Reserved groups (empty until their phase) keep their names out of `taken`, so
        # the groups built here get exactly the names they were reserved under.
        reserved = {
            str(g["name"]): i for i, g in enumerate(groups) if g.get(RESERVED) and "name" in g
        }
        taken = {str(g["name"]) for g in groups if "name" in g and not g.get(RESERVED)}
        prefix = f"{self.unit} {time}: " if self.unit else ""
        new = build_groups(todo, base_lr, base_wd, prefix=prefix, taken=taken)
        scheduled = any("initial_lr" in g for g in groups)
        ratio = 1.0
        ref = next((g for g in groups if "initial_lr" in g and float(g["initial_lr"]) != 0.0), None)
        if ref is not None:
            ratio = float(ref["lr"]) / float(ref["initial_lr"])
        indices = []
        for group in new:
            slot = reserved.get(str(group["name"]))
            if slot is not None and _fits(groups[slot], group):
                target = groups[slot]
                target["params"].extend(group["params"])
                if isinstance(target.get("param_names"), list):
                    target["param_names"].extend(group["param_names"])
                del target[RESERVED]
                indices.append(slot)
                self._added.append(list(group["param_names"]))
                continue
            names = group["param_names"] if with_names else group.pop("param_names")
            if scheduled:
                group["initial_lr"] = group["lr"]
                group["lr"] = group["lr"] * ratio
            before = len(optimizer.param_groups)
            optimizer.add_param_group(group)
            for sched in _flatten(self.lr_schedulers):
                _extend_scheduler(sched, before, group)
            indices.append(before)
            self._added.append(list(names))
        return tuple(indices)


def _fits(slot: dict[str, Any], group: dict[str, Any]) -> bool:
    """A reserved group takes a phase's group when it is still empty and was resolved to
    the same lr and weight decay (its lr may have moved with an LR scheduler since)."""
    lr = float(slot.get("initial_lr", slot.get("lr", 0.0)))
    return (
        not slot["params"]
        and math.isclose(lr, float(group["lr"]), rel_tol=1e-9)
        and math.isclose(
            float(slot.get("weight_decay", 0.0)), float(group["weight_decay"]), rel_tol=1e-9
        )
    )


def reserved_groups(
    model: Any,
    rules: RulesLike,
    groups: Sequence[dict[str, Any]],
    *,
    lr: float,
    weight_decay: float = 0.0,
) -> list[dict[str, Any]]:
    """Empty parameter groups for every group the phases of ``rules`` will add to ``groups``.

    ``groups`` are the time-0 groups (``param_groups(model, rules, ...)``) and the model
    is in its time-0 state. The phases are planned in order (nothing is applied) and
    each group a ``Schedule`` would add at a phase is returned empty, with its resolved
    ``lr`` / ``weight_decay``, the name the Schedule will give it and ``RESERVED: True``.
    An optimizer built with them never changes its number of groups: the Schedule fills
    a reserved group at its phase instead of adding one, so LR schedulers built at the
    start (and their checkpoints) cover every group. Files whose phases ``convert``
    modules get no reservation (their new parameters do not exist yet).
    """
    compiled = rules_from(rules)
    unit = compiled.schedule_unit
    scheduled = compiled.program.scheduled
    if unit is None or any(isinstance(st.statement, ast.Convert) for st in scheduled):
        return []
    present = {id(t) for g in groups for t in g["params"]}
    taken = {str(g["name"]) for g in groups if "name" in g}
    with_names = bool(groups) and "param_names" in groups[0]
    plan = rules_at(compiled, unit, 0).plan(model)
    flags = {id(o): p.after for o, p in zip(plan._objects, plan.params)}
    out: list[dict[str, Any]] = []
    for time in compiled.phases():
        if time == 0:
            continue
        plan = rules_at(compiled, unit, time).plan(model)
        pairs = list(zip(plan._objects, plan.params))
        present -= {id(o) for o, p in pairs if flags.get(id(o), p.before) and not p.after}
        came = [(o, p) for o, p in pairs if not flags.get(id(o), p.before) and p.after]
        todo = [(o, p) for o, p in came if id(o) not in present]
        for group in build_groups(
            todo, float(lr), float(weight_decay), prefix=f"{unit} {time}: ", taken=taken
        ):
            present.update(id(t) for t in group["params"])
            group["params"] = []
            group["param_names"] = []
            if not with_names:
                del group["param_names"]
            group[RESERVED] = True
            out.append(group)
        flags.update({id(o): p.after for o, p in pairs})
    return out


def _parameters(model: Any) -> Iterable[Any]:
    params = getattr(model, "parameters", None)
    return params() if callable(params) else ()


def _flatten(schedulers: Iterable[Any]) -> list[Any]:
    """Schedulers, with SequentialLR / ChainedScheduler opened up into their parts."""
    out: list[Any] = []
    for sched in schedulers:
        out.append(sched)
        inner = getattr(sched, "_schedulers", None)
        if isinstance(inner, (list, tuple)):
            out.extend(_flatten(inner))
    return out


def _extend_scheduler(sched: Any, n_before: int, group: dict[str, Any]) -> None:
    """Grow a scheduler's per-group lists by one entry for ``group``.

    A list is only touched when its length is the old group count, so a list that a
    wrapper shares with its parts is extended once.
    """
    values = {
        "base_lrs": group.get("initial_lr", group["lr"]),
        "_last_lr": group["lr"],
    }
    for attr in ("base_lrs", "_last_lr", "lr_lambdas", "min_lrs"):
        current = getattr(sched, attr, None)
        if isinstance(current, list) and len(current) == n_before and current:
            current.append(values.get(attr, current[0]))
