"""Training-pipeline helpers: optimizer parameter groups from rules, and schedules.

Two ideas, one module each:

* ``groups``: ``param_groups`` turns a rule file's ``lr`` / ``weight_decay`` statements
  into torch-optimizer parameter groups (``check_phases`` plans every ``at`` phase once).
* ``schedule``: ``Schedule`` drives a rule file's ``at epoch N:`` / ``at step N:``
  statements during training and keeps a live optimizer (and its LR schedulers) in step
  with the model; ``PhaseChange`` is what each call reports; ``reserved_groups`` the
  empty groups that keep an optimizer's group count fixed.

``freezedsl.pipeline`` re-exports both, the public path users and docs import from
(``from freezedsl.pipeline import Schedule, param_groups, reserved_groups``). Modules
inside freezedsl import from the module that owns the name. Neither imports torch.
"""

from __future__ import annotations

from freezedsl.pipeline.groups import check_phases as check_phases
from freezedsl.pipeline.groups import param_groups
from freezedsl.pipeline.schedule import RESERVED, PhaseChange, Schedule, reserved_groups
from freezedsl.pipeline.schedule import STATE_FORMAT as STATE_FORMAT

__all__ = ["RESERVED", "PhaseChange", "Schedule", "param_groups", "reserved_groups"]
