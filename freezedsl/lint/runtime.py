"""FZ3xx: checks of a live model and its optimizers.

Static checks see what a script *says*; these look at what the objects *are* right
before a step: which tensors each optimizer will touch, what DDP/FSDP recorded when
they were built, which norm layers still collect statistics. Every check reads state
only; nothing here changes a model, an optimizer or a gradient.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn
from torch.nn.parameter import is_lazy
from torch.optim import Optimizer

from freezedsl.lint.registry import Diagnostic, Rule, Severity, diag, register

__all__ = [
    "CHECK_FAILED",
    "FreezeLintError",
    "StepWatch",
    "assert_ok",
    "check",
    "describe_model",
    "describe_optimizer",
    "frozen_changes",
    "snapshot_frozen",
]

# Wrapper modules whose child name is noise in a parameter name: torch.compile's
# OptimizedModule, activation checkpointing and FSDP1 units.
_WRAPPER_PARTS = frozenset({"_orig_mod", "_checkpoint_wrapped_module", "_fsdp_wrapped_module"})
_HEAD_NAMES = ("fc", "head", "heads", "classifier", "lm_head")
# DDP's bucket view allocates a zero copy of all gradients; above this we compare counts.
_DDP_BUCKET_BUDGET_BYTES = 512 << 20


class FreezeLintError(AssertionError):
    """Raised by :func:`assert_ok`; ``diagnostics`` holds the findings."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        lines = [f"{len(self.diagnostics)} freeze lint finding(s):"]
        lines += [f"  {d.code} [{d.severity.value}] {d.message}" for d in self.diagnostics]
        super().__init__("\n".join(lines))


# --------------------------------------------------------------------------- context


@dataclass
class _Model:
    """One model as given, its unwrapped root and display names for its tensors."""

    given: nn.Module
    root: nn.Module
    prefix: str  # "" for a single model, "ClassName." when several are checked
    strip: tuple[str, ...]  # leading name parts that belong to DDP/compile wrappers
    params: list[tuple[str, nn.Parameter]] = field(default_factory=list)

    def clean(self, name: str) -> str:
        """Display name for a name relative to ``given``."""
        parts = name.split(".") if name else []
        if parts[: len(self.strip)] == list(self.strip):
            parts = parts[len(self.strip) :]
        parts = [p for p in parts if p not in _WRAPPER_PARTS]
        return self.prefix + ".".join(parts) if parts else self.prefix.rstrip(".") or "<model>"

    def rel(self, name: str) -> str:
        """Display name for a name relative to the unwrapped ``root``."""
        parts = [p for p in (name.split(".") if name else []) if p not in _WRAPPER_PARTS]
        return self.prefix + ".".join(parts) if parts else self.prefix.rstrip(".") or "<model>"


@dataclass
class _Ctx:
    models: list[_Model]
    optimizers: list[Optimizer]
    path: str
    names: dict[int, str] = field(default_factory=dict)
    out: list[Diagnostic] = field(default_factory=list)
    # Run mode: only this optimizer's frozen tensors count for FZ301/FZ302 (the others are
    # checked when they step: CycleGAN freezes D while G's optimizer steps).
    stepping: Optimizer | None = None

    def name(self, p: torch.Tensor, where: str = "") -> str:
        found = self.names.get(id(p))
        if found is not None:
            return found
        shape = "lazy" if _lazy(p) else tuple(p.shape)
        return f"<tensor {shape}{' in ' + where if where else ''}, not in the model>"

    def add(self, rule: Rule, message: str, obj: str | None, **extra: object) -> None:
        self.out.append(diag(rule, message, self.path, obj=obj, extra=dict(extra)))

    def all_params(self) -> Iterator[tuple[str, nn.Parameter]]:
        for m in self.models:
            yield from m.params


def _unwrap(module: nn.Module) -> tuple[nn.Module, tuple[str, ...]]:
    """Peel DDP, DataParallel and torch.compile wrappers; return the model and their names."""
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    parts: list[str] = []
    while True:
        if isinstance(module, (DistributedDataParallel, DataParallel)):
            parts.append("module")
            module = cast(nn.Module, module.module)
        elif type(module).__name__ == "OptimizedModule" and isinstance(
            getattr(module, "_orig_mod", None), nn.Module
        ):
            parts.append("_orig_mod")
            module = cast(nn.Module, module._orig_mod)
        else:
            return module, tuple(parts)


def _as_list(x: Any) -> list[Any]:
    if x is None:
        return []
    if isinstance(x, (nn.Module, Optimizer)):
        return [x]
    return list(x)


def built(module: object) -> bool:
    """Whether ``nn.Module.__init__`` ran: a half-built module has no ``_parameters``.

    A model whose ``__init__`` raised before ``super().__init__()`` can stay alive (in
    a traceback, in ``gc``); touching its parameters raises ``AttributeError``.
    """
    return isinstance(getattr(module, "__dict__", None), dict) and all(
        k in module.__dict__ for k in ("_parameters", "_modules", "_buffers")
    )


def _context(
    models: Sequence[nn.Module], optimizers: Sequence[Optimizer], path: str
) -> tuple[_Ctx, list[Diagnostic]]:
    """The shared analysis; a model that cannot be read becomes an FZ003 finding."""
    failed: list[Diagnostic] = []
    readable: list[tuple[nn.Module, list[tuple[str, nn.Parameter]]]] = []
    for m in models:
        try:
            if not built(m):
                raise RuntimeError(
                    f"{type(m).__name__} is half-built (its __init__ did not call "
                    "nn.Module.__init__)"
                )
            readable.append((m, list(m.named_parameters())))
        except Exception as exc:  # noqa: BLE001 - reported as FZ003, never a silent pass
            failed.append(
                _failed("reading the model's parameters", exc, path, obj=type(m).__name__)
            )
    labels: list[str] = []
    for m, _ in readable:
        base = type(_unwrap(m)[0]).__name__
        label = base if base not in labels else f"{base}{len(labels)}"
        labels.append(label)
    ctx = _Ctx([], list(optimizers), path)
    for (m, named), label in zip(readable, labels):
        root, strip = _unwrap(m)
        view = _Model(m, root, f"{label}." if len(readable) > 1 else "", strip)
        view.params = [(view.clean(n), p) for n, p in named]
        for n, p in view.params:
            ctx.names.setdefault(id(p), n)
        ctx.models.append(view)
    return ctx, failed


CHECK_FAILED = register(
    Rule(
        "FZ003",
        "check-failed",
        Severity.ERROR,
        "A runtime check could not run; its part of the report is missing, not clean.",
        what="""
Reported when one of the FZ3xx checks of a live model and optimizer raised an error
instead of finishing: a model whose ``parameters()`` raises, a half-built module (its
``__init__`` failed before ``nn.Module.__init__``), an optimizer with a malformed
``param_groups``. The message names the check that did not run and the error. The
other checks still run and report their findings.
""",
        why="""
A check that crashed has looked at nothing. Printing "All checks passed" (exit 0) for
it would be a silent pass: the mistake it exists to find could be right there.
""",
        example="""
$ freezedsl lint train.py   # the model's parameters() raises
train.py: FZ003 check 'frozen-param-in-optimizer' did not run: RuntimeError: ...
""",
        use_instead="""
$ freezedsl lint train.py   # fix the model (or report the freezedsl bug) and rerun
All checks passed.
""",
    )
)


def _failed(what: str, exc: BaseException, path: str, obj: str | None = None) -> Diagnostic:
    """FZ003 for a check (or the analysis it needs) that raised ``exc``."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    why = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return diag(
        CHECK_FAILED,
        f"{what} did not run: {why}; its findings are missing from this report",
        path,
        obj=obj,
        extra={"check": what, "error": why},
    )


def _lazy(t: torch.Tensor) -> bool:
    """An uninitialized (Lazy*) parameter: it has no shape or values yet."""
    return bool(is_lazy(t))


def _numel(t: torch.Tensor) -> int:
    return 0 if _lazy(t) else t.numel()


def _nonzero(t: object) -> bool:
    return isinstance(t, torch.Tensor) and _numel(t) > 0 and bool(t.detach().ne(0).any())


# --------------------------------------------------------------------------- FZ301 / FZ302

FROZEN_IN_OPTIMIZER = register(
    Rule(
        "FZ301",
        "frozen-param-in-optimizer",
        Severity.WARNING,
        "A frozen parameter (requires_grad=False) sits in an optimizer's param groups.",
        what="""
Looks through every param group of every given optimizer for parameters whose
``requires_grad`` is False.
""",
        why="""
Torch optimizers skip a parameter only while its ``.grad`` is None. A frozen parameter
in a group is one stale gradient, ``zero_grad(set_to_none=False)`` or weight decay away
from being updated, and its optimizer state (if any) is kept in memory for nothing.
""",
        example="""
model.backbone.requires_grad_(False)
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
""",
        use_instead="""
model.backbone.requires_grad_(False)
opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
""",
    )
)

FROZEN_WILL_MOVE = register(
    Rule(
        "FZ302",
        "frozen-param-will-move",
        Severity.ERROR,
        "A frozen parameter in an optimizer will still change at the next step().",
        what="""
For a frozen parameter inside an optimizer group, decides whether the next ``step()``
changes it: the optimizer only skips it when ``.grad is None``; with a gradient present
(even all zeros) it moves when the gradient is non-zero, when the group's
``weight_decay`` is non-zero (coupled decay adds ``wd * p`` to the gradient, AdamW's
decoupled decay shrinks ``p`` directly), or when the optimizer state still holds
momentum (SGD ``momentum_buffer``, Adam-family ``exp_avg``, RMSprop ``momentum_buffer``).
""",
        why="""
The parameter is meant to stay fixed, but the optimizer updates it anyway, usually
after freezing mid-training with ``zero_grad(set_to_none=False)`` or without clearing
gradients. Nothing fails; the "frozen" weights drift.
""",
        example="""
loss.backward(); opt.step()              # momentum now stored for every parameter
model.backbone.requires_grad_(False)
opt.zero_grad(set_to_none=False)         # zero grads, not None: momentum keeps moving them
""",
        use_instead="""
model.backbone.requires_grad_(False)
for p in model.backbone.parameters():
    p.grad = None
    opt.state.pop(p, None)
# better: rebuild the optimizer from the parameters that still require grad
""",
    )
)

_ADAM_FAMILY = ("Adam", "AdamW", "Adamax", "NAdam", "RAdam")
# Updates of these are proportional to the current gradient: a zero grad moves nothing
# (LBFGS's direction keeps a zero component where the gradient has always been zero).
_GRAD_DRIVEN = ("Adagrad", "Adadelta", "Rprop", "SparseAdam", "LBFGS")


def _base_optimizer(opt: Optimizer) -> str:
    for cls in type(opt).__mro__:
        if cls.__module__.startswith("torch.optim"):
            return cls.__name__
    return type(opt).__name__


def _why_it_moves(opt: Optimizer, group: dict[str, Any], p: torch.Tensor) -> str | None:
    """Why the next ``opt.step()`` changes ``p`` (None: it will not), following torch's rules."""
    if p.grad is None:
        return None  # every torch optimizer skips parameters without a gradient
    lr = group.get("lr", 1.0)
    if isinstance(lr, (int, float, torch.Tensor)) and float(lr) == 0.0:
        return None
    if _nonzero(p.grad):
        return "it still has a non-zero .grad (a stale gradient from an earlier backward)"
    kind = _base_optimizer(opt)
    wd = group.get("weight_decay", 0) or 0
    if wd and _nonzero(p):
        if kind == "AdamW" or group.get("decoupled_weight_decay"):
            how = "AdamW's decoupled decay shrinks it directly"
        else:
            how = "coupled decay adds weight_decay*param to its gradient"
        return f"its .grad is zeros, not None, and its group has weight_decay={wd}: {how}"
    state = opt.state.get(p, {})
    key: str | None = None
    if kind == "SGD":
        key = "momentum_buffer" if group.get("momentum", 0) else None
    elif kind in _ADAM_FAMILY:
        key = "exp_avg"
    elif kind == "RMSprop":
        key = "momentum_buffer" if group.get("momentum", 0) else None
    elif kind == "ASGD" and group.get("lambd", 0):
        return f"its .grad is zeros, not None, and ASGD decays it by lambd={group['lambd']}"
    elif kind not in _GRAD_DRIVEN:
        # Unknown optimizer: any non-zero float state other than the step counter may move it.
        for k, v in state.items():
            if (
                k != "step"
                and isinstance(v, torch.Tensor)
                and v.is_floating_point()
                and _nonzero(v)
            ):
                return (
                    f"its .grad is zeros, not None, and {type(opt).__name__} keeps a non-zero "
                    f"state '{k}' for it that may keep moving it"
                )
        return None
    if key is not None and _nonzero(state.get(key)):
        return (
            f"its .grad is zeros, not None, and optimizer.state holds a non-zero '{key}', "
            "so momentum keeps moving it"
        )
    return None


def _check_frozen_in_optimizer(ctx: _Ctx) -> None:
    seen: set[int] = set()
    for oi, opt in enumerate(ctx.optimizers):
        if ctx.stepping is not None and opt is not ctx.stepping:
            continue
        oname = type(opt).__name__
        for gi, group in enumerate(opt.param_groups):
            for p in group["params"]:
                if p.requires_grad or id(p) in seen:
                    continue
                seen.add(id(p))
                name = ctx.name(p, f"optimizer {oi} group {gi}")
                reason = _why_it_moves(opt, group, p)
                if reason is not None:
                    ctx.add(
                        FROZEN_WILL_MOVE,
                        f"frozen parameter {name} will still be changed by the next "
                        f"{oname}.step(): {reason}; set its .grad to None and drop "
                        "optimizer.state for it, or rebuild the optimizer from the "
                        "parameters that require grad",
                        name,
                        optimizer=oi,
                        group=gi,
                    )
                else:
                    ctx.add(
                        FROZEN_IN_OPTIMIZER,
                        f"frozen parameter {name} is in {oname} param group {gi}; it stays "
                        "fixed only while its .grad is None; build the optimizer from "
                        "[p for p in model.parameters() if p.requires_grad]",
                        name,
                        optimizer=oi,
                        group=gi,
                    )


# --------------------------------------------------------------------------- FZ303

TRAINABLE_NOT_IN_OPTIMIZER = register(
    Rule(
        "FZ303",
        "trainable-param-not-in-optimizer",
        Severity.WARNING,
        "A trainable parameter is in no param group of any given optimizer.",
        what="""
Lists parameters with ``requires_grad=True`` that no given optimizer holds. Only runs
when at least one optimizer is given.
""",
        why="""
The parameter receives gradients (costing memory and compute) but never changes.
Typical cause: the optimizer was built before a module was unfrozen, added or
replaced (a new head), or before FSDP/compile swapped the parameter objects.
""",
        example="""
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
model.fc = nn.Linear(512, 10)        # new head created after the optimizer
""",
        use_instead="""
model.fc = nn.Linear(512, 10)
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
# or freeze it on purpose: model.fc.requires_grad_(False)
""",
    )
)


def _check_trainable_not_in_optimizer(ctx: _Ctx) -> None:
    if not ctx.optimizers:
        return
    held = {id(p) for opt in ctx.optimizers for g in opt.param_groups for p in g["params"]}
    for name, p in ctx.all_params():
        if p.requires_grad and id(p) not in held:
            ctx.add(
                TRAINABLE_NOT_IN_OPTIMIZER,
                f"trainable parameter {name} is in no optimizer, so it gets gradients but "
                "never changes; add it to an optimizer (build the optimizer after the last "
                "freeze/unfreeze) or freeze it",
                name,
            )


# --------------------------------------------------------------------------- FZ304

NOTHING_TRAINABLE = register(
    Rule(
        "FZ304",
        "nothing-trainable",
        Severity.ERROR,
        "No parameter of the model is trainable.",
        what="""
Fires when the given models have parameters and every one of them has
``requires_grad=False``.
""",
        why="""
``loss.backward()`` then raises "element 0 of tensors does not require grad"; a script
that skips or catches that trains nothing. Usually a freeze rule matched more than
intended (``freeze all`` without an ``unfreeze``).
""",
        example="""
model.requires_grad_(False)
""",
        use_instead="""
model.requires_grad_(False)
model.fc.requires_grad_(True)
""",
    )
)


def _check_nothing_trainable(ctx: _Ctx) -> None:
    params = list(ctx.all_params())
    if params and not any(p.requires_grad for _, p in params):
        ctx.add(
            NOTHING_TRAINABLE,
            f"no parameter is trainable (all {len(params)} have requires_grad=False), so "
            "backward() fails or training does nothing; unfreeze at least the head",
            None,
        )


# --------------------------------------------------------------------------- FZ305

HEAD_FROZEN = register(
    Rule(
        "FZ305",
        "head-frozen",
        Severity.WARNING,
        "The model's output head is frozen.",
        what="""
Finds the head: a top-level child named ``fc``, ``head``, ``heads``, ``classifier`` or
``lm_head`` (the last registered one), otherwise the last ``nn.Linear`` in registration
order. Fires when all of its parameters are frozen while another parameter of the same
model trains, or when everything in every given model is frozen. A head whose weights
are all tied to an earlier module (e.g. an LM head tied to the embedding) is skipped.
""",
        why="""
Fine-tuning almost always needs the head to learn: a freshly created head stays random
and a pretrained one cannot adapt to the new labels. Freezing it is usually a selector
that matched too much (``freeze all except layer4``).
""",
        example="""
model.requires_grad_(False)
model.layer4.requires_grad_(True)      # head `fc` stays frozen
""",
        use_instead="""
model.requires_grad_(False)
model.layer4.requires_grad_(True)
model.fc.requires_grad_(True)
""",
    )
)


def _find_head(root: nn.Module) -> tuple[str, nn.Module] | None:
    named = [(n, c) for n, c in root.named_children() if n in _HEAD_NAMES]
    named = [(n, c) for n, c in named if any(True for _ in c.parameters())]
    if named:
        return named[-1]
    linears = [(n, m) for n, m in root.named_modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def _check_head_frozen(ctx: _Ctx) -> None:
    everything_frozen = not any(p.requires_grad for _, p in ctx.all_params())
    for view in ctx.models:
        found = _find_head(view.root)
        if found is None:
            continue
        hname, head = found
        head_params = list(head.parameters())
        if not head_params or any(p.requires_grad for p in head_params):
            continue
        head_ids = {id(p) for p in head_params}
        # Tied head: every head tensor was first registered under another module's name.
        prefix = f"{hname}." if hname else ""
        first_names = {id(p): n for n, p in view.root.named_parameters()}
        if all(not first_names.get(id(p), prefix).startswith(prefix) for p in head_params):
            continue
        others = sum(_numel(p) for _, p in view.params if p.requires_grad and id(p) not in head_ids)
        name = view.rel(hname)
        if others:
            msg = (
                f"head {name} ({type(head).__name__}) is frozen while {others:,} other "
                f"parameter elements train; unfreeze {name} so the output layer can adapt "
                "(ignore FZ305 if it is fixed on purpose)"
            )
        elif everything_frozen:
            msg = (
                f"head {name} ({type(head).__name__}) is frozen and so is everything else; "
                f"unfreeze at least {name}"
            )
        else:
            continue  # a fully frozen model beside trainable ones: a teacher or reference
        ctx.add(HEAD_FROZEN, msg, name)


# --------------------------------------------------------------------------- FZ306

NORM_STATS_DRIFT = register(
    Rule(
        "FZ306",
        "norm-stats-drift",
        Severity.WARNING,
        "A frozen BatchNorm/InstanceNorm in training mode still updates its running stats.",
        what="""
Finds BatchNorm1d/2d/3d, SyncBatchNorm and InstanceNorm layers with
``track_running_stats=True`` that are in training mode while frozen: their affine
parameters are all frozen, or they have none and the nearest enclosing module with
parameters is entirely frozen.
""",
        why="""
``requires_grad=False`` stops gradients, not statistics: in ``train()`` mode every
forward pass overwrites ``running_mean``/``running_var`` with the new data's batch
statistics, so a "frozen" backbone changes its behaviour at eval time (badly so with
small fine-tuning batches).
""",
        example="""
model.backbone.requires_grad_(False)
model.train()
""",
        use_instead="""
model.backbone.requires_grad_(False)
model.train()
for m in model.backbone.modules():
    if isinstance(m, nn.modules.batchnorm._NormBase):
        m.eval()                      # after every model.train()
# or, in the freezedsl rules:  freeze stats backbone
""",
    )
)


def _stats_pinned(mod: nn.Module) -> bool:
    """freezedsl's ``freeze stats`` rule keeps the layer in eval mode with a forward pre-hook."""
    from freezedsl.application import STATS_ATTR

    hook_id = getattr(mod, STATS_ATTR, None)
    return hook_id is not None and hook_id in mod._forward_pre_hooks


def _norm_frozen(mod: nn.Module, ancestors: list[tuple[str, nn.Module]]) -> bool:
    own = list(mod.parameters(recurse=False))
    if own:
        return not any(p.requires_grad for p in own)
    # No affine parameters: judge by the nearest enclosing module that has some.
    owner = next((m for _, m in reversed(ancestors) if any(True for _ in m.parameters())), None)
    return owner is not None and not any(p.requires_grad for p in owner.parameters())


def _check_norm_stats(ctx: _Ctx) -> None:
    norm_base = nn.modules.batchnorm._NormBase
    for view in ctx.models:
        stack: list[tuple[str, nn.Module]] = []  # ancestors of the current module
        for name, mod in view.root.named_modules():
            while stack and not (name.startswith(stack[-1][0] + ".") or stack[-1][0] == ""):
                stack.pop()
            stack.append((name, mod))
            if not (
                isinstance(mod, norm_base)
                and mod.track_running_stats
                and mod.training
                and getattr(mod, "running_mean", None) is not None
            ):
                continue
            if _norm_frozen(mod, stack[:-1]) and not _stats_pinned(mod):
                shown = view.rel(name)
                rule_path = shown[len(view.prefix) :]
                ctx.add(
                    NORM_STATS_DRIFT,
                    f"{type(mod).__name__} {shown} is frozen but in training mode, so every "
                    "forward still overwrites its running_mean/running_var; call .eval() on it "
                    f"after each model.train(), or add `freeze stats {rule_path}` to the rules",
                    shown,
                )


# --------------------------------------------------------------------------- FZ307

PARAM_IN_TWO_GROUPS = register(
    Rule(
        "FZ307",
        "param-in-two-groups",
        Severity.ERROR,
        "The same parameter tensor is in two optimizer groups (or twice in one, or in two optimizers).",
        what="""
Compares parameters by identity across every group of every given optimizer.
""",
        why="""
The tensor is updated once per occurrence in every step: the effective learning rate,
weight decay and momentum are multiplied, and it follows two sets of hyperparameters.
``add_param_group`` refuses overlaps, but hand-built ``param_groups``, groups edited
after construction and two optimizers over overlapping parameter lists are not checked
by torch.
""",
        example="""
opt = torch.optim.SGD(model.parameters(), lr=0.1)
# a head group added by hand (add_param_group would refuse the overlap):
opt.param_groups.append({**opt.defaults, "params": list(model.fc.parameters()), "lr": 1e-2})
""",
        use_instead="""
head = set(model.fc.parameters())
body = [p for p in model.parameters() if p not in head]
opt = torch.optim.SGD([{"params": body}, {"params": list(head), "lr": 1e-2}], lr=0.1)
""",
    )
)


def _check_duplicates(ctx: _Ctx) -> None:
    first: dict[int, str] = {}
    multi = len(ctx.optimizers) > 1
    for oi, opt in enumerate(ctx.optimizers):
        for gi, group in enumerate(opt.param_groups):
            for p in group["params"]:
                where = f"{type(opt).__name__}{f' #{oi}' if multi else ''} group {gi}"
                if id(p) in first:
                    name = ctx.name(p, where)
                    ctx.add(
                        PARAM_IN_TWO_GROUPS,
                        f"parameter {name} is in both {first[id(p)]} and {where}, so each "
                        "step updates it twice; put every parameter in exactly one group of "
                        "one optimizer",
                        name,
                    )
                else:
                    first[id(p)] = where


# --------------------------------------------------------------------------- FZ308

DDP_BEFORE_FREEZE = register(
    Rule(
        "FZ308",
        "ddp-built-before-freeze",
        Severity.ERROR,
        "requires_grad changed after DistributedDataParallel was built.",
        what="""
DDP decides once, in its constructor, which parameters it all-reduces: those with
``requires_grad=True`` at that moment. The check compares that set (read from the
reducer's gradient buckets, or from DDP's logged parameter count and size for very
large models) with the parameters that require grad now.
""",
        why="""
A parameter frozen after wrapping is still expected by the reducer: without
``find_unused_parameters=True`` the next iteration fails with "Expected to have
finished reduction in the prior iteration", and with it every step pays for the
search. A parameter unfrozen after wrapping is never all-reduced: each replica applies
its own gradient and the copies silently drift apart.
""",
        example="""
model = DDP(model, device_ids=[rank])
model.module.backbone.requires_grad_(False)
""",
        use_instead="""
model.backbone.requires_grad_(False)
model = DDP(model, device_ids=[rank])   # freeze first; rebuild DDP when the set changes
""",
    )
)


def _ddp_wants_now(ddp: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """The parameters DDP would register if it were built now (mirrors its own rule)."""
    ignore: set[str] = set(getattr(ddp, "parameters_to_ignore", ()))
    seen: set[int] = set()
    out: list[tuple[str, torch.Tensor]] = []
    for mname, mod in cast(nn.Module, ddp.module).named_modules():
        for pname, p in mod.named_parameters(recurse=False):
            fqn = f"{mname}.{pname}" if mname else pname
            skip = f"{mname}.{pname}" in ignore or fqn in ignore or id(p) in seen
            if p.requires_grad and not skip:
                seen.add(id(p))
                out.append((fqn, p))
    return out


def _check_ddp(ctx: _Ctx) -> None:
    from torch.nn.parallel import DistributedDataParallel as DDP

    for view in ctx.models:
        for ddp in (m for m in view.given.modules() if isinstance(m, DDP)):
            reducer = getattr(ddp, "reducer", None)
            if reducer is None:  # every parameter delayed: DDP built no reducer
                continue
            now = _ddp_wants_now(ddp)
            size = sum(_numel(p) * p.element_size() for _, p in now)
            try:
                logged = ddp._get_ddp_logging_data()
                built_count = int(logged.get("num_parameter_tensors", -1))
                built_bytes = int(logged.get("total_parameter_size_bytes", -1))
            except Exception:  # noqa: BLE001 - private API; fall back to buckets only
                built_count = built_bytes = -1
            registered: list[torch.Tensor] | None = None
            if max(built_bytes, size) <= _DDP_BUCKET_BUDGET_BYTES:
                try:
                    buckets = reducer._get_zeros_like_grad_buckets()
                    registered = [p for b in buckets for p in b.parameters()]
                except Exception:  # noqa: BLE001 - private API
                    registered = None
            if registered is not None:
                reg_ids = {id(p) for p in registered}
                now_ids = {id(p) for _, p in now}
                for p in registered:
                    if id(p) not in now_ids:
                        name = ctx.name(p)
                        ctx.add(
                            DDP_BEFORE_FREEZE,
                            f"{name} was trainable when DistributedDataParallel was built and "
                            "is frozen now; DDP still waits for its gradient (reduction error, "
                            "or find_unused_parameters overhead); freeze before wrapping in "
                            "DDP, or rebuild DDP",
                            name,
                        )
                for _, p in now:
                    if id(p) not in reg_ids:
                        name = ctx.name(p)
                        ctx.add(
                            DDP_BEFORE_FREEZE,
                            f"{name} was unfrozen after DistributedDataParallel was built; DDP "
                            "never all-reduces its gradient, so replicas drift apart; set "
                            "requires_grad before wrapping in DDP, or rebuild DDP",
                            name,
                        )
            elif built_count >= 0 and (built_count != len(now) or built_bytes != size):
                ctx.add(
                    DDP_BEFORE_FREEZE,
                    f"DistributedDataParallel was built for {built_count} trainable tensors "
                    f"({built_bytes:,} bytes) but {len(now)} ({size:,} bytes) require grad "
                    "now; set requires_grad before wrapping in DDP, or rebuild DDP",
                    view.clean(""),
                )


# --------------------------------------------------------------------------- FZ309

FSDP_MIXED = register(
    Rule(
        "FZ309",
        "fsdp-mixed-requires-grad",
        Severity.ERROR,
        "An FSDP unit with use_orig_params=False flattens frozen and trainable parameters together.",
        what="""
For every FullyShardedDataParallel unit built with ``use_orig_params=False``, compares
``requires_grad`` of the original parameters it flattened (as currently registered on
their modules, e.g. inside ``summon_full_params``) with that of the FlatParameter.
""",
        why="""
With ``use_orig_params=False`` FSDP trains a whole FlatParameter or nothing: torch
refuses mixed ``requires_grad`` at wrap time, and setting ``requires_grad`` on an
original parameter afterwards (inside ``summon_full_params``) is silently dropped when
the views are rebuilt, so the "frozen" weights keep training.
""",
        example="""
model = FSDP(model, use_orig_params=False)
with FSDP.summon_full_params(model):
    model.module.backbone.requires_grad_(False)
""",
        use_instead="""
model.backbone.requires_grad_(False)
model = FSDP(model, use_orig_params=True)   # or wrap frozen modules as their own FSDP units
""",
    )
)


def _check_fsdp(ctx: _Ctx) -> None:
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    except ImportError:  # torch built without distributed
        return
    for view in ctx.models:
        mod_names = {id(m): n for n, m in view.given.named_modules(remove_duplicate=False)}
        for unit in (m for m in view.given.modules() if isinstance(m, FSDP)):
            flat = getattr(getattr(unit, "_handle", None), "flat_param", None)
            if flat is None or getattr(unit, "_use_orig_params", True):
                continue
            infos = list(getattr(flat, "_param_infos", ()))
            odd: list[str] = []
            for info in infos:
                # Original tensors are plain views between steps and Parameters inside
                # summon_full_params; either way their flag is what the user set.
                t = info.module._parameters.get(info.param_name)
                if t is None:
                    t = info.module.__dict__.get(info.param_name)
                if isinstance(t, torch.Tensor) and t.requires_grad != flat.requires_grad:
                    owner = mod_names.get(id(info.module), info.module_name)
                    odd.append(
                        view.clean(f"{owner}.{info.param_name}" if owner else info.param_name)
                    )
            if not odd:
                continue
            shown = ", ".join(odd[:3]) + (f" and {len(odd) - 3} more" if len(odd) > 3 else "")
            state = "trains" if flat.requires_grad else "stays frozen"
            ctx.add(
                FSDP_MIXED,
                f"FSDP unit with use_orig_params=False flattens {len(infos)} parameters into one "
                f"FlatParameter that {state} as a whole, but {shown} "
                f"{'is' if len(odd) == 1 else 'are'} set otherwise and the flag is ignored; set "
                "requires_grad before wrapping, with use_orig_params=True or a separate FSDP unit "
                "for frozen modules",
                odd[0],
                params=odd,
            )


# --------------------------------------------------------------------------- FZ310

REENTRANT_AFTER_FROZEN = register(
    Rule(
        "FZ310",
        "reentrant-checkpoint-after-frozen-prefix",
        Severity.ERROR,
        "A reentrant activation-checkpointed block with trainable parameters gets inputs that do not require grad.",
        what="""
Walks the modules in registration order and tracks whether anything trainable came
before. A block checkpointed with ``use_reentrant=True`` (``checkpoint_wrapper`` with
``CheckpointImpl.REENTRANT``, or a Hugging Face style module with
``gradient_checkpointing=True`` and a reentrant ``_gradient_checkpointing_func``) that
holds trainable parameters is flagged when everything registered before it is frozen
(or there is nothing before it). A forward hook named ``make_inputs_require_grads``
(Hugging Face's ``enable_input_require_grads``) counts as a trainable prefix.
Registration order is assumed to be execution order.
""",
        why="""
Reentrant checkpointing runs the block under ``no_grad`` and replays it in backward only
if one of its *inputs* requires grad. With a frozen prefix no input does, so the
trainable parameters inside get ``.grad = None`` and never train (torch only warns
"None of the inputs have requires_grad=True").
""",
        example="""
model.embed.requires_grad_(False)
model.blocks[0] = checkpoint_wrapper(model.blocks[0], checkpoint_impl=CheckpointImpl.REENTRANT)
""",
        use_instead="""
model.blocks[0] = checkpoint_wrapper(model.blocks[0], checkpoint_impl=CheckpointImpl.NO_REENTRANT)
# or make the block's input require grad (HF: model.enable_input_require_grads())
""",
    )
)


def _is_reentrant_fn(fn: object) -> bool:
    return isinstance(fn, functools.partial) and fn.keywords.get("use_reentrant") is True


def _reentrant_kind(mod: nn.Module) -> str | None:
    """'wrapper' for a reentrant CheckpointWrapper, 'hf' for an HF-style checkpointing module."""
    try:
        from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
            CheckpointImpl,
            CheckpointWrapper,
        )
    except ImportError:
        CheckpointWrapper = None  # type: ignore[assignment,misc]
    if CheckpointWrapper is not None and isinstance(mod, CheckpointWrapper):
        fn = getattr(mod, "checkpoint_fn", None)
        if isinstance(fn, functools.partial) and "use_reentrant" in fn.keywords:
            return "wrapper" if fn.keywords["use_reentrant"] is True else None
        return "wrapper" if mod.checkpoint_impl == CheckpointImpl.REENTRANT else None
    if (
        getattr(mod, "gradient_checkpointing", False) is True
        and mod.training
        and _is_reentrant_fn(getattr(mod, "_gradient_checkpointing_func", None))
    ):
        return "hf"
    return None


def _makes_inputs_require_grad(mod: nn.Module) -> bool:
    return any(
        getattr(h, "__name__", "") == "make_inputs_require_grads"
        for h in mod._forward_hooks.values()
    )


def _reentrant_block(name: str, mod: nn.Module, flows: bool, flagged: list[str]) -> bool:
    if not flows and any(p.requires_grad for p in mod.parameters()):
        flagged.append(name)
    # The output of a reentrant block requires grad only if one of its inputs did.
    return flows or _makes_inputs_require_grad(mod)


def _reentrant_walk(name: str, mod: nn.Module, flows: bool, flagged: list[str]) -> bool:
    """Visit ``mod`` in registration order; return whether gradients flow out of it."""
    kind = _reentrant_kind(mod)
    if kind == "wrapper" or (kind == "hf" and not _lists(mod)):
        return _reentrant_block(name, mod, flows, flagged)
    if any(p.requires_grad for p in mod.parameters(recurse=False)):
        flows = True
    for cname, child in mod.named_children():
        full = f"{name}.{cname}" if name else cname
        if kind == "hf" and isinstance(child, nn.ModuleList):
            for i, layer in enumerate(child):
                flows = _reentrant_block(f"{full}.{i}", layer, flows, flagged)
        else:
            flows = _reentrant_walk(full, child, flows, flagged)
    return flows or _makes_inputs_require_grad(mod)


def _check_reentrant(ctx: _Ctx) -> None:
    for view in ctx.models:
        flagged: list[str] = []
        _reentrant_walk("", view.root, False, flagged)
        for name in flagged:
            shown = view.rel(name)
            ctx.add(
                REENTRANT_AFTER_FROZEN,
                f"{shown} uses reentrant activation checkpointing but nothing trainable comes "
                "before it, so its inputs do not require grad and its trainable parameters get "
                "no gradient; use use_reentrant=False (CheckpointImpl.NO_REENTRANT) or make its "
                "input require grad",
                shown,
            )


def _lists(mod: nn.Module) -> bool:
    return any(isinstance(c, nn.ModuleList) for c in mod.children())


# --------------------------------------------------------------------------- FZ311

FROZEN_CHANGED = register(
    Rule(
        "FZ311",
        "frozen-param-changed",
        Severity.ERROR,
        "A frozen parameter changed during the observed training steps.",
        what="""
Used by ``freezedsl lint train.py --steps N``: around every ``optimizer.step()`` of the
first N steps, the optimizer's tensors that have ``requires_grad=False`` when the step
starts are copied and compared when it returns. A change is reported with the tensor's
name and the step number, so a freeze added mid-training (stale gradients, momentum,
weight decay) is caught at the step it goes wrong. Changes made outside ``step()`` (an
EMA teacher updated under ``no_grad``) and tensors unfrozen on a schedule are not
findings. ``snapshot_frozen``/``frozen_changes`` compare a whole window instead.
""",
        why="""
Whatever the mechanism (optimizer momentum, weight decay, a manual in-place update,
an EMA or a reloaded checkpoint), the weights that were meant to stay fixed did not.
""",
        example="""
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
...                                   # train for a while
model.backbone.requires_grad_(False)
opt.zero_grad(set_to_none=False)
""",
        use_instead="""
model.backbone.requires_grad_(False)
opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
""",
    )
)


def snapshot_frozen(
    model: nn.Module | Sequence[nn.Module], *, budget_bytes: int | None = None
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """CPU copies of every frozen parameter, keyed by display name: ``{name: (param, copy)}``.

    With ``budget_bytes``, stops copying once the budget is spent (large frozen backbones).
    """
    ctx, _ = _context(_as_list(model), [], "<runtime>")  # unreadable models: FZ003 in check()
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    spent = 0
    for name, p in ctx.all_params():
        if p.requires_grad or _lazy(p):
            continue
        size = p.numel() * p.element_size()
        if budget_bytes is not None and spent + size > budget_bytes:
            continue
        spent += size
        out[name] = (p, p.detach().to("cpu", copy=True))
    return out


def frozen_changes(
    snapshot: dict[str, tuple[torch.Tensor, torch.Tensor]], *, steps: int, path: str = "<runtime>"
) -> list[Diagnostic]:
    """FZ311 for every snapshotted parameter whose values differ now."""
    out: list[Diagnostic] = []
    for name, (p, before) in snapshot.items():
        now = p.detach().to("cpu")
        if now.shape != before.shape:
            delta = float("inf")
        else:
            delta = float((now.double() - before.double()).abs().max()) if now.numel() else 0.0
        if delta > 0:
            out.append(
                diag(
                    FROZEN_CHANGED,
                    f"frozen parameter {name} changed during {steps} optimizer step(s) (max abs "
                    f"change {delta:.3g}); keep frozen parameters out of the optimizer and set "
                    "their .grad to None",
                    path,
                    obj=name,
                    extra={"max_abs_change": delta, "steps": steps},
                )
            )
    return out


class StepWatch:
    """Watches every ``optimizer.step()``: a tensor frozen when the step starts must not move.

    Only the stepping optimizer's own tensors that have ``requires_grad=False`` at the
    start of the step are copied (nothing at all for correct code), so changes made
    outside ``step()`` (an EMA/momentum teacher updated under ``no_grad``) and tensors
    unfrozen on a schedule (they are trainable when their step starts) are never
    reported. One FZ311 per tensor, at the first step that moved it.
    """

    def __init__(self, models: Sequence[nn.Module], path: str, budget_bytes: int) -> None:
        ctx, _ = _context(list(models), [], path)
        self.names = ctx.names
        self.path = path
        self.budget = budget_bytes
        self.reported: set[int] = set()
        self.skipped = 0  # frozen tensors not copied (budget)
        self.open: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def start(self, opt: Optimizer) -> None:
        """Copy the optimizer's tensors that are frozen as this step starts."""
        spent, copies = 0, []
        for group in opt.param_groups:
            for p in group["params"]:
                if p.requires_grad or _lazy(p) or id(p) in self.reported:
                    continue
                size = p.numel() * p.element_size()
                if spent + size > self.budget:
                    self.skipped += 1
                    continue
                spent += size
                copies.append((p, p.detach().to("cpu", copy=True)))
        self.open[id(opt)] = copies

    def finish(self, opt: Optimizer, step: int) -> list[Diagnostic]:
        """FZ311 for each tensor that was frozen when the step started and moved in it."""
        out: list[Diagnostic] = []
        with torch.no_grad():
            for p, before in self.open.pop(id(opt), []):
                now = p.detach().to("cpu")
                if now.shape != before.shape:
                    delta = float("inf")
                else:
                    delta = float((now.double() - before.double()).abs().max()) if now.numel() else 0.0
                if delta <= 0:
                    continue
                self.reported.add(id(p))
                name = self.names.get(id(p)) or f"<tensor {tuple(p.shape)}, not in the model>"
                out.append(
                    diag(
                        FROZEN_CHANGED,
                        f"frozen parameter {name} changed in optimizer step {step} of "
                        f"{type(opt).__name__} (max abs change {delta:.3g}); it had "
                        "requires_grad=False when the step started, so a stale .grad, "
                        "momentum or weight decay moved it; keep frozen parameters out of "
                        "the optimizer and set their .grad to None",
                        self.path,
                        obj=name,
                        extra={"max_abs_change": delta, "step": step},
                    )
                )
        return out


# --------------------------------------------------------------------------- API

_CHECKS = (
    _check_frozen_in_optimizer,
    _check_trainable_not_in_optimizer,
    _check_nothing_trainable,
    _check_head_frozen,
    _check_norm_stats,
    _check_duplicates,
    _check_ddp,
    _check_fsdp,
    _check_reentrant,
)

# The rule each check reports, to name a check that failed (FZ003).
_CHECK_NAMES: dict[Any, str] = {
    _check_frozen_in_optimizer: "frozen-param-in-optimizer",
    _check_trainable_not_in_optimizer: "trainable-param-not-in-optimizer",
    _check_nothing_trainable: "nothing-trainable",
    _check_head_frozen: "head-frozen",
    _check_norm_stats: "norm-stats-drift",
    _check_duplicates: "param-in-two-groups",
    _check_ddp: "ddp-built-before-freeze",
    _check_fsdp: "fsdp-mixed-requires-grad",
    _check_reentrant: "reentrant-checkpoint-after-frozen-prefix",
}


def check(
    model: nn.Module | Sequence[nn.Module],
    optimizer: Optimizer | Sequence[Optimizer] | None = None,
    *,
    path: str = "<runtime>",
    stepping: Optimizer | None = None,
) -> list[Diagnostic]:
    """Run every FZ3xx check on live models and optimizers; reads state, changes nothing.

    With several models, parameter names are prefixed with the model's class name.
    ``stepping`` (run mode) limits FZ301/FZ302 to the optimizer about to step: another
    optimizer may hold tensors frozen on purpose while this one steps (GAN alternation).
    """
    ctx, failed = _context(_as_list(model), _as_list(optimizer), path)
    ctx.stepping = stepping
    with torch.no_grad():
        for run in _CHECKS:
            before = len(ctx.out)
            try:
                run(ctx)
            except Exception as exc:  # noqa: BLE001 - a crashed check is FZ003, not a pass
                del ctx.out[before:]  # a half-done check's findings are not trusted
                failed.append(_failed(f"check {_CHECK_NAMES[run]!r}", exc, path))
    return ctx.out + failed


def assert_ok(
    model: nn.Module | Sequence[nn.Module],
    optimizer: Optimizer | Sequence[Optimizer] | None = None,
    *,
    ignore: Iterable[str] = (),
) -> None:
    """Raise :class:`FreezeLintError` if :func:`check` finds anything not in ``ignore``.

    ``ignore`` takes codes (``"FZ301"``) or rule names (``"frozen-param-in-optimizer"``).
    """
    from freezedsl.lint.registry import RULES

    skip = set(ignore)
    skip |= {code for code, rule in RULES.items() if rule.name in skip}
    found = [d for d in check(model, optimizer) if d.code not in skip]
    if found:
        raise FreezeLintError(found)


def describe_model(model: nn.Module) -> str:
    """``ResNet (11,689,512 params, 5,130 trainable)``: a short label for reports."""
    root, _ = _unwrap(model)
    seen: set[int] = set()
    total = trainable = 0
    try:
        for p in model.parameters():
            if id(p) in seen:
                continue
            seen.add(id(p))
            total += _numel(p)
            trainable += _numel(p) if p.requires_grad else 0
    except Exception as exc:  # noqa: BLE001 - check() reports it as FZ003
        return f"{type(root).__name__} (parameters unreadable: {type(exc).__name__})"
    wrap = "" if root is model else f" in {type(model).__name__}"
    return f"{type(root).__name__}{wrap} ({total:,} params, {trainable:,} trainable)"


def describe_optimizer(opt: Optimizer) -> str:
    """``SGD(lr=0.1, momentum=0.9; 2 groups, 4 tensors)``: a short label for reports."""
    g0 = opt.param_groups[0] if opt.param_groups else {}
    keys = ("lr", "momentum", "weight_decay")
    hp = ", ".join(
        f"{k}={g0[k]:g}"
        for k in keys
        if isinstance(g0.get(k), (int, float)) and (k == "lr" or g0[k])
    )
    tensors = sum(len(g["params"]) for g in opt.param_groups)
    return f"{type(opt).__name__}({hp}; {len(opt.param_groups)} groups, {tensors} tensors)"
