"""What a freeze costs and saves in one training step: compute and memory, before training.

Freezing saves far more than gradients and optimizer state: backward stops at the
earliest op (in forward order) that reads a trainable parameter, and activations that
no op after that point needs are never kept. :func:`estimate_cost` traces one step
(forward, ``output.float().sum()`` as the loss, backward) on the ``meta`` device with
:mod:`freezedsl.planning.steptrace`, once with the plan's freeze and once with every
floating-point parameter trainable (full fine-tuning), and reports both.

Nothing of the user's model changes: the trace runs the model through
``torch.func.functional_call`` with meta copies of its parameters and buffers (in the
requested dtype, ``requires_grad`` from the plan), so a real model's weights are
never copied and a meta model works the same.

Peak training memory (``peak_bytes``, what a GPU's ``max_memory_allocated`` shows
above the resident weights once the optimizer has state) is modelled as

    inputs + optimizer state + max(step peak of activations and gradients,
                                   gradients + optimizer-step temporaries)

In 16 bits, attention runs as a GPU's fused kernels would (FlashAttention or
memory-efficient attention: no L x L matrices kept; see ``steptrace.fused_attention``).
The temporaries of torch's foreach Adam-family step are one extra copy of the
trainable elements (the square root of the second moment). Step time is a roofline
sum over ops, ``max(flops / balance, bytes moved, launch floor)`` (see ``BALANCE``),
plus the optimizer's memory traffic; only ratios of it mean anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from freezedsl.errors import UsageError
from freezedsl.planning.memory import ALIASES, OPTIMIZERS, SCALAR_BYTES, _bytes, optimizer_names

if TYPE_CHECKING:
    import torch

    from freezedsl.planning.result import Plan

# A check run on a finished estimate: (plan, model, estimate, dtype=, optimizer=, balance=,
# foreach=) -> diagnostics for ``CostEstimate.findings`` (FZ340: freezedsl.lint.cost).
CostCheck = Callable[..., "list[Any]"]

DTYPES = {
    "bf16": "bfloat16",
    "fp16": "float16",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "float16": "float16",
    "float32": "float32",
}
DEFAULT_OPTIMIZER = "adamw"
# The roofline machine: FLOPs per byte a GPU sustains (about 600 TFLOP/s of 16-bit
# matmul against 4 TB/s of memory; fp32 matmuls run far slower), and the bytes it could
# move in one kernel launch (about 5 us), the least any op costs.
BALANCE = {2: 150.0, 4: 30.0}
LAUNCH_BYTES = 20e6


@dataclass(frozen=True)
class InputSpec:
    """One positional input: a shape and whether it holds token ids (int64) or floats."""

    shape: tuple[int, ...]
    ids: bool = False

    @classmethod
    def parse(cls, text: str, *, ids: bool = False) -> InputSpec:
        """``128x3x224x224`` (``*`` and ``,`` also separate dimensions)."""
        parts = text.strip().lower().replace("*", "x").replace(",", "x").split("x")
        try:
            shape = tuple(int(p) for p in parts)
        except ValueError:
            shape = ()
        if not shape or any(d <= 0 for d in shape):
            flag = "--input-ids" if ids else "--input"
            raise UsageError(
                f"{flag} {text!r}: expected a shape of positive integers like 128x3x224x224"
            )
        return cls(shape, ids)

    def __str__(self) -> str:
        return ("ids " if self.ids else "") + "x".join(map(str, self.shape))


@dataclass(frozen=True)
class StepCost:
    """One training step's cost. Bytes exclude the weights, which are resident either way."""

    trainable_elements: int
    forward_flops: int
    backward_flops: int
    activation_bytes: int  # peak of activations + backward buffers (parameter grads excluded)
    saved_bytes: int  # what autograd keeps from the forward for the backward
    forward_peak_bytes: int
    grad_bytes: int
    optimizer_state_bytes: int
    input_bytes: int
    peak_bytes: int  # modelled peak training memory above the weights (see module doc)
    step_time: float  # roofline time in byte units: compare ratios only
    backward_stops_at: str | None  # module (or model attribute) of the first trainable parameter
    backward_stop_param: str | None  # that parameter: the reason backward reaches there
    backward_skipped_ops: int  # forward ops before it: no backward for them
    forward_ops: int
    value_guesses: int = 0  # values the model read from meta tensors (answered True / 1)
    # parameter name -> (forward op number, forward FLOPs before it) of its first use
    first_use: Mapping[str, tuple[int, int]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def flops(self) -> int:
        return self.forward_flops + self.backward_flops

    def to_dict(self) -> dict[str, Any]:
        return {
            "forward_flops": self.forward_flops,
            "backward_flops": self.backward_flops,
            "activation_bytes": self.activation_bytes,
            "saved_bytes": self.saved_bytes,
            "forward_peak_bytes": self.forward_peak_bytes,
            "grad_bytes": self.grad_bytes,
            "optimizer_state_bytes": self.optimizer_state_bytes,
            "input_bytes": self.input_bytes,
            "peak_bytes": self.peak_bytes,
            "step_time": round(self.step_time),
            "trainable_elements": self.trainable_elements,
            "backward_stops_at": self.backward_stops_at,
            "backward_stop_param": self.backward_stop_param,
            "backward_skipped_ops": self.backward_skipped_ops,
            "forward_ops": self.forward_ops,
            "value_guesses": self.value_guesses,
        }


@dataclass(frozen=True)
class CostEstimate:
    """A step with the plan's freeze and with full fine-tuning, side by side."""

    with_freeze: StepCost
    without_freeze: StepCost
    inputs: tuple[InputSpec, ...]
    dtype: str
    optimizer: str
    findings: list[Any] = field(default_factory=list)  # FZ340 diagnostics (freezedsl.lint.cost)

    def ratio(self, name: str) -> float:
        """with / without for a StepCost field or property (1.0 when both are 0)."""
        a, b = getattr(self.with_freeze, name), getattr(self.without_freeze, name)
        return float(a) / b if b else 1.0

    def saving(self, name: str) -> float:
        """Percent saved by the freeze."""
        return 100.0 * (1.0 - self.ratio(name))

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [str(i) for i in self.inputs],
            "dtype": self.dtype,
            "optimizer": self.optimizer,
            "with_freeze": self.with_freeze.to_dict(),
            "without_freeze": self.without_freeze.to_dict(),
            "ratio": {
                k: round(self.ratio(k), 4)
                for k in ("peak_bytes", "step_time", "flops", "activation_bytes")
            },
            "findings": [d.format() for d in self.findings],
        }

    def render(self) -> str:
        w, f = self.with_freeze, self.without_freeze
        rows = [
            ("forward FLOPs", w.forward_flops, f.forward_flops, _flops),
            ("backward FLOPs", w.backward_flops, f.backward_flops, _flops),
            ("peak activations", w.activation_bytes, f.activation_bytes, _bytes),
            ("gradients", w.grad_bytes, f.grad_bytes, _bytes),
            (
                f"optimizer state ({self.optimizer})",
                w.optimizer_state_bytes,
                f.optimizer_state_bytes,
                _bytes,
            ),
            ("peak training memory", w.peak_bytes, f.peak_bytes, _bytes),
            ("step time (roofline)", w.step_time, f.step_time, None),
        ]
        ins = ", ".join(str(i) for i in self.inputs)
        lines = [
            f"cost of one training step (inputs {ins}, {self.dtype}; estimated on the meta device, weights excluded):",
            f"  {'':28} {'with freeze':>12} {'full':>12} {'saved':>7}",
        ]
        for label, a, b, fmt in rows:
            pct = 100.0 * (1 - a / b) if b else 0.0
            sa, sb = (fmt(int(a)), fmt(int(b))) if fmt else (f"{a / b:.2f}x" if b else "-", "1.00x")
            lines.append(f"  {label:28} {sa:>12} {sb:>12} {pct:6.1f}%")
        lines.append("  " + _stop_line(w, "with freeze"))
        lines.append("  " + _stop_line(f, "full"))
        if w.value_guesses or f.value_guesses:
            lines.append(
                f"  note: the model read {max(w.value_guesses, f.value_guesses)} value(s) from tensors "
                "(.item(), `if tensor:`); meta tensors have none, so the estimate took True / 1"
            )
        lines += ["  " + d.format() for d in self.findings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def _stop_line(s: StepCost, label: str) -> str:
    if s.backward_stop_param is None:
        return f"backward ({label}): none (no trainable parameter is used)"
    return (
        f"backward ({label}) stops at {s.backward_stops_at or '(model)'}: {s.backward_stop_param} is trainable; "
        f"{s.backward_skipped_ops} of {s.forward_ops} forward ops need no backward"
    )


def _flops(n: int) -> str:
    value = float(n)
    for unit in ("", "K", "M", "G", "T"):
        if value < 1000 or unit == "T":
            return f"{value:.0f}" if unit == "" else f"{value:.2f} {unit}"
        value /= 1000
    return f"{value:.2f} P"  # pragma: no cover - unreachable


def normalize_optimizer(name: str | None) -> str:
    key = (name or DEFAULT_OPTIMIZER).strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in OPTIMIZERS:
        raise UsageError(
            f"unknown optimizer {name!r}", hint="one of " + ", ".join(optimizer_names())
        )
    return key


def torch_dtype(name: str | None) -> torch.dtype | None:
    """``bf16``/``fp16``/``fp32`` (or full names) as a torch dtype; None keeps the model's."""
    if name is None:
        return None
    import torch

    key = DTYPES.get(name.strip().lower())
    if key is None:
        raise UsageError(f"--dtype {name!r}: expected one of bf16, fp16, fp32")
    return getattr(torch, key)


def meta_state(
    model: torch.nn.Module, trainable: Mapping[str, bool], dtype: torch.dtype | None
) -> dict[str, torch.Tensor]:
    """Meta copies of every parameter and buffer (by every name, ties shared), flags from ``trainable``."""
    import torch

    out: dict[str, torch.Tensor] = {}
    made: dict[int, torch.Tensor] = {}
    named = [
        *model.named_parameters(remove_duplicate=False),
        *model.named_buffers(remove_duplicate=False),
    ]
    for name, t in named:
        copy = made.get(id(t))
        if copy is None:
            cast = dtype if dtype is not None and t.is_floating_point() else t.dtype
            copy = torch.empty(t.shape, dtype=cast, device="meta")
            if (
                isinstance(t, torch.nn.Parameter)
                and trainable.get(name, False)
                and copy.is_floating_point()
            ):
                copy.requires_grad_(True)
            made[id(t)] = copy
        out[name] = copy
    return out


def make_inputs(
    specs: Sequence[InputSpec], dtype: torch.dtype | None, device: Any = "meta", vocab: int = 2
) -> list[torch.Tensor]:
    """Tensors for ``specs``: token ids int64 in [0, vocab), others random floats."""
    import torch

    out = []
    for spec in specs:
        if spec.ids:
            out.append(
                torch.randint(0, max(vocab, 1), spec.shape, device=device)
                if device != "meta"
                else torch.empty(spec.shape, dtype=torch.int64, device="meta")
            )
        else:
            out.append(torch.randn(spec.shape, dtype=dtype or torch.float32, device=device))
    return out


def optimizer_state_bytes(optimizer: str, trainable: Sequence[tuple[int, int]]) -> int:
    """State bytes for trainable tensors given as (elements, bytes per element)."""
    states, scalars = OPTIMIZERS[optimizer]
    return sum(n * size * states + scalars * SCALAR_BYTES for n, size in trainable)


def step_cost(
    model: torch.nn.Module,
    trainable: Mapping[str, bool],
    inputs: Sequence[InputSpec],
    *,
    dtype: torch.dtype | None = None,
    optimizer: str = DEFAULT_OPTIMIZER,
    balance: float | None = None,
    foreach: bool = True,
) -> StepCost:
    """Trace one step on the meta device with ``trainable`` (parameter name -> flag)."""
    from freezedsl.planning.steptrace import trace_step

    tensors = meta_state(model, trainable, dtype)
    meta_inputs = make_inputs(inputs, dtype)
    width = next((t.element_size() for t in tensors.values() if t.is_floating_point()), 4)
    if balance is None:
        balance = BALANCE.get(width, BALANCE[4])
    trace = trace_step(
        model, tensors, meta_inputs, balance=balance, floor=LAUNCH_BYTES, fused=width == 2
    )
    seen: set[int] = set()
    train: list[tuple[int, int]] = []
    for t in tensors.values():
        if t.requires_grad and id(t) not in seen:
            seen.add(id(t))
            train.append((t.numel(), t.element_size()))
    opt = normalize_optimizer(optimizer)
    state = optimizer_state_bytes(opt, train)
    trainable_bytes = sum(n * s for n, s in train)
    temporaries = trainable_bytes if foreach and OPTIMIZERS[opt][0] >= 2 else 0
    input_bytes = sum(t.numel() * t.element_size() for t in meta_inputs)
    peak = input_bytes + state + max(trace.step_peak_bytes, trace.grad_bytes + temporaries)
    # optimizer step traffic: read grad and each state, write each state and the weight
    opt_traffic = sum(n * s * (2 + 2 * OPTIMIZERS[opt][0]) for n, s in train)
    stop = trace.first_trainable
    return StepCost(
        trainable_elements=sum(n for n, _ in train),
        forward_flops=trace.forward_flops,
        backward_flops=trace.backward_flops,
        activation_bytes=trace.activation_bytes,
        saved_bytes=trace.saved_bytes,
        forward_peak_bytes=trace.forward_peak_bytes,
        grad_bytes=trace.grad_bytes,
        optimizer_state_bytes=state,
        input_bytes=input_bytes,
        peak_bytes=peak,
        step_time=trace.roofline + opt_traffic,
        backward_stops_at=stop.rpartition(".")[0] if stop else None,
        backward_stop_param=stop,
        backward_skipped_ops=trace.first_trainable_op or 0,
        forward_ops=trace.forward_ops,
        value_guesses=trace.guesses,
        first_use=trace.first_use,
    )


def trainable_map(plan: Plan) -> dict[str, bool]:
    """Every parameter name (aliases of tied tensors included) -> trainable after the plan."""
    return {alias: p.after for p in plan.params for alias in p.aliases}


def estimate_cost(
    plan: Plan,
    model: torch.nn.Module,
    inputs: Any,
    *,
    dtype: str | None = None,
    optimizer: str | None = None,
    balance: float | None = None,
    foreach: bool = True,
    checks: Sequence[CostCheck] = (),
) -> CostEstimate:
    """Estimate one training step of ``model`` with ``plan``'s freeze and without it.

    ``inputs``: one input or a list of positional inputs, each an :class:`InputSpec`, a shape tuple (floats),
    a string ``"128x3x224x224"`` (``"ids:8x512"`` for int64 token ids) or an example
    tensor (only its shape and kind count: integer tensors are token ids). ``dtype``
    (``bf16``/``fp16``/``fp32``, default: the model's) casts weights and float inputs
    as ``model.to(dtype)`` would. ``foreach`` models the temporaries of torch's
    multi-tensor optimizer step (its default on CUDA; CPU steps loop over tensors).
    Each of ``checks`` (``check(plan, model, estimate, **options)`` -> diagnostics) adds
    its findings: the callers pass the FZ340 check of :mod:`freezedsl.lint.cost`
    (planning never imports the linter, which sits above it).
    """
    specs = tuple(_spec(i) for i in as_inputs(inputs))
    if not specs:
        raise UsageError(
            "the cost estimate needs at least one input shape (e.g. --input 8x3x224x224)"
        )
    cast = torch_dtype(dtype)
    opt = normalize_optimizer(optimizer)
    with_map = trainable_map(plan)
    full_map = dict.fromkeys(with_map, True)
    kw: dict[str, Any] = {"dtype": cast, "optimizer": opt, "balance": balance, "foreach": foreach}
    try:
        with_freeze = step_cost(model, with_map, specs, **kw)
        without = step_cost(model, full_map, specs, **kw)
    except UsageError:
        raise
    except Exception as exc:  # the model's forward rejected these inputs
        raise UsageError(
            f"the model's forward failed on inputs {', '.join(map(str, specs))} on the meta device: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            hint="give shapes the model accepts (--input per positional input, --input-ids for token ids)",
        ) from exc
    result = CostEstimate(
        with_freeze, without, specs, str(cast or _model_dtype(model)).replace("torch.", ""), opt
    )
    for check in checks:
        result.findings.extend(check(plan, model, result, **kw))
    return result


def as_inputs(example_inputs: Any) -> list[Any]:
    """One input (a shape tuple, a string, a tensor) or a list/tuple of them, as a list."""
    if isinstance(example_inputs, list):
        return example_inputs
    if isinstance(example_inputs, tuple) and not all(isinstance(d, int) for d in example_inputs):
        return list(example_inputs)
    return [example_inputs]


def _spec(value: Any) -> InputSpec:
    if isinstance(value, InputSpec):
        return value
    if hasattr(value, "shape") and hasattr(value, "is_floating_point"):  # an example tensor
        return InputSpec(tuple(int(d) for d in value.shape), ids=not value.is_floating_point())
    if isinstance(value, str):
        ids = value.startswith("ids:")
        return InputSpec.parse(value[4:] if ids else value, ids=ids)
    return InputSpec(tuple(int(d) for d in value))


def _model_dtype(model: torch.nn.Module) -> Any:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return "float32"
