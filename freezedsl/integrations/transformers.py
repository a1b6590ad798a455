"""Hugging Face ``transformers.Trainer`` integration: ``FreezeCallback`` and ``build_optimizer``.

::

    from freezedsl.integrations.transformers import FreezeCallback, build_optimizer

    optimizer = build_optimizer(model, RULES, lr=5e-5, weight_decay=0.01)   # applies time 0
    trainer = Trainer(model=model, args=args, train_dataset=data,
                      optimizers=(optimizer, None), callbacks=[FreezeCallback(RULES)])
    trainer.train()                        # or trainer.train(resume_from_checkpoint=...)

Why the pieces sit where they do (transformers 5.x ``Trainer`` order):

* ``Trainer.__init__`` ends with ``on_init_end``; the Trainer builds its own optimizer
  only later, inside ``train()`` (``create_optimizer``), and calls ``on_train_begin``
  after that *and* after it has loaded a checkpoint's ``optimizer.pt``. So the callback
  applies the rules in force at time 0 in ``on_init_end``: the Trainer's own optimizer
  then never holds a frozen parameter. An optimizer passed as ``optimizers=(opt, None)``
  exists before the Trainer, so ``build_optimizer`` applies time 0 itself.
* ``on_train_begin`` checks the optimizer the run really uses and fails with one
  ``UsageError`` (before any step) when it holds a frozen parameter, misses a trainable
  one, ignores an ``lr`` / ``weight_decay`` statement, or could not be resumed.
* ``on_epoch_begin`` (``at epoch`` files, the epoch from ``state.epoch``) and
  ``on_step_begin`` (``at step`` files, ``state.global_step``) drive the phases through
  ``freezedsl.Schedule``, which edits the optimizer and the LR scheduler.
* Resume: the phase state travels *inside the optimizer's state dict* (key
  ``freezedsl_schedule``, added by an ``Optimizer.state_dict`` post-hook), because the
  Trainer loads ``optimizer.pt`` before any callback hook runs, and its
  ``ExportableState`` callback restore is opt-in and replaces the callback object. A
  load pre-hook replays the saved phases (re-creating the groups they added) just
  before torch checks the saved groups against the optimizer's.
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

try:  # first, so that a missing transformers fails before the slow torch import
    from transformers import TrainerCallback
except ImportError as exc:  # tested in a subprocess without transformers
    raise ImportError(
        "freezedsl.integrations.transformers needs the transformers package: "
        "pip install 'freezedsl[hf]'"
    ) from exc

import torch

from freezedsl.api import Rules, RulesLike, rules_from
from freezedsl.errors import UsageError
from freezedsl.pipeline.groups import param_groups
from freezedsl.pipeline.schedule import PhaseChange, Schedule, reserved_groups
from freezedsl.syntax import ast

__all__ = ["STATE_KEY", "FreezeCallback", "build_optimizer"]

log = logging.getLogger("freezedsl")

#: The key under which the schedule state rides in the optimizer's state dict.
STATE_KEY = "freezedsl_schedule"

_HOW = (
    "build it with freezedsl.integrations.transformers.build_optimizer(model, rules, lr=..., "
    "weight_decay=...) and pass Trainer(optimizers=(optimizer, None))"
)

# Optimizers made by build_optimizer: rules sha256, the base lr / weight decay, and
# whether its reserved groups cover every group a phase adds.
_BUILT: weakref.WeakKeyDictionary[Any, tuple[str, float, float, bool]] = weakref.WeakKeyDictionary()


def build_optimizer(
    model: Any,
    rules: RulesLike,
    *,
    lr: float,
    weight_decay: float = 0.0,
    optimizer_cls: Any = None,
    **optimizer_kwargs: Any,
) -> Any:
    """Apply the rules in force at time 0 to ``model`` and build its optimizer.

    The groups are ``freezedsl.param_groups(model, rules, lr=lr,
    weight_decay=weight_decay)``: trainable parameters only, with the rules' ``lr`` /
    ``weight_decay`` / ``lr decay`` statements resolved against ``lr`` and
    ``weight_decay``; then one empty group for every group a later phase will fill
    (``freezedsl.pipeline.reserved_groups``), so the optimizer's number of groups never
    changes and the LR scheduler the Trainer builds covers them all, also on resume.
    ``optimizer_cls`` defaults to ``torch.optim.AdamW``; it gets ``lr=lr,
    weight_decay=weight_decay`` and ``optimizer_kwargs`` (``betas=...``). Pass the result
    as ``Trainer(optimizers=(optimizer, None))`` together with ``FreezeCallback(rules)``.
    """
    compiled = rules_from(rules)
    compiled.at(epoch=0, step=0).apply(model)
    groups = param_groups(model, compiled, lr=lr, weight_decay=weight_decay)
    reserved = reserved_groups(model, compiled, groups, lr=lr, weight_decay=weight_decay)
    cls = torch.optim.AdamW if optimizer_cls is None else optimizer_cls
    optimizer = cls(groups + reserved, lr=lr, weight_decay=weight_decay, **optimizer_kwargs)
    covers = not any(isinstance(st.statement, ast.Convert) for st in compiled.program.scheduled)
    _BUILT[_inner(optimizer)] = (compiled.sha256, float(lr), float(weight_decay), covers)
    return optimizer


class FreezeCallback(TrainerCallback):
    """Apply ``rules`` to the Trainer's model and keep its optimizer in step with the phases.

    ``lr`` / ``weight_decay`` are the base values that ``lr 0.1x ...`` factors resolve
    against (for the check and for groups a phase adds); by default those given to
    ``build_optimizer``, else the Trainer's ``learning_rate`` / ``weight_decay``. Pass
    the callback to ``Trainer(callbacks=[...])`` (not ``add_callback`` later): it must
    see the model before the optimizer is built. Every phase change is logged on the
    ``freezedsl`` logger and kept in ``changes``; ``schedule`` is the live Schedule.
    """

    def __init__(
        self, rules: RulesLike, *, lr: float | None = None, weight_decay: float | None = None
    ) -> None:
        super().__init__()
        self.rules: Rules = rules_from(rules)
        self.lr = lr
        self.weight_decay = weight_decay
        self.schedule: Schedule | None = None
        self.changes: list[PhaseChange] = []
        self._given_optimizer: Any = None  # optimizers=(opt, ...) as seen in on_init_end
        self._given_scheduler: Any = None
        self._hooked: Any = None
        self._handles: list[Any] = []

    # ------------------------------------------------------------ hooks
    def on_init_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        model = kwargs.get("model")
        if model is None:
            raise UsageError(
                "FreezeCallback needs the Trainer's model; Trainer(model=...) was None"
            )
        self.schedule = Schedule(self.rules, model, lr=self.lr, weight_decay=self.weight_decay)
        optimizer = kwargs.get("optimizer")
        if optimizer is not None:
            self._given_optimizer = _inner(optimizer)
            self._given_scheduler = kwargs.get("lr_scheduler")
            self._attach(self._given_optimizer, [self._given_scheduler], args, trainer_built=False)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        schedule = self.schedule
        if schedule is None:
            raise UsageError(
                "FreezeCallback was added after Trainer(...) was built, so the rules were not "
                "applied before the optimizer",
                hint="pass it as Trainer(..., callbacks=[FreezeCallback(rules)])",
            )
        model = kwargs.get("model")
        if model is not None and model is not schedule.model:
            raise UsageError(
                "the Trainer trains another model than the one FreezeCallback froze "
                "(Trainer(model_init=...) builds the model inside train(), after the callback)",
                hint="build the model first and pass Trainer(model=model)",
            )
        optimizer = kwargs.get("optimizer")
        if optimizer is None:
            raise UsageError("FreezeCallback found no optimizer at the start of training")
        inner = _inner(optimizer)
        trainer_built = inner is not self._given_optimizer
        self._attach(inner, [kwargs.get("lr_scheduler")], args, trainer_built=trainer_built)
        self._check(inner, args, trainer_built=trainer_built)

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        schedule = self.schedule
        if schedule is not None and schedule.unit == "epoch":
            # state.epoch is the progress (1.5 = half-way through the second epoch); an
            # epoch begins at a whole number, and a resumed one part-way through it.
            self._record(schedule.epoch_start(math.floor(float(state.epoch or 0) + 1e-9)))

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        schedule = self.schedule
        if schedule is not None and schedule.unit == "step":
            self._record(schedule.step(int(state.global_step)))

    # ------------------------------------------------------------ optimizer
    def _attach(
        self, optimizer: Any, schedulers: Iterable[Any], args: Any, *, trainer_built: bool
    ) -> None:
        """Attach ``optimizer`` (the torch optimizer, not Accelerate's wrapper) and the LR
        schedulers that drive it, and hook its state_dict / load_state_dict."""
        schedule = self.schedule
        assert schedule is not None
        built = _BUILT.get(optimizer)
        if built is not None and built[0] != self.rules.sha256:
            raise UsageError(
                "the optimizer was built by build_optimizer with other rules than FreezeCallback's "
                f"(sha256 {built[0][:12]}... vs {self.rules.sha256[:12]}...)",
                hint="pass the same rules (file or text) to both",
            )
        for what, mine_value, index in (("lr", self.lr, 1), ("weight_decay", self.weight_decay, 2)):
            if built is not None and mine_value is not None and mine_value != built[index]:
                raise UsageError(
                    f"FreezeCallback({what}={mine_value:g}) differs from the {what} the optimizer "
                    f"was built with (build_optimizer({what}={built[index]:g}))",
                    hint=f"leave {what} out of FreezeCallback: it uses build_optimizer's",
                )
        if self.lr is not None or built is not None or trainer_built:
            schedule.lr = (
                self.lr if self.lr is not None else (built[1] if built else args.learning_rate)
            )
        if self.weight_decay is not None or built is not None or trainer_built:
            schedule.weight_decay = (
                self.weight_decay
                if self.weight_decay is not None
                else (built[2] if built else args.weight_decay)
            )
        # The Trainer's scheduler drives Accelerate's wrapper, a scheduler passed to the
        # Trainer the torch optimizer itself; both share param_groups and state, and
        # Schedule.attach wants the object the schedulers drive.
        mine = [
            s
            for s in schedulers
            if s is not None and _inner(getattr(s, "optimizer", None)) is optimizer
        ]
        target = mine[0].optimizer if mine else optimizer
        mine = [s for s in mine if s.optimizer is target]
        schedule.attach(target, lr_schedulers=mine)
        if self._hooked is not optimizer:
            for handle in self._handles:
                handle.remove()
            self._handles = [
                optimizer.register_state_dict_post_hook(self._save_hook),
                optimizer.register_load_state_dict_pre_hook(self._load_hook),
            ]
            self._hooked = optimizer

    def _save_hook(self, optimizer: Any, state_dict: dict[str, Any]) -> dict[str, Any]:
        if self.schedule is not None:
            state_dict[STATE_KEY] = self.schedule.state_dict()
        return state_dict

    def _load_hook(self, optimizer: Any, state_dict: dict[str, Any]) -> dict[str, Any]:
        """Bring the schedule (model flags and optimizer groups) to the saved phase first,
        so the saved groups fit; torch's own checks follow."""
        saved = state_dict.pop(STATE_KEY, None)
        schedule = self.schedule
        if saved is None or schedule is None:
            return state_dict
        current = schedule.state_dict()
        if _same_phases(saved, current):  # Accelerate's own state_dict/load round trip
            return state_dict
        schedule.load_state_dict(saved)
        return state_dict

    def _check(self, optimizer: Any, args: Any, *, trainer_built: bool) -> None:
        """One clear error before the first step for an optimizer that would not follow the rules."""
        schedule = self.schedule
        assert schedule is not None
        model = schedule.model
        names = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
        grouped = {id(p) for g in optimizer.param_groups for p in g["params"]}
        frozen = [
            names.get(id(p), "?")
            for g in optimizer.param_groups
            for p in g["params"]
            if not p.requires_grad
        ]
        if frozen:
            raise UsageError(
                f"the optimizer holds {len(frozen)} parameter tensors the rules freeze "
                f"({_some(frozen)}); momentum and weight decay would keep moving them",
                hint="build the optimizer after the rules are applied: "
                + (
                    "pass FreezeCallback in Trainer(callbacks=[...]) and let the Trainer build it, or "
                    if not trainer_built
                    else ""
                )
                + _HOW,
            )
        missing = [
            n for n, p in model.named_parameters() if p.requires_grad and id(p) not in grouped
        ]
        if missing:
            raise UsageError(
                f"{len(missing)} trainable parameter tensors are in no optimizer group "
                f"({_some(missing)}); they would never train",
                hint=_HOW,
            )
        if _BUILT.get(optimizer) is None:
            self._check_settings(optimizer, names, trainer_built=trainer_built)
        strategy = getattr(args, "save_strategy", "no")
        saves = str(getattr(strategy, "value", strategy)) != "no" and not getattr(
            args, "save_only_model", False
        )
        changing = [
            st
            for st in self.rules.program.scheduled
            if isinstance(st.statement, (ast.Rule, ast.Convert))
        ]
        if trainer_built and saves and changing:
            times = sorted({st.at for st in changing})
            raise UsageError(
                f"{self.rules.path or 'the rules'} change the trainable set at "
                f"{schedule.unit} {', '.join(map(str, times))}, and the Trainer's own "
                "optimizer cannot resume from a checkpoint saved after such a change (it is built "
                "from requires_grad before the checkpoint's phase is known)",
                hint=_HOW + " (or save_strategy='no')",
            )
        grows = any(
            isinstance(st.statement, ast.Rule) and st.statement.action == "unfreeze"
            for st in self.rules.program.scheduled
        )
        built = _BUILT.get(optimizer)
        reserved = built is not None and built[3]
        if grows and saves and self._given_scheduler is None and not reserved:
            raise UsageError(
                f"a phase of {self.rules.path or 'the rules'} unfreezes parameters (a new optimizer "
                "group), and the LR scheduler the Trainer builds inside train() would not know that "
                "group when resuming from a later checkpoint",
                hint="pass the scheduler too: Trainer(optimizers=(optimizer, scheduler)), e.g. "
                "transformers.get_linear_schedule_with_warmup(optimizer, warmup, total_steps) "
                "(or save_strategy='no')",
            )

    def _check_settings(
        self, optimizer: Any, names: dict[int, str], *, trainer_built: bool
    ) -> None:
        """Every lr / weight_decay a statement sets must be what the optimizer uses.

        Only the groups the optimizer started with are checked (a phase's groups come from
        the Schedule itself), against the rules in force at time 0.
        """
        schedule = self.schedule
        assert schedule is not None
        plan = self.rules.at(epoch=0, step=0).plan(schedule.model)
        decided = {id(t): d for t, d in zip(plan._objects, plan.params)}
        defaults = getattr(optimizer, "defaults", {})
        base_lr = float(schedule.lr if schedule.lr is not None else defaults.get("lr", 0.0))
        base_wd = float(
            schedule.weight_decay
            if schedule.weight_decay is not None
            else defaults.get("weight_decay", 0.0)
        )
        original = optimizer.param_groups[: len(optimizer.param_groups) - len(schedule._added)]
        for group in original:
            lr = float(group.get("initial_lr", group.get("lr", 0.0)))
            wd = float(group.get("weight_decay", 0.0))
            for p in group["params"]:
                d = decided.get(id(p))
                if d is None:
                    continue
                for what, factor, base, have in (
                    ("lr", d.lr, base_lr, lr),
                    ("weight_decay", d.weight_decay, base_wd, wd),
                ):
                    if factor is None:
                        continue
                    want = factor.resolve(base)
                    if not math.isclose(want, have, rel_tol=1e-6, abs_tol=1e-12):
                        who = "the Trainer's own optimizer" if trainer_built else "the optimizer"
                        raise UsageError(
                            f"{who} ignores the rules' {what} statements: {names.get(id(p), '?')} "
                            f"has {what} {have:g}, the rules give {want:g}",
                            hint=_HOW,
                        )

    # ------------------------------------------------------------ internals
    def _record(self, change: PhaseChange) -> None:
        if change.plan is None:
            return
        self.changes.append(change)
        if change:
            log.info(
                "freezedsl: %s %d: %d tensors unfrozen, %d frozen, %d optimizer groups added",
                change.unit,
                change.time,
                len(change.unfrozen),
                len(change.frozen),
                len(change.added_groups),
            )


def _inner(optimizer: Any) -> Any:
    """The torch optimizer inside wrappers such as Accelerate's ``AcceleratedOptimizer``
    (itself a ``torch.optim.Optimizer`` subclass holding the real one as ``.optimizer``)."""
    for _ in range(4):
        inner = getattr(optimizer, "optimizer", None)
        if not isinstance(inner, torch.optim.Optimizer):
            break
        optimizer = inner
    return optimizer


def _same_phases(saved: dict[str, Any], current: dict[str, Any]) -> bool:
    keys = ("format", "unit", "rules_sha256", "history", "added_groups")
    return all(saved.get(k) == current.get(k) for k in keys)


def _some(names: Sequence[str]) -> str:
    shown = ", ".join(names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")
