"""FZ308-FZ310: DDP built before the freeze, FSDP units mixing frozen and trainable
tensors, reentrant checkpointing after a frozen prefix."""

from __future__ import annotations

import functools
from typing import cast

import torch
from torch import nn

from freezedsl.lint.registry import Diagnostic, Rule, Severity, diag, register
from freezedsl.lint.runtime._context import (
    _Ctx,
    _numel,
    _unwrap,
)

# DDP's bucket view allocates a zero copy of all gradients; above this we compare counts.
_DDP_BUCKET_BUDGET_BYTES = 512 << 20

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


# --------------------------------------------------------------------------- FZ314

FROZEN_AFTER_PREPARE = register(
    Rule(
        "FZ314",
        "freeze-after-accelerate-prepare",
        Severity.ERROR,
        "requires_grad changed after the model went through accelerator.prepare().",
        what="""
Reported by ``freezedsl lint train.py ...`` when a model passed to Hugging Face
Accelerate's ``accelerator.prepare(...)`` has parameters whose ``requires_grad`` differs,
at the first ``optimizer.step()``, from what it was when ``prepare`` ran.
""",
        why="""
``prepare`` wraps the model like DDP (or FSDP/DeepSpeed) in multi-process runs: the
wrapper records which tensors are trainable when it is built, so a later freeze leaves
the reducer waiting for gradients that never come ("Expected to have finished reduction
in the prior iteration"), or the engine keeps updating the frozen tensors. A
single-process run hides the mistake until the job is launched on several GPUs.
""",
        example="""
model, optimizer = accelerator.prepare(model, optimizer)
model.backbone.requires_grad_(False)
""",
        use_instead="""
model.backbone.requires_grad_(False)
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
model, optimizer = accelerator.prepare(model, optimizer)
""",
    )
)


def requires_grad_at(model: nn.Module) -> dict[int, bool]:
    """``{id(param): requires_grad}``: what a wrapper built now would record."""
    return {id(p): p.requires_grad for p in model.parameters()}


def changed_since_prepare(
    model: nn.Module, recorded: dict[int, bool], path: str
) -> list[Diagnostic]:
    """FZ314 (one finding per model) when requires_grad changed since ``prepare``."""
    names = {id(p): n for n, p in model.named_parameters()}
    frozen: list[str] = []
    unfrozen: list[str] = []
    for p in model.parameters():
        was = recorded.get(id(p))
        if was is None or was == p.requires_grad:
            continue
        (frozen if was else unfrozen).append(names.get(id(p), "?"))
    if not frozen and not unfrozen:
        return []
    what = []
    if frozen:
        what.append(
            f"{len(frozen)} frozen ({', '.join(frozen[:3])}{', ...' if len(frozen) > 3 else ''})"
        )
    if unfrozen:
        what.append(
            f"{len(unfrozen)} unfrozen ({', '.join(unfrozen[:3])}{', ...' if len(unfrozen) > 3 else ''})"
        )
    label = type(_unwrap(model)[0]).__name__
    return [
        diag(
            FROZEN_AFTER_PREPARE,
            f"{label} went through accelerator.prepare() and then had {' and '.join(what)} "
            "tensors change requires_grad; freeze before building the optimizer and before "
            "accelerator.prepare()",
            path,
            obj=label,
            extra={"frozen": frozen, "unfrozen": unfrozen},
        )
    ]
