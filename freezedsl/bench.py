"""Measure what a freeze saves: real training steps with the freeze and without.

``freezedsl bench`` and ``benchmarks/gpu_cost.py`` call :func:`measure_step` twice
(once with a plan's trainable flags, once with every floating-point parameter
trainable) on synthetic inputs, with ``output.float().sum()`` as the loss, exactly
the step :func:`freezedsl.planning.cost.estimate_cost` estimates.

* Step time: the median of ``steps`` timed steps after ``warmup`` untimed ones
  (``torch.cuda.synchronize`` around each step on CUDA).
* Peak memory on CUDA: ``torch.cuda.max_memory_allocated()`` over the timed steps,
  after ``reset_peak_memory_stats``, minus the weights (parameters and buffers),
  which are resident either way. The optimizer state built in the warm-up counts.
* Peak memory on CPU (torch keeps no allocation statistics there): one extra step
  traced with :func:`freezedsl.planning.steptrace.trace_step` on the real tensors,
  the same storage accounting the estimate uses, plus inputs and optimizer state.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from freezedsl.errors import UsageError
from freezedsl.planning.steptrace import scalar_loss

O = torch.optim
OPTIMIZER_FACTORIES: dict[str, Callable[[list[torch.Tensor]], torch.optim.Optimizer]] = {
    "sgd": lambda p: O.SGD(p, lr=1e-3),
    "sgd-momentum": lambda p: O.SGD(p, lr=1e-3, momentum=0.9),
    "adam": lambda p: O.Adam(p, lr=1e-4),
    "adamw": lambda p: O.AdamW(p, lr=1e-4),
    "radam": lambda p: O.RAdam(p, lr=1e-4),
    "adam-amsgrad": lambda p: O.Adam(p, lr=1e-4, amsgrad=True),
    "adamw-amsgrad": lambda p: O.AdamW(p, lr=1e-4, amsgrad=True),
    "nadam": lambda p: O.NAdam(p, lr=1e-4),
    "adamax": lambda p: O.Adamax(p, lr=1e-4),
    "adadelta": lambda p: O.Adadelta(p),
    "rmsprop": lambda p: O.RMSprop(p, lr=1e-4),
    "rmsprop-momentum": lambda p: O.RMSprop(p, lr=1e-4, momentum=0.9),
    "rmsprop-centered": lambda p: O.RMSprop(p, lr=1e-4, centered=True),
    "adagrad": lambda p: O.Adagrad(p),
    "rprop": lambda p: O.Rprop(p),
    "asgd": lambda p: O.ASGD(p),
}


@dataclass(frozen=True)
class Measurement:
    """One configuration's measured training step."""

    device: str
    step_seconds: float  # median of the timed steps
    peak_bytes: int  # peak training memory above the weights
    activation_bytes: int | None  # CPU only: traced activation peak (None on CUDA)
    optimizer_state_bytes: int
    grad_bytes: int
    steps: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "step_seconds": self.step_seconds,
            "peak_bytes": self.peak_bytes,
            "activation_bytes": self.activation_bytes,
            "optimizer_state_bytes": self.optimizer_state_bytes,
            "grad_bytes": self.grad_bytes,
            "steps": self.steps,
        }


def input_vocab(model: torch.nn.Module) -> int:
    """Token ids must index the input embedding: HF's, else the first nn.Embedding."""
    get = getattr(model, "get_input_embeddings", None)
    emb = get() if callable(get) else None
    if emb is None:
        emb = next((m for m in model.modules() if isinstance(m, torch.nn.Embedding)), None)
    return int(getattr(emb, "num_embeddings", 2))


def set_trainable(model: torch.nn.Module, trainable: Mapping[str, bool] | None) -> None:
    """Flags from ``trainable`` (None: every floating-point parameter trains)."""
    for name, p in model.named_parameters():
        if p.is_floating_point() or p.is_complex():
            p.requires_grad_(True if trainable is None else bool(trainable.get(name, False)))


def _state_bytes(opt: torch.optim.Optimizer) -> int:
    seen: set[int] = set()
    total = 0
    for state in opt.state.values():
        for v in state.values():
            if isinstance(v, torch.Tensor) and id(v) not in seen:
                seen.add(id(v))
                total += v.numel() * v.element_size()
    return total


def _grad_bytes(model: torch.nn.Module) -> int:
    return sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)


def measure_step(
    model: torch.nn.Module,
    inputs: Sequence[torch.Tensor],
    *,
    optimizer: str = "adamw",
    steps: int = 10,
    warmup: int = 3,
    progress: Callable[[], None] | None = None,
) -> Measurement:
    """Train ``model`` (on the device of ``inputs``) for ``warmup + steps`` steps; time and measure them.

    The model's ``requires_grad`` flags say what trains; the weights change (callers
    pass a model they own). ``progress`` is called after every step.
    """
    from freezedsl.planning.cost import normalize_optimizer

    key = normalize_optimizer(optimizer)
    factory = OPTIMIZER_FACTORIES.get(key)
    if factory is None:
        raise UsageError(f"bench cannot build optimizer {optimizer!r}", hint="one of " + ", ".join(OPTIMIZER_FACTORIES))
    params = [p for p in model.parameters() if p.requires_grad]
    device = inputs[0].device if inputs else next(model.parameters()).device
    cuda = device.type == "cuda"
    opt = factory(params) if params else None

    def step() -> None:
        if opt is not None:
            opt.zero_grad(set_to_none=True)
        loss = scalar_loss(model(*inputs))
        if loss is not None and loss.requires_grad:
            loss.backward()
        if opt is not None:
            opt.step()

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        step()
        if progress:
            progress()
    sync()
    weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(steps):
        sync()
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
        if progress:
            progress()
    grads = _grad_bytes(model)
    state = _state_bytes(opt) if opt is not None else 0
    activations: int | None = None
    if cuda:
        peak = torch.cuda.max_memory_allocated(device) - weights
    else:
        activations, traced_peak = _traced_peak(model, inputs)
        input_bytes = sum(t.numel() * t.element_size() for t in inputs)
        peak = input_bytes + state + traced_peak
    if opt is not None:
        opt.zero_grad(set_to_none=True)
    return Measurement(
        device=str(device),
        step_seconds=statistics.median(times) if times else 0.0,
        peak_bytes=int(peak),
        activation_bytes=activations,
        optimizer_state_bytes=state,
        grad_bytes=grads,
        steps=steps,
    )


def _traced_peak(model: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> tuple[int, int]:
    """(activation peak, step peak with gradients) of one traced step on the real tensors."""
    from freezedsl.planning.steptrace import trace_step

    for p in model.parameters():
        p.grad = None
    tensors = {**dict(model.named_parameters(remove_duplicate=False)), **dict(model.named_buffers(remove_duplicate=False))}
    trace = trace_step(model, tensors, list(inputs), call=model)
    return trace.activation_bytes, trace.step_peak_bytes


def real_inputs(model: torch.nn.Module, specs: Sequence[Any], dtype: torch.dtype | None, device: str) -> list[torch.Tensor]:
    """Synthetic inputs for ``specs`` (InputSpec): ids in [0, the input vocabulary), floats ~ N(0, 1)."""
    from freezedsl.planning.cost import make_inputs

    return make_inputs(specs, dtype, device=device, vocab=input_vocab(model))


class Progress:
    """A one-line step counter on stderr, only when stderr is a terminal."""

    def __init__(self, total: int, label: str = "bench") -> None:
        self.total, self.done, self.label = total, 0, label
        self.enabled = sys.stderr.isatty()

    def __call__(self) -> None:
        self.done += 1
        if self.enabled:
            width = 30
            filled = width * self.done // max(self.total, 1)
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}")
            if self.done >= self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()
