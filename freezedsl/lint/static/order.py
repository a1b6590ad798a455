"""Order checks over one scope's events: FZ201, FZ202, FZ203, FZ207, FZ208 (and, through
:mod:`.patterns`, FZ210, FZ212, FZ213)."""

from __future__ import annotations

import ast

from freezedsl.lint.static.astutil import _refs, _within
from freezedsl.lint.static.facts import _Event, _exclusive, _File
from freezedsl.lint.static.patterns import check_patterns
from freezedsl.lint.static.rules import (
    FREEZE_AFTER_DDP,
    HEAD_FROZEN,
    OPT_BEFORE_FREEZE,
    TRAIN_UNDOES_EVAL,
    UNFILTERED_OPT,
)
from freezedsl.lint.static.stale import check_stale_optimizer


def _show(f: _Event, *, past: bool = False) -> str:
    """``model.backbone is`` / ``parameters of model are`` / ``submodules of model are``."""
    one, many = ("was", "were") if past else ("is", "are")
    if f.target.endswith(".*"):
        return f"submodules of {f.target[:-2]} {many}"
    if ".*" in f.target:
        return f"{f.target.replace('.*', '.<submodule>')} of some submodules {many}"
    if f.loop is not None and not f.whole:
        return f"parameters of {f.target} {many}"
    return f"{f.target} {one}"


def _killed(events: list[_Event], i: int, j: int, *targets: str) -> bool:
    """Whether one of ``targets`` is rebound between event ``i`` and event ``j``."""
    for k in range(i + 1, j):
        e = events[k]
        if e.kind in ("KILL", "HEAD") and any(_within(t, e.target) for t in targets):
            if e.kind == "KILL" and e.value is not None and _refs(e.value, e.target):
                continue  # `model = model.to(device)` rebinds the same object
            return True
    return False


def _reverted(
    events: list[_Event], j: int, lo: int, hi: int | None = None, *, partial: bool = False
) -> bool:
    """The freeze at ``j`` is unfrozen again between events ``lo`` and ``hi`` (exclusive),
    or toggled inside a loop that also holds the freeze (GAN-style). ``partial`` also
    counts unfreezing only a part of the frozen module."""
    f = events[j]
    own = {id(f.loop)} if f.loop is not None else set()
    for k, u in enumerate(events):
        if u.kind != "UNFREEZE":
            continue
        if not (_within(f.target, u.target) or (partial and _within(u.target, f.target))):
            continue
        if not partial and f.whole and not u.whole and u.loop is not None and u.loop is f.loop:
            continue  # freeze every parameter, unfreeze some: still a freeze (per parameter)
        other = {id(u.loop)} if u.loop is not None else set()
        # In a shared outer loop, even `if warmup: freeze / else: unfreeze` toggles.
        if (set(f.loops) & set(u.loops)) - own - other:
            return True
        if lo < k and (hi is None or k < hi) and not _exclusive(f, u):
            return True
    return False


def _drops_state(ctx: _File, line: int) -> bool:
    """The function (or module body) holding the freeze at ``line`` removes optimizer
    state after it (``opt.state.pop(p)``, ``del opt.state[p]``, ``opt.state.clear()``):
    a deliberate mid-training freeze that takes the frozen tensors' momentum out of the
    optimizer. Which tensors is not followed; precision first."""
    if ctx.tree is None:
        return False
    if ctx.state_drops_ is None:
        ctx.state_drops_ = []
        for node in ast.walk(ctx.tree):
            target = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in ("pop", "clear"):
                    target = node.func.value
            elif isinstance(node, ast.Delete) and isinstance(node.targets[0], ast.Subscript):
                target = node.targets[0].value
            if isinstance(target, ast.Attribute) and target.attr == "state":
                ctx.state_drops_.append(target.lineno)
    if not ctx.state_drops_:
        return False
    funcs = [
        (fn.lineno, fn.end_lineno or fn.lineno)
        for fn in ast.walk(ctx.tree)
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]

    def scope(at: int) -> tuple[int, int] | None:  # the innermost function around a line
        around = [f for f in funcs if f[0] <= at <= f[1]]
        return max(around, default=None)

    own = scope(line)
    return any(h > line and scope(h) == own for h in ctx.state_drops_)


def _check_scope(ctx: _File, events: list[_Event]) -> None:
    lines = {id(e.node): getattr(e.node, "lineno", 0) for e in events}
    empty = check_patterns(ctx, events)
    for i, e in enumerate(events):
        if e.kind == "OPT":
            _check_opt(ctx, events, i, lines, id(e.node) in empty)
            check_stale_optimizer(ctx, events, i)
        elif e.kind == "FREEZE":
            _check_freeze(ctx, events, i, lines)
        elif e.kind == "TRAIN":
            _check_train(ctx, events, i, lines)


def _check_opt(
    ctx: _File, events: list[_Event], i: int, lines: dict[int, int], empty: bool = False
) -> None:
    opt = events[i]
    for j in range(i + 1, len(events)):
        f = events[j]
        if f.kind != "FREEZE" or not _within(f.target, opt.target) or _exclusive(opt, f):
            continue
        if _killed(events, i, j, opt.target, f.target) or _reverted(events, j, j):
            continue
        if _drops_state(ctx, lines[id(f.node)]):
            continue
        ctx.report(
            OPT_BEFORE_FREEZE,
            opt.node,
            f"{opt.label} is built from {opt.target}.parameters() before {_show(f)} frozen "
            f"at line {lines[id(f.node)]}, so the frozen parameters stay in the optimizer; "
            f"freeze first, then build it from the trainable parameters only",
            obj=opt.target,
        )
        break
    if opt.filtered or empty:  # FZ212 already says nothing is left to train
        return
    for j in range(i - 1, -1, -1):
        f = events[j]
        if f.kind != "FREEZE" or not _within(f.target, opt.target) or _exclusive(opt, f):
            continue
        if _killed(events, j, i, opt.target, f.target):
            continue
        if _reverted(events, j, j, i) or _reverted(events, j, i, partial=True):
            continue
        ctx.report(
            UNFILTERED_OPT,
            opt.node,
            f"{opt.label} gets every parameter of {opt.target} although "
            f"{_show(f, past=True)} frozen at line {lines[id(f.node)]}; pass "
            f"filter(lambda p: p.requires_grad, {opt.target}.parameters()) instead",
            obj=opt.target,
        )
        break


def _check_freeze(ctx: _File, events: list[_Event], j: int, lines: dict[int, int]) -> None:
    f = events[j]
    if f.whole:
        heads = [
            (i, h)
            for i, h in enumerate(events[:j])
            if h.kind == "HEAD"
            and h.target != f.target
            and _within(h.target, f.target)
            and not _exclusive(h, f)
            and not _killed(events, i, j, h.target)
        ]
        for i, h in heads:
            later = events[j + 1 :]
            if any(
                (
                    u.kind == "UNFREEZE"
                    and (
                        _within(h.target, u.target)
                        or _within(u.target, h.target)
                        or u.target.startswith(f.target + ".*")
                    )
                )
                or (u.kind in ("KILL", "HEAD") and _within(h.target, u.target))
                for u in later
            ):
                continue
            ctx.report(
                HEAD_FROZEN,
                f.loop if f.loop is not None else f.node,
                f"this freezes every parameter of {f.target}, including the new "
                f"{h.target} assigned at line {lines[id(h.node)]}; freeze before assigning "
                f"the head, or unfreeze it afterwards with {h.target}.requires_grad_(True)",
                obj=h.target,
            )
            break
    for i in range(j - 1, -1, -1):
        w = events[i]
        if w.kind != "WRAP" or not _within(f.target, w.target) or _exclusive(w, f):
            continue
        if _killed(events, i, j, w.target) or _reverted(events, j, j):
            continue
        ctx.report(
            FREEZE_AFTER_DDP,
            f.node,
            f"{_show(f)} frozen after {w.target} was wrapped by {w.label} at line "
            f"{lines[id(w.node)]}, which fixes the set of trainable parameters at wrap time; "
            f"freeze before wrapping",
            obj=f.target,
        )
        break


def _check_train(ctx: _File, events: list[_Event], j: int, lines: dict[int, int]) -> None:
    t = events[j]
    for i in range(j - 1, -1, -1):
        e = events[i]
        if e.kind != "EVAL_SUB" or e.target == t.target or not _within(e.target, t.target):
            continue
        if _exclusive(e, t) or _killed(events, i, j, t.target, e.target):
            continue
        if any(
            (r.kind == "EVAL_SUB" and r.target == e.target and not _exclusive(r, t))
            or (r.kind == "REEVAL" and (_within(r.target, t.target) or _within(t.target, r.target)))
            for r in events[j + 1 :]
        ):
            continue
        sub = f"submodules of {e.target[:-2]}" if e.target.endswith(".*") else e.target
        at, via = t.node, ""
        if t.origin is not None:  # the train() call sits in a method this scope runs
            key = f"FZ208:{id(t.origin)}"
            if ctx.notes.get(key):
                break
            ctx.notes[key] = True
            at, via = t.origin, f" (this method runs from line {lines[id(t.node)]})"
        ctx.report(
            TRAIN_UNDOES_EVAL,
            at,
            f"{t.target}.train() puts {sub} (set to eval at line {lines[id(e.node)]}) back in "
            f"train mode{via}, so frozen norm layers update their running stats; call .eval() "
            f"on them again after {t.target}.train(), or use a freezedsl `freeze stats` rule",
            obj=t.target,
        )
        break
