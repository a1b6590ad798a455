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
OPTIMIZER_FACTORIES: dict[str, Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer]] = {
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
    return sum(
        p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None
    )


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
        raise UsageError(
            f"bench cannot build optimizer {optimizer!r}",
            hint="one of " + ", ".join(OPTIMIZER_FACTORIES),
        )
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
    tensors = {
        **dict(model.named_parameters(remove_duplicate=False)),
        **dict(model.named_buffers(remove_duplicate=False)),
    }
    trace = trace_step(model, tensors, list(inputs), call=model)
    return trace.activation_bytes, trace.step_peak_bytes


def real_inputs(
    model: torch.nn.Module, specs: Sequence[Any], dtype: torch.dtype | None, device: str
) -> list[torch.Tensor]:
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
            sys.stderr.write(
                f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
            )
            if self.done >= self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


@dataclass(frozen=True)
class BenchResult:
    """Measured steps with the freeze and without, next to the estimate of the same steps."""

    with_freeze: Measurement
    without_freeze: Measurement
    estimate: Any  # freezedsl.planning.cost.CostEstimate

    def measured_ratio(self, name: str) -> float:
        a, b = getattr(self.with_freeze, name), getattr(self.without_freeze, name)
        return float(a) / b if b else 1.0

    def errors(self) -> dict[str, float]:
        """Estimated minus measured ratio (with freeze / full), and relative errors of the absolute peaks."""
        est = self.estimate
        out = {
            "peak_ratio": est.ratio("peak_bytes") - self.measured_ratio("peak_bytes"),
            "time_ratio": est.ratio("step_time") - self.measured_ratio("step_seconds"),
        }
        for label, m, e in (
            ("with_freeze", self.with_freeze, est.with_freeze),
            ("without_freeze", self.without_freeze, est.without_freeze),
        ):
            out[f"peak_bytes_{label}"] = (
                (e.peak_bytes - m.peak_bytes) / m.peak_bytes if m.peak_bytes else 0.0
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "measured": {
                "with_freeze": self.with_freeze.to_dict(),
                "without_freeze": self.without_freeze.to_dict(),
            },
            "cost": self.estimate.to_dict(),
            "errors": {k: round(v, 4) for k, v in self.errors().items()},
        }

    def render(self) -> str:
        from freezedsl.planning.memory import _bytes

        w, f, est = self.with_freeze, self.without_freeze, self.estimate
        err = self.errors()
        cpu = w.device.startswith("cpu")
        lines = [
            f"measured on {w.device} ({w.steps} steps, median; inputs {', '.join(map(str, est.inputs))}, {est.dtype}, {est.optimizer}):",
            f"  {'':30} {'with freeze':>12} {'full':>12} {'saved':>7} {'estimated':>10}",
            _row(
                "step time",
                f"{w.step_seconds * 1e3:.1f} ms",
                f"{f.step_seconds * 1e3:.1f} ms",
                self.measured_ratio("step_seconds"),
                est.ratio("step_time"),
            ),
            _row(
                "peak training memory" + (" (traced)" if cpu else ""),
                _bytes(w.peak_bytes),
                _bytes(f.peak_bytes),
                self.measured_ratio("peak_bytes"),
                est.ratio("peak_bytes"),
            ),
            (
                f"  estimate error (estimated - measured ratio): peak memory {err['peak_ratio']:+.3f}, "
                f"step time {err['time_ratio']:+.3f}"
            ),
            (
                f"  estimated peak vs measured: with freeze {100 * err['peak_bytes_with_freeze']:+.1f}%, "
                f"full {100 * err['peak_bytes_without_freeze']:+.1f}%"
            ),
        ]
        if cpu:
            lines.append(
                "  (CPU: torch keeps no allocation statistics; memory is one step traced on the real tensors)"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def _row(label: str, a: str, b: str, measured: float, estimated: float) -> str:
    return (
        f"  {label:30} {a:>12} {b:>12} {100 * (1 - measured):6.1f}% {100 * (1 - estimated):9.1f}%"
    )


def run_bench(
    plan: Any,
    model: torch.nn.Module,
    inputs: Sequence[Any],
    *,
    device: str = "cpu",
    steps: int = 10,
    warmup: int = 3,
    dtype: str | None = None,
    optimizer: str = "adamw",
    copy: bool = True,
    progress: bool = True,
) -> BenchResult:
    """Estimate, then measure, ``plan``'s freeze and full fine-tuning of ``model``.

    ``inputs`` as for :func:`freezedsl.planning.cost.estimate_cost`. The steps train a
    deep copy of ``model`` (``copy=False`` trains ``model`` itself: its weights and
    flags change). Weights must be real (not meta).
    """
    import copy as _copy

    from freezedsl.lint.cost import check_expensive_freeze
    from freezedsl.planning.cost import (
        _spec,
        estimate_cost,
        normalize_optimizer,
        torch_dtype,
        trainable_map,
    )

    if normalize_optimizer(optimizer) not in OPTIMIZER_FACTORIES:
        raise UsageError(
            f"bench cannot build optimizer {optimizer!r}",
            hint="one of " + ", ".join(OPTIMIZER_FACTORIES),
        )
    specs = [_spec(i) for i in inputs]
    dev = _device(device)
    if any(p.is_meta for p in model.parameters()):
        raise UsageError(
            "bench needs real weights, not a meta model (build the model without device='meta')"
        )
    estimate = estimate_cost(
        plan,
        model,
        specs,
        dtype=dtype,
        optimizer=optimizer,
        foreach=dev.type == "cuda",
        checks=(check_expensive_freeze,),
    )
    work = _copy.deepcopy(model) if copy else model
    cast = torch_dtype(dtype)
    work.to(device=dev, dtype=cast) if cast is not None else work.to(device=dev)
    work.train()
    tensors = real_inputs(work, specs, cast, str(dev))
    bar = Progress(2 * (steps + warmup)) if progress else None
    measured = {}
    for label, flags in (("with_freeze", trainable_map(plan)), ("without_freeze", None)):
        set_trainable(work, flags)
        measured[label] = measure_step(
            work, tensors, optimizer=optimizer, steps=steps, warmup=warmup, progress=bar
        )
        for p in work.parameters():
            p.grad = None
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return BenchResult(measured["with_freeze"], measured["without_freeze"], estimate)


def _device(name: str) -> torch.device:
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name!r}: expected cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available here (use --device cpu)")
    if dev.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {name!r}: expected cpu, cuda or cuda:N")
    return dev
