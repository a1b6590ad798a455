"""FZ304-FZ306: the model itself - nothing trainable, a frozen head, norm statistics."""

from __future__ import annotations

from torch import nn

from freezedsl.lint.registry import Rule, Severity, register
from freezedsl.lint.runtime._context import (
    _Ctx,
    _numel,
)

_HEAD_NAMES = ("fc", "head", "heads", "classifier", "lm_head")

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
are all tied to an earlier module (e.g. an LM head tied to the embedding) is skipped,
and so is a peft ``PeftModel``: peft decides whether the head trains (a causal LM's
head stays frozen under LoRA; a classifier goes into ``modules_to_save``).
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
    prefix, root = _peft_inner(root)
    named = [(n, c) for n, c in root.named_children() if n in _HEAD_NAMES]
    named = [(n, c) for n, c in named if any(True for _ in c.parameters())]
    if named:
        return prefix + named[-1][0], named[-1][1]
    linears = [(n, m) for n, m in root.named_modules() if isinstance(m, nn.Linear) and not _peft_part(n)]
    return (prefix + linears[-1][0], linears[-1][1]) if linears else None


def _peft_inner(root: nn.Module) -> tuple[str, nn.Module]:
    """The transformers model inside a PeftModel (``base_model.model``), and its name prefix."""
    prefix = ""
    for wrapper, attr in (("PeftModel", "base_model"), ("BaseTuner", "model")):
        inner = root._modules.get(attr)
        if inner is not None and any(c.__name__ == wrapper for c in type(root).__mro__):
            prefix, root = f"{prefix}{attr}.", inner
    return prefix, root


def _peft_part(name: str) -> bool:
    """A module peft adds (adapter weights, the copies of a ModulesToSaveWrapper): never the head."""
    return any(part in _PEFT_PARTS for part in name.split("."))


_PEFT_PARTS = frozenset({"lora_A", "lora_B", "modules_to_save", "original_module", "base_layer"})


def _check_head_frozen(ctx: _Ctx) -> None:
    everything_frozen = not any(p.requires_grad for _, p in ctx.all_params())
    for view in ctx.models:
        found = _find_head(view.root)
        if found is None or _peft_inner(view.root)[0]:
            continue  # a PeftModel: peft decides the head (frozen LM head, modules_to_save)
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
