"""Application: the only place that changes a model.

It sets ``requires_grad``; with ``freeze stats`` it pins norm layers in eval mode
(a forward pre-hook, so a later ``model.train()`` cannot restart their running
statistics), and with ``convert`` it swaps BatchNorm2d for FrozenBatchNorm2d.
Parameter values and buffers are never changed. It is atomic: expectations are
checked first, replacement modules are built before anything changes, and if any
step fails (an exception, a KeyboardInterrupt) every change already made is undone
before the error propagates.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import compress
from operator import attrgetter
from typing import Any

from freezedsl.errors import ExpectationError, FreezeError, UsageError, source_lines
from freezedsl.planning.index import mask_bits
from freezedsl.planning.result import Plan
from freezedsl.planning.select import INITIAL_ATTR
from freezedsl.syntax.printer import format_statement

_get_requires_grad = attrgetter("requires_grad")

STATS_ATTR = "_freezedsl_stats_hook"


def check_expectations(plan: Plan) -> None:
    failed = [e for e in plan.expectations if not e.ok]
    if not failed:
        return
    first = failed[0]
    lines = source_lines(plan.program.source) if plan.program.source else []
    src = lines[first.line - 1] if first.line and 0 < first.line <= len(lines) else None
    err = ExpectationError(
        f"{first.text} failed: {first.detail}; nothing was applied",
        path=plan.program.path,
        line=first.line,
        col=first.col,
        source_line=src,
    )
    err.failures = [  # type: ignore[attr-defined]
        ExpectationError(
            f"{e.text} failed: {e.detail}; nothing was applied", path=plan.program.path, line=e.line, col=e.col
        )
        for e in failed
    ]
    raise err


def keep_eval(module: Any, args: Any) -> None:
    """Forward pre-hook of a norm layer whose statistics are frozen.

    A module-level function (not a lambda) so models stay picklable.
    """
    if module.training:
        module.training = False


def stats_frozen(module: Any) -> bool:
    """True when freezedsl pinned this norm layer's running statistics."""
    return getattr(module, STATS_ATTR, None) is not None


def apply_plan(plan: Plan, *, fresh: bool = False) -> Plan:
    """Carry out a plan, all or nothing.

    ``fresh=True`` says the plan was made just now, in this call stack (``Rules.apply``),
    which skips re-reading every flag to check that the model did not change since.
    """
    check_expectations(plan)
    _check_not_scripted(plan)
    if not fresh:
        _check_not_stale(plan)
    objects = plan._objects
    before = plan._index.requires_grad
    now = before if fresh else list(map(_get_requires_grad, objects))
    if now != before:
        t = next(t for t, (a, b) in enumerate(zip(now, before)) if bool(a) != b)
        name = plan._index.canonical_names()[t]
        raise UsageError(
            f"{name} changed since the plan was made (requires_grad is now {bool(now[t])}); "
            "plan again before applying"
        )
    n = len(objects)
    to_freeze = mask_bits(plan._before & ~plan._after, n)  # one 0/1 byte per tensor
    to_train = mask_bits(plan._after & ~plan._before, n)
    replacements = _build_replacements(plan)  # may fail: nothing has changed yet
    undo: list[Callable[[], None]] = []
    try:
        set_flags(objects, to_freeze, False)
        set_flags(objects, to_train, True)
        _apply_stats(plan, undo)
        for parent, key, new in replacements:
            old = parent._modules[key]
            parent._modules[key] = new
            undo.append(_module_restorer(parent, key, old))
    except BaseException:
        for fn in reversed(undo):
            fn()
        # Put back exactly the flags that moved (whatever point the failure hit).
        for p in compress(objects, to_freeze):
            if not p.requires_grad:
                p.requires_grad_(True)
        for p in compress(objects, to_train):
            if p.requires_grad:
                p.requires_grad_(False)
        raise
    _remember_initial(objects, to_freeze, True)
    _remember_initial(objects, to_train, False)
    return plan


def _remember_initial(objects: list[Any], changed: bytes, flag: bool) -> None:
    """Note on each tensor freezedsl changes for the first time the flag it had before, so
    that ``initially frozen`` still means what the model's library chose after rules
    (a Schedule's earlier phases, an earlier apply) changed it."""
    for p in compress(objects, changed):
        if getattr(p, INITIAL_ATTR, None) is None:
            try:
                setattr(p, INITIAL_ATTR, flag)
            except (AttributeError, TypeError):  # a tensor class without __dict__: keep going
                pass


def _check_not_scripted(plan: Plan) -> None:
    """``freeze stats`` and ``convert`` cannot change a TorchScript module: it takes no
    forward hooks and its compiled code ignores swapped submodules. Checked before
    anything changes, so the error leaves the model as it was."""
    wanted = [d for d in plan.norm_stats if d.frozen] + plan.conversions
    if not wanted:
        return
    import torch

    script = torch.jit.ScriptModule
    if not any(isinstance(m, script) for m in plan._modules):
        return
    for d in wanted:
        if isinstance(plan._modules[d.module_index], script) or isinstance(plan._modules[0], script):
            st = plan.program.statements[d.decided_by - 1]
            line = st.span.line if st.span else None
            col = st.span.col if st.span else None
            lines = source_lines(plan.program.source) if plan.program.source else []
            src = lines[line - 1] if line and 0 < line <= len(lines) else None
            raise FreezeError(
                f"{format_statement(st)} cannot run on a TorchScript module ({d.path or 'the root'} "
                "is scripted; ScriptModules support neither forward hooks nor module swaps); "
                "nothing was applied",
                path=plan.program.path,
                line=line,
                col=col,
                source_line=src,
                hint="apply it to the Python model before scripting",
            )


def _check_not_stale(plan: Plan) -> None:
    """The model must still hold the very tensors and modules the plan was made for.

    A parameter replaced after planning (``model.fc = nn.Linear(...)``, a new
    ``nn.Parameter``) would otherwise keep its old flags while the plan reports success
    about the object it no longer has. Identity, not names, is compared.
    """
    from freezedsl.planning.index import build_index

    old = plan._index
    now = build_index(old.module_objects[0])
    if len(now.objects) == len(old.objects) and all(a is b for a, b in zip(now.objects, old.objects)) and len(
        now.module_objects
    ) == len(old.module_objects) and all(a is b for a, b in zip(now.module_objects, old.module_objects)):
        return
    names = now.canonical_names()
    old_ids = {id(p) for p in old.objects}
    changed = [names[t] for t, p in enumerate(now.objects) if id(p) not in old_ids]
    what = f"{changed[0]} was replaced" if changed else "the model's parameters or modules changed"
    raise UsageError(
        f"{what} since the plan was made (the plan holds the old tensor); plan again before applying"
    )


def set_flags(objects: list[Any], selected: bytes, flag: bool) -> None:
    """``requires_grad_(flag)`` on the tensors whose byte in ``selected`` is 1.

    ``compress`` picks them in C, so the Python loop runs only over the tensors that
    change, with no indexing. (Mapping ``torch.Tensor.requires_grad_`` in C is a
    little faster still, but would skip a tensor class's own ``requires_grad_``, and
    checking every tensor's class costs what it saves.)
    """
    chosen = compress(objects, selected)
    if _set is not None:
        for p in chosen:
            _set(p, flag)
        return
    for p in chosen:
        p.requires_grad_(flag)


# Fault-injection tests set this to a function ``(param, flag) -> None`` that is then
# called for every flag change instead of ``param.requires_grad_(flag)``; a plain
# method call keeps the common path free of an extra Python frame per tensor.
_set: Callable[[Any, bool], None] | None = None


def _module_restorer(parent: Any, key: str, old: Any) -> Callable[[], None]:
    def restore() -> None:
        parent._modules[key] = old

    return restore


def _apply_stats(plan: Plan, undo: list[Callable[[], None]]) -> None:
    if not plan.norm_stats:
        return
    root_training = bool(plan._modules[0].training) if plan._modules else True
    for d in plan.norm_stats:
        module = plan._modules[d.module_index]
        was_training = bool(module.training)
        if d.frozen and not stats_frozen(module):
            handle = module.register_forward_pre_hook(keep_eval)
            setattr(module, STATS_ATTR, handle.id)
            module.training = False
            undo.append(_unhook(module, handle.id, was_training))
        elif not d.frozen and stats_frozen(module):
            hook_id = getattr(module, STATS_ATTR)
            hook = module._forward_pre_hooks.pop(hook_id, None)
            delattr(module, STATS_ATTR)
            module.training = root_training
            undo.append(_rehook(module, hook_id, hook, was_training))


def _unhook(module: Any, hook_id: int, was_training: bool) -> Callable[[], None]:
    def restore() -> None:
        module._forward_pre_hooks.pop(hook_id, None)
        if hasattr(module, STATS_ATTR):
            delattr(module, STATS_ATTR)
        module.training = was_training

    return restore


def _rehook(module: Any, hook_id: int, hook: Any, was_training: bool) -> Callable[[], None]:
    def restore() -> None:
        if hook is not None:
            module._forward_pre_hooks[hook_id] = hook
        setattr(module, STATS_ATTR, hook_id)
        module.training = was_training

    return restore


def _build_replacements(plan: Plan) -> list[tuple[Any, str, Any]]:
    """(parent, child name, new module) for every conversion, built before any change."""
    if not plan.conversions:
        return []
    try:
        from torchvision.ops import FrozenBatchNorm2d
    except ImportError as exc:  # pragma: no cover - torchvision is an extra
        raise UsageError(
            f"convert ... to FrozenBatchNorm2d needs torchvision ({exc}); pip install torchvision"
        ) from None
    import torch

    root = plan._modules[0]
    made: dict[int, Any] = {}
    out: list[tuple[Any, str, Any]] = []
    for d in plan.conversions:
        old = plan._modules[d.module_index]
        parent = root
        *head, key = d.path.split(".")
        for seg in head:
            parent = parent._modules[seg]
        new = made.get(id(old))
        if new is None:
            ref = old.running_mean
            if type(old).__name__ == "BatchNormAct2d":  # timm's, as the planner checked
                new = _frozen_bn_act(old)
            else:
                new = FrozenBatchNorm2d(old.num_features, eps=old.eps)
            new = new.to(device=ref.device, dtype=ref.dtype)
            with torch.no_grad():
                if old.weight is not None:
                    new.weight.copy_(old.weight.detach())
                if old.bias is not None:
                    new.bias.copy_(old.bias.detach())
                new.running_mean.copy_(old.running_mean)
                new.running_var.copy_(old.running_var)
            new.train(old.training)
            made[id(old)] = new
        out.append((parent, key, new))
    return out


def _frozen_bn_act(old: Any) -> Any:
    """timm's FrozenBatchNormAct2d for a timm BatchNormAct2d, with the same activation and
    drop modules (as ``timm.layers.freeze_batch_norm_2d`` does); statistics and affine
    values are copied by the caller."""
    from timm.layers import FrozenBatchNormAct2d

    new = FrozenBatchNormAct2d(old.num_features, eps=old.eps)
    new.drop = old.drop
    new.act = old.act
    return new
