"""Trace one training step (forward, scalar loss, backward) op by op.

The same tracer serves the estimate (parameters and inputs on the ``meta`` device:
shapes only, no memory, no arithmetic) and the proof (real CPU tensors): what it
reports comes from PyTorch's own machinery, not from a model of layers:

* FLOPs: :class:`torch.utils.flop_counter.FlopCounterMode`, split at the loss into
  forward and backward. Autograd computes only the gradients that some trainable
  parameter needs, so the backward count already reflects the freeze.
* Live memory: a :class:`TorchDispatchMode` sees every tensor an op returns. Each
  storage counts once (keyed by its StorageImpl, so views and in-place results add
  nothing) from the op that creates it until a ``weakref.finalize`` on the last
  tensor using it fires. Autograd's saved tensors keep their tensors alive, so the
  live total is both what is saved for backward and the transient buffers of the
  forward and the backward. Parameters, buffers and inputs are resident either way
  and never count.
* Saved tensors: :func:`torch.autograd.graph.saved_tensors_hooks`, once per storage.
* Values: a meta tensor has none, so where model code reads one (``.item()``,
  ``if (mask == 1).all():``) the tracer answers True (bool) or 1 and counts it:
  such code is nearly always a validity check or a fast path.
* Backward stop: the first op in forward order that reads a trainable parameter;
  every op before it needs no backward.

Why an op-level trace and not module hooks: parameters used outside their module's
``forward`` (a ViT's class token, HF embeddings' position ids) are seen too.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode


def storage_key(t: torch.Tensor) -> int:
    """Identity of the memory a tensor uses (views share it; works on meta tensors)."""
    return int(t.untyped_storage()._cdata)


def storage_bytes(t: torch.Tensor) -> int:
    return int(t.untyped_storage().nbytes())


@dataclass
class StepTrace:
    """What one traced training step did. Byte figures exclude parameters, buffers, inputs."""

    forward_flops: int = 0
    backward_flops: int = 0
    forward_peak_bytes: int = 0  # most activation bytes live at once during the forward
    saved_bytes: int = 0  # tensors autograd saved for backward, once per storage
    activation_bytes: int = 0  # most live bytes over forward + backward, parameter grads excluded
    step_peak_bytes: int = 0  # most live bytes over forward + backward, parameter grads included
    grad_bytes: int = 0  # parameter gradients after backward
    forward_ops: int = 0
    first_trainable: str | None = None  # parameter name read first in forward order
    first_trainable_op: int | None = None  # its op number (0-based) in the forward
    first_trainable_flops: int = 0  # forward FLOPs done before that op
    first_use: dict[str, tuple[int, int]] = field(
        default_factory=dict
    )  # name -> (op, flops before)
    traffic_bytes: int = 0  # bytes read and written by every op (roofline time)
    roofline: float = 0.0  # sum over ops of max(flops / balance, bytes, floor), in byte units
    guesses: int = 0  # values read from meta tensors (answered True / 1: data-dependent code)


class _Tracer(TorchDispatchMode):
    """Counts live storages and per-op traffic; records the first use of each parameter."""

    def __init__(
        self,
        resident: set[int],
        names: Mapping[int, str],
        flops: FlopCounterMode,
        balance: float,
        floor: float,
    ) -> None:
        super().__init__()
        self.resident = resident  # parameters, buffers, inputs: never counted
        self.names = names  # storage key -> parameter name (every parameter)
        self.flops = flops
        self.balance = balance  # FLOPs per byte of the machine the roofline models
        self.floor = floor  # bytes the machine could move in one kernel's launch time
        self.live: dict[int, tuple[int, int]] = {}  # key -> (allocation id, bytes)
        self.refs: dict[int, int] = {}
        self.events: list[tuple[int, int]] = []  # (allocation id, +bytes / -bytes)
        self.next_id = 0
        self.ops = 0
        self.forward = True
        self.first_use: dict[str, tuple[int, int]] = {}
        self.traffic = 0
        self.roofline = 0.0
        self.guesses = 0

    def _release(self, key: int) -> None:
        self.refs[key] -= 1
        if self.refs[key] == 0:
            del self.refs[key]
            alloc, size = self.live.pop(key)
            self.events.append((alloc, -size))

    def _total_flops(self) -> int:
        return int(sum(self.flops.flop_counts["Global"].values()))

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is torch.ops.aten._local_scalar_dense.default and args[0].device.type == "meta":
            self.guesses += 1  # .item() / `if tensor:` on a meta tensor: no value exists
            return {torch.bool: True}.get(args[0].dtype, 1)
        flat_in = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)]
        before = self._total_flops()
        if self.forward:
            for a in flat_in:
                name = self.names.get(storage_key(a))
                if name is not None and name not in self.first_use:
                    self.first_use[name] = (self.ops, before)
        out = func(*args, **kwargs)
        self.ops += 1
        moved = 0
        view = bool(getattr(func, "is_view", False))  # views move no bytes
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            key = storage_key(t)
            if not view:
                moved += t.numel() * t.element_size()
            if key in self.resident:
                continue
            if key not in self.live:
                size = storage_bytes(t)
                self.live[key] = (self.next_id, size)
                self.refs[key] = 0
                self.events.append((self.next_id, size))
                self.next_id += 1
            self.refs[key] += 1
            weakref.finalize(t, self._release, key)
        if not view:
            moved += sum(a.numel() * a.element_size() for a in flat_in)
        self.traffic += moved
        if not view:
            self.roofline += max(
                (self._total_flops() - before) / self.balance, float(moved), self.floor
            )
        return out


def _peak(events: Sequence[tuple[int, int]], skip: set[int], upto: int | None = None) -> int:
    cur = peak = 0
    for alloc, delta in events[:upto]:
        if alloc in skip:
            continue
        cur += delta
        peak = max(peak, cur)
    return peak


@contextlib.contextmanager
def fused_attention() -> Iterator[None]:
    """Meta-device ``scaled_dot_product_attention`` as a GPU runs it in 16 bits: fused kernels.

    On the meta device torch picks the math path (an L x L score matrix per head, kept
    for backward); a GPU picks FlashAttention (no mask) or memory-efficient attention
    (a mask), which keep only the output and a log-sum-exp per row and recompute the
    rest in backward. Anything else (real tensors, fp32, grouped heads, a call the
    fused kernels reject) goes to torch's own function.
    """
    import torch.nn.functional as F

    original = F.scaled_dot_product_attention

    def sdpa(
        query: Any,
        key: Any,
        value: Any,
        attn_mask: Any = None,
        dropout_p: float = 0.0,
        is_causal: bool = False,
        scale: float | None = None,
        enable_gqa: bool = False,
    ) -> Any:
        fused = (
            query.device.type == "meta"
            and query.dtype in (torch.bfloat16, torch.float16)
            and query.dim() == 4
            and key.shape[-3] == query.shape[-3]
            and query.shape[-1] <= 256
        )
        if fused:
            try:
                if attn_mask is None:
                    return torch.ops.aten._scaled_dot_product_flash_attention(
                        query, key, value, dropout_p, is_causal, scale=scale
                    )[0]
                return torch.ops.aten._scaled_dot_product_efficient_attention(
                    query, key, value, attn_mask, True, dropout_p, is_causal, scale=scale
                )[0]
            except RuntimeError:
                pass
        kwargs = {"enable_gqa": True} if enable_gqa else {}
        return original(query, key, value, attn_mask, dropout_p, is_causal, scale=scale, **kwargs)

    F.scaled_dot_product_attention = sdpa
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def scalar_loss(output: Any) -> torch.Tensor | None:
    """``output.float().sum()``, summed over the floating tensors of a tuple/dict/ModelOutput."""
    tensors = [
        t
        for t in tree_flatten(_plain(output))[0]
        if isinstance(t, torch.Tensor) and t.is_floating_point()
    ]
    if not tensors:
        return None
    loss = tensors[0].float().sum()
    for t in tensors[1:]:
        loss = loss + t.float().sum()
    return loss


def _plain(output: Any) -> Any:
    """Dict-like outputs (HF ModelOutput) as plain dicts so pytree can flatten them."""
    if isinstance(output, Mapping):
        return {k: _plain(v) for k, v in output.items()}
    if isinstance(output, (list, tuple)):
        return [_plain(v) for v in output]
    return output


def trace_step(
    model: torch.nn.Module,
    tensors: Mapping[str, torch.Tensor],
    inputs: Sequence[torch.Tensor],
    *,
    balance: float = 150.0,
    floor: float = 0.0,
    call: Callable[..., Any] | None = None,
    fused: bool = False,
) -> StepTrace:
    """Run forward, ``scalar_loss`` and backward of ``model`` with ``tensors`` as its state.

    ``tensors`` maps every parameter and buffer name to the tensor to use (through
    :func:`torch.func.functional_call`, so the model's own tensors and flags are left
    alone); trainable ones have ``requires_grad`` set. ``inputs`` are positional.
    ``balance`` (FLOPs per byte) weighs compute against memory traffic in ``roofline``;
    ``floor`` (bytes) is the least any op costs there (kernel launch latency).
    ``fused``: meta-device attention as a GPU's fused kernels (:func:`fused_attention`).
    """
    resident = {storage_key(t) for t in tensors.values()} | {storage_key(t) for t in inputs}
    params = dict(model.named_parameters(remove_duplicate=False))
    names: dict[int, str] = {}
    for n, t in tensors.items():
        if n in params:
            names.setdefault(
                storage_key(t), n
            )  # tied tensors: the first name, as the plan shows them
    trainable = {n for n, t in tensors.items() if n in params and t.requires_grad}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = storage_key(t)
        if key not in resident:
            saved.setdefault(key, storage_bytes(t))
        return t

    trace = StepTrace()
    run = call or (
        lambda *a: torch.func.functional_call(model, dict(tensors), tuple(a), strict=False)
    )
    attention = fused_attention() if fused else contextlib.nullcontext()
    with attention, FlopCounterMode(display=False) as counter:
        tracer = _Tracer(resident, names, counter, balance, floor)
        with tracer:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                output = run(*inputs)
                loss = scalar_loss(output)
            del output
            trace.forward_flops = tracer._total_flops()
            forward_events = len(tracer.events)
            trace.forward_ops = tracer.ops
            tracer.forward = False
            if loss is not None and loss.requires_grad:
                loss.backward()
            del loss
        trace.backward_flops = tracer._total_flops() - trace.forward_flops
    grads = {
        storage_key(t.grad): storage_bytes(t.grad) for n, t in tensors.items() if t.grad is not None
    }
    grad_allocs = {tracer.live[k][0] for k in grads if k in tracer.live}
    trace.grad_bytes = sum(grads.values())
    trace.forward_peak_bytes = _peak(tracer.events, set(), forward_events)
    trace.activation_bytes = _peak(tracer.events, grad_allocs)
    trace.step_peak_bytes = _peak(tracer.events, set())
    trace.saved_bytes = sum(saved.values())
    trace.first_use = tracer.first_use
    trace.traffic_bytes = tracer.traffic
    trace.roofline = tracer.roofline
    trace.guesses = tracer.guesses
    rank = {n: i for i, n in enumerate(params)}  # one op reading several: the model's order decides
    used = sorted((v, rank[n], n) for n, v in tracer.first_use.items() if n in trainable)
    if used:
        (op, flops), _, name = used[0]
        trace.first_trainable, trace.first_trainable_op, trace.first_trainable_flops = (
            name,
            op,
            flops,
        )
    for t in tensors.values():
        t.grad = None
    return trace
