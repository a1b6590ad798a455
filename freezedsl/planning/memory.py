"""How much gradient and optimizer-state memory a freeze saves.

A frozen parameter needs no ``.grad`` and no optimizer state, and torch allocates
both lazily, only for tensors that get gradients: so every frozen element saves its
gradient plus the optimizer's per-element state tensors, all in the parameter's
dtype. The estimate is arithmetic on a Plan (shapes and dtypes, meta models work);
it ignores activations, which depend on the batch and on where the frozen layers sit,
and usually dominate what a freeze saves: :mod:`freezedsl.planning.cost` traces a
whole training step for that (``plan --input SHAPE``).

Optimizer table (what torch 2.x keeps per parameter tensor; the element states have
the parameter's dtype)::

    name                          states per element               0-dim tensors (4 B each)
    sgd                           0                                0
    sgd-momentum (sgdm, nesterov) 1 momentum_buffer                0
    adam, adamw, radam            2 exp_avg, exp_avg_sq            1 step
    adam-amsgrad, adamw-amsgrad   3 + max_exp_avg_sq               1 step
    nadam                         2 exp_avg, exp_avg_sq            2 step, mu_product
    adamax                        2 exp_avg, exp_inf               1 step
    adadelta                      2 square_avg, acc_delta          1 step
    rmsprop                       1 square_avg                     1 step
    rmsprop-momentum              2 + momentum_buffer              1 step
    rmsprop-centered              2 + grad_avg                     1 step
    adagrad                       1 sum                            1 step
    rprop                         2 prev, step_size                1 step
    asgd                          1 ax                             3 step, eta, mu
    lion (lion-pytorch)           1 exp_avg                        0

The 0-dim tensors are float32 (torch's scalar dtype) whatever the parameter dtype.
This module does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from freezedsl.planning.result import Plan

# name -> (state tensors per element, 0-dim state tensors per parameter tensor)
OPTIMIZERS: dict[str, tuple[int, int]] = {
    "sgd": (0, 0),
    "sgd-momentum": (1, 0),
    "adam": (2, 1),
    "adamw": (2, 1),
    "radam": (2, 1),
    "adam-amsgrad": (3, 1),
    "adamw-amsgrad": (3, 1),
    "nadam": (2, 2),
    "adamax": (2, 1),
    "adadelta": (2, 1),
    "rmsprop": (1, 1),
    "rmsprop-momentum": (2, 1),
    "rmsprop-centered": (2, 1),
    "adagrad": (1, 1),
    "rprop": (2, 1),
    "asgd": (1, 3),
    "lion": (1, 0),
}
ALIASES = {"sgdm": "sgd-momentum", "sgd-nesterov": "sgd-momentum", "momentum": "sgd-momentum"}
SCALAR_BYTES = 4  # 0-dim state tensors (step, ...) are float32

# Bytes per element by dtype name (ParamDecision.dtype); torch is asked only for others.
_DTYPE_BYTES = {
    "float64": 8,
    "double": 8,
    "float32": 4,
    "float": 4,
    "float16": 2,
    "half": 2,
    "bfloat16": 2,
    "complex128": 16,
    "complex64": 8,
    "complex32": 4,
    "float8_e4m3fn": 1,
    "float8_e5m2": 1,
    "float8_e4m3fnuz": 1,
    "float8_e5m2fnuz": 1,
    "int64": 8,
    "int32": 4,
    "int16": 2,
    "int8": 1,
    "uint8": 1,
    "bool": 1,
}
_TRAINABLE_KINDS = ("float", "complex", "half", "double", "bfloat")


def optimizer_names() -> list[str]:
    """Every accepted optimizer name, aliases included (for the CLI's choices)."""
    return sorted({*OPTIMIZERS, *ALIASES})


def element_size(dtype: str) -> int:
    """Bytes per element of a dtype named like ``float32`` or ``torch.bfloat16``."""
    name = dtype.replace("torch.", "")
    size = _DTYPE_BYTES.get(name)
    if size is not None:
        return size
    import torch  # an exotic dtype: let torch say

    return int(getattr(torch, name).itemsize)


def _can_train(dtype: str) -> bool:
    name = dtype.replace("torch.", "")
    return name.startswith(_TRAINABLE_KINDS)


@dataclass(frozen=True)
class MemoryEstimate:
    """Gradient and optimizer-state bytes with the plan's freeze, and without it.

    ``grad_bytes`` / ``state_bytes`` are what training the plan's trainable
    parameters allocates; ``saved_*`` is what the frozen ones would have cost.
    ``state_bytes`` includes the 0-dim per-tensor states (``scalar_state_bytes``).
    Weights (``param_bytes``) are the same either way and listed for scale.
    """

    optimizer: str
    states_per_element: int
    scalars_per_tensor: int
    trainable_tensors: int
    trainable_elements: int
    frozen_tensors: int  # floating-point tensors the plan freezes (could have trained)
    frozen_elements: int
    param_bytes: int
    grad_bytes: int
    state_bytes: int
    scalar_state_bytes: int
    saved_grad_bytes: int
    saved_state_bytes: int

    @property
    def total_bytes(self) -> int:
        """Gradients plus optimizer state with the freeze."""
        return self.grad_bytes + self.state_bytes

    @property
    def saved_bytes(self) -> int:
        return self.saved_grad_bytes + self.saved_state_bytes

    @property
    def total_bytes_without_freezing(self) -> int:
        """Gradients plus optimizer state if every floating-point parameter trained."""
        return self.total_bytes + self.saved_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer,
            "states_per_element": self.states_per_element,
            "scalars_per_tensor": self.scalars_per_tensor,
            "trainable_tensors": self.trainable_tensors,
            "trainable_elements": self.trainable_elements,
            "frozen_tensors": self.frozen_tensors,
            "frozen_elements": self.frozen_elements,
            "param_bytes": self.param_bytes,
            "grad_bytes": self.grad_bytes,
            "state_bytes": self.state_bytes,
            "scalar_state_bytes": self.scalar_state_bytes,
            "total_bytes": self.total_bytes,
            "saved_grad_bytes": self.saved_grad_bytes,
            "saved_state_bytes": self.saved_state_bytes,
            "saved_bytes": self.saved_bytes,
            "total_bytes_without_freezing": self.total_bytes_without_freezing,
        }

    def render(self) -> str:
        without = self.total_bytes_without_freezing
        pct = 100.0 * self.saved_bytes / without if without else 0.0
        head = (
            f"memory, gradients and optimizer state only ({self.optimizer}: gradient + "
            f"{self.states_per_element} state tensors per parameter element, "
            f"{self.scalars_per_tensor} scalar states per tensor):"
        )
        parts = f"gradients {_bytes(self.grad_bytes)}, optimizer state {_bytes(self.state_bytes)}"
        lines = [
            head,
            f"  with this freeze:     {_bytes(self.total_bytes):>10}  ({parts})",
            f"  without freezing:     {_bytes(without):>10}",
            f"  saved by the freeze:  {_bytes(self.saved_bytes):>10}  ({pct:.1f}%)",
            f"  weights (either way): {_bytes(self.param_bytes):>10}",
            "  activations are not counted: give --input SHAPE for the whole training step",
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def _bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    return f"{value:.2f} TiB"  # pragma: no cover - unreachable


def estimate(plan: Plan, optimizer: str, *, dtype_bytes: int | None = None) -> MemoryEstimate:
    """Bytes of gradients and optimizer state with ``plan``'s freeze, and saved by it.

    ``optimizer`` is a name from the module table (case-insensitive). Element sizes
    come from each parameter's dtype; ``dtype_bytes`` overrides them all (e.g. 2 to
    estimate a bf16 run from an fp32 or meta model). Integer parameters cannot train
    and count on neither side.
    """
    key = optimizer.strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in OPTIMIZERS:
        from freezedsl.errors import UsageError

        raise UsageError(
            f"unknown optimizer {optimizer!r}",
            hint="one of " + ", ".join(optimizer_names()),
        )
    states, scalars = OPTIMIZERS[key]
    t_tensors = t_elems = t_bytes = 0
    f_tensors = f_elems = f_bytes = 0
    param_bytes = 0
    for p in plan.params:
        size = dtype_bytes if dtype_bytes is not None else element_size(p.dtype)
        param_bytes += p.numel * size
        if not _can_train(p.dtype):
            continue
        if p.after:
            t_tensors += 1
            t_elems += p.numel
            t_bytes += p.numel * size
        else:
            f_tensors += 1
            f_elems += p.numel
            f_bytes += p.numel * size
    scalar_bytes = t_tensors * scalars * SCALAR_BYTES
    return MemoryEstimate(
        optimizer=key,
        states_per_element=states,
        scalars_per_tensor=scalars,
        trainable_tensors=t_tensors,
        trainable_elements=t_elems,
        frozen_tensors=f_tensors,
        frozen_elements=f_elems,
        param_bytes=param_bytes,
        grad_bytes=t_bytes,
        state_bytes=t_bytes * states + scalar_bytes,
        scalar_state_bytes=scalar_bytes,
        saved_grad_bytes=f_bytes,
        saved_state_bytes=f_bytes * states + f_tensors * scalars * SCALAR_BYTES,
    )
