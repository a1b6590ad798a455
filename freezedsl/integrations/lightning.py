"""A Lightning callback that applies a rule file and drives its ``at`` schedule.

::

    from freezedsl.integrations.lightning import FreezeCallback

    class Model(L.LightningModule):
        def configure_optimizers(self):
            return torch.optim.AdamW(freezedsl.param_groups(self, RULES, lr=1e-3))

    trainer = L.Trainer(callbacks=[FreezeCallback(RULES, lr=1e-3)])

Hook order (Lightning 2.x) and what the callback does in each:

* ``setup("fit")`` -- before ``configure_optimizers``: applies the rules in force at
  time 0 to the LightningModule, so ``freezedsl.param_groups`` sees the frozen model.
  Rules name parameters as the LightningModule does (``net.fc.weight`` when the
  network is ``self.net``).
* checkpoint restore of callback state -- kept until the optimizer exists.
* ``on_fit_start`` -- after ``configure_optimizers``, before Lightning loads the
  optimizer's checkpoint state: attaches ``trainer.optimizers[0]`` and its LR
  schedulers, and on resume replays the saved phases (re-creating added parameter
  groups) so the optimizer state fits.
* ``on_train_epoch_start`` (``at epoch`` files, ``trainer.current_epoch``) or
  ``on_train_batch_start`` (``at step`` files, ``trainer.global_step``) -- phase changes.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from freezedsl.api import RulesLike, rules_from
from freezedsl.errors import UsageError
from freezedsl.pipeline.schedule import PhaseChange, Schedule

__all__ = ["FreezeCallback"]

log = logging.getLogger("freezedsl")


class FreezeCallback(Callback):
    """Apply ``rules`` to the LightningModule and keep the optimizer in step with its phases.

    ``lr`` / ``weight_decay`` are the base values that ``lr 0.1x ...`` factors resolve
    against for parameter groups a phase adds; by default the optimizer's
    ``defaults``. Only the first optimizer is edited. Every phase change is logged on
    the ``freezedsl`` logger and kept in ``changes``.
    """

    def __init__(
        self, rules: RulesLike, *, lr: float | None = None, weight_decay: float | None = None
    ) -> None:
        super().__init__()
        self.rules = rules_from(rules)
        self.lr = lr
        self.weight_decay = weight_decay
        self.schedule: Schedule | None = None
        self.changes: list[PhaseChange] = []
        self._pending: dict[str, Any] | None = None

    # ------------------------------------------------------------ hooks
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if self.schedule is None or self.schedule.model is not pl_module:
            self.schedule = Schedule(
                self.rules, pl_module, lr=self.lr, weight_decay=self.weight_decay
            )

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        schedule = self._schedule()
        if trainer.optimizers:
            optimizer = trainer.optimizers[0]
            if schedule.optimizer is not optimizer:
                schedulers = [
                    config.scheduler
                    for config in trainer.lr_scheduler_configs
                    if getattr(config.scheduler, "optimizer", None) is optimizer
                ]
                schedule.attach(optimizer, lr_schedulers=schedulers)
        if self._pending is not None:
            state, self._pending = self._pending, None
            schedule.load_state_dict(state)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        schedule = self._schedule()
        if schedule.unit == "epoch":
            self._record(schedule.epoch_start(trainer.current_epoch))

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        schedule = self.schedule
        if schedule is not None and schedule.unit == "step":
            self._record(schedule.step(trainer.global_step))

    # ------------------------------------------------------------ checkpoint state
    def state_dict(self) -> dict[str, Any]:
        if self._pending is not None:
            return dict(self._pending)
        return self.schedule.state_dict() if self.schedule is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        if self.schedule is not None and self.schedule.optimizer is not None:
            self.schedule.load_state_dict(state_dict)  # strategies that restore after setup
        else:
            self._pending = dict(state_dict)  # applied in on_fit_start, once the optimizer exists

    # ------------------------------------------------------------ internals
    def _schedule(self) -> Schedule:
        if self.schedule is None:
            raise UsageError(
                "FreezeCallback was not set up; pass it to Trainer(callbacks=[...]) before fit"
            )
        return self.schedule

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
