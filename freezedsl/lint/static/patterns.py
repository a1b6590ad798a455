"""Order checks of whole-model mistakes: FZ210 (unfreeze all after a selective freeze),
FZ212 (nothing left to train) and FZ213 (manual update ignores ``requires_grad``).

They compare events of one scope like :mod:`.order`, but each also asks that nothing the
walk cannot see stands between the two events (a call that might train, unfreeze or
replace something): the source lines in between may only do ``requires_grad``
bookkeeping. Precision first: a finding here claims the whole model ends up wrong.
"""

from __future__ import annotations

import ast
import re

from freezedsl.lint.static.astutil import _refs, _root, _within
from freezedsl.lint.static.facts import _Event, _exclusive, _File
from freezedsl.lint.static.rules import (
    FROZEN_NORM_TRAINING,
    NOTHING_TRAINABLE,
    UNFREEZE_ALL_AFTER_FREEZE,
    UPDATE_IGNORES_FROZEN,
)

# A line that only does requires_grad bookkeeping (or is blank / a comment / control flow).
_BOOKKEEPING = re.compile(
    r"^\s*(?:$|#|for\b.*\b(?:parameters|named_parameters|modules|named_modules|children)\(|"
    r"if\b|elif\b|else\b|continue\b|pass\b|print\(|logger\.|logging\.)|requires_grad"
)
_CALL = re.compile(r"\w\s*\(")
_IN_PLACE = frozenset(
    ("mul_", "add_", "sub_", "div_", "addcdiv_", "addcmul_", "lerp_", "clamp_", "clamp_min_")
)


def _line(e: _Event) -> int:
    return getattr(e.node, "lineno", 0)


def _end(e: _Event) -> int:
    node = e.loop if e.loop is not None else e.node
    return getattr(node, "end_lineno", None) or _line(e)


def _quiet_between(ctx: _File, a: _Event, b: _Event) -> bool:
    """Only bookkeeping lines stand between the end of ``a`` and the start of ``b``."""
    lo, hi = _end(a), _line(b)
    if hi < lo:
        return False
    root = re.compile(rf"\b{re.escape(_root(a.target))}\b")
    return all(
        _BOOKKEEPING.search(text) or (not _CALL.search(text) and not root.search(text))
        for text in (ctx.lines[k - 1] for k in range(lo + 1, hi) if k > 0)
    )


def _outer_loops(e: _Event) -> tuple[int, ...]:
    """Loops around ``e`` other than the loop that binds its parameter variable."""
    return tuple(k for k in e.loops if e.loop is None or k != id(e.loop))


def _dominates(f: _Event, later: _Event) -> bool:
    """``f`` runs whenever ``later`` does: its branches are a prefix of ``later``'s."""
    return f.branches == later.branches[: len(f.branches)] and not _exclusive(f, later)


def _touched(events: list[_Event], lo: int, hi: int, target: str) -> bool:
    """Something between events ``lo`` and ``hi`` unfreezes, replaces or rebinds a part of
    ``target`` (or ``target`` itself), or the freeze is toggled in a loop."""
    for k in range(lo + 1, hi):
        e = events[k]
        if e.kind in ("UNFREEZE", "HEAD", "KILL", "SETGRAD") and (
            _within(e.target, target) or _within(target, e.target)
        ):
            if e.kind == "KILL" and e.value is not None and _refs(e.value, e.target):
                continue  # `model = model.to(device)` / `model = helper(model)`
            return True
    return False


def check_patterns(ctx: _File, events: list[_Event]) -> set[int]:
    """Run FZ210, FZ212 and FZ213 over one scope; returns the optimizer nodes FZ212
    reported (FZ202 would only repeat them)."""
    empty: set[int] = set()
    for i, e in enumerate(events):
        if e.kind == "UNFREEZE" and e.whole and ".*" not in e.target:
            _unfreeze_all(ctx, events, i)
        elif e.kind == "OPT" and id(e.node) not in empty:
            if _nothing_trainable(ctx, events, i):
                empty.add(id(e.node))
        elif e.kind == "UPDATE":
            _manual_update(ctx, events, i)
        elif e.kind == "TRAIN":
            _frozen_norm_training(ctx, events, i)
    return empty


def _unfreeze_all(ctx: _File, events: list[_Event], i: int) -> None:
    u = events[i]
    for j in range(i - 1, -1, -1):
        f = events[j]
        if f.kind != "FREEZE" or not _within(f.target, u.target):
            continue
        if f.target == u.target and f.whole:  # freeze all, unfreeze all: a reset
            continue
        # the unfreeze runs whenever the freeze's context does (the freeze may be guarded
        # inside its own loop, the unfreeze not)
        if u.branches != f.branches[: len(u.branches)] or _outer_loops(f) != _outer_loops(u):
            continue
        if _touched(events, j, i, u.target) or not _quiet_between(ctx, f, u):
            continue
        ctx.report(
            UNFREEZE_ALL_AFTER_FREEZE,
            u.loop if u.loop is not None else u.node,
            f"this unfreezes every parameter of {u.target}, including "
            f"{f.target.replace('.*', '.<submodule>')} frozen at line {_line(f)}, so the "
            f"freeze has no effect; unfreeze only the part that should train",
            obj=u.target,
        )
        return


def _nothing_trainable(ctx: _File, events: list[_Event], i: int) -> bool:
    opt = events[i]
    sources = [e for e in events if e.kind == "OPT" and e.node is opt.node]
    found: list[tuple[_Event, _Event]] = []
    for s in sources:
        k = events.index(s)
        f = next(
            (
                events[j]
                for j in range(k - 1, -1, -1)
                if events[j].kind == "FREEZE"
                and events[j].whole
                and ".*" not in events[j].target
                and _within(s.target, events[j].target)
                and _dominates(events[j], s)
                and not _touched(events, j, k, events[j].target)
                and _quiet_between(ctx, events[j], s)
            ),
            None,
        )
        if f is None:
            return False
        found.append((s, f))
    if not found:
        return False
    s, f = found[0]
    ctx.report(
        NOTHING_TRAINABLE,
        opt.node,
        f"every parameter of {f.target} was frozen at line {_line(f)} and nothing was "
        f"unfrozen since, so {opt.label} gets no trainable parameter from "
        f"{s.target}.parameters(); unfreeze the part that should train (the new head) first",
        obj=s.target,
    )
    return True


def _manual_update(ctx: _File, events: list[_Event], i: int) -> None:
    u = events[i]
    for j in range(i - 1, -1, -1):
        f = events[j]
        if f.kind != "FREEZE" or not _within(f.target, u.target) or _exclusive(f, u):
            continue
        if _touched(events, j, i, f.target):
            continue
        ctx.report(
            UPDATE_IGNORES_FROZEN,
            u.node,
            f"this loop changes every parameter of {u.target} in place, although "
            f"{f.target.replace('.*', '.<submodule>')} was frozen at line {_line(f)}; skip "
            f"frozen parameters with `if p.requires_grad:` (or `if p.grad is None: continue`)",
            obj=u.target,
        )
        return


_HAS_BN = re.compile(
    r"BatchNorm|resnet|resnext|regnet|mobilenet|efficientnet|densenet|inception|vgg\d+_bn|yolo",
    re.IGNORECASE,
)
_KEEPS_STATS = re.compile(r"norm_eval|freeze_bn|track_running_stats|momentum=0\b")


def _norm_stats_unguarded(ctx: _File) -> bool:
    """The file shows BatchNorm and never puts a part of a model in eval mode (module
    docstring of FZ214): computed once per file."""
    if "norm" in ctx.notes:
        return ctx.notes["norm"]
    if ctx.tree is None:
        return False
    # evidence from code only (names, attributes, strings, keywords), never comments
    words: list[str] = []
    evals: set[str] = set()
    trains: set[str] = set()
    for n in ast.walk(ctx.tree):
        if isinstance(n, ast.Name):
            words.append(n.id)
        elif isinstance(n, ast.Attribute):
            words.append(n.attr)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str) and len(n.value) < 80:
            words.append(n.value)
        elif isinstance(n, ast.keyword) and n.arg is not None:
            words.append(f"{n.arg}={ast.unparse(n.value)}")
        elif isinstance(n, ast.alias):
            words.append(n.name)
        if (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr in ("eval", "train", "apply")
        ):
            if n.func.attr == "apply":
                evals.add("<apply>")
            else:
                (evals if n.func.attr == "eval" else trains).add(ast.unparse(n.func.value))
    text = "\n".join(words)
    ok = bool(_HAS_BN.search(text)) and not _KEEPS_STATS.search(text) and evals <= trains
    ctx.notes["norm"] = ok
    return ok


def _reverted_before(events: list[_Event], lo: int, hi: int, target: str) -> bool:
    """Between events ``lo`` and ``hi``: an unfreeze of (a part of) ``target`` or of what
    contains it, or ``target`` rebound. A new head assigned inside it keeps the rest frozen."""
    return any(
        e.kind in ("UNFREEZE", "SETGRAD", "KILL")
        and (_within(e.target, target) or _within(target, e.target))
        and not (e.kind == "KILL" and e.value is not None and _refs(e.value, e.target))
        for e in events[lo + 1 : hi]
    )


def _frozen_norm_training(ctx: _File, events: list[_Event], i: int) -> None:
    t = events[i]
    for j in range(i - 1, -1, -1):
        f = events[j]
        if f.kind != "FREEZE" or not _within(f.target, t.target) or ".*" in f.target:
            continue
        if _exclusive(f, t) or _reverted_before(events, j, i, f.target):
            continue
        if not _norm_stats_unguarded(ctx):
            return
        ctx.report(
            FROZEN_NORM_TRAINING,
            t.node,
            f"{t.target}.train() puts the BatchNorm layers of {f.target} (frozen at line "
            f"{_line(f)}) in train mode and nothing sets them to eval, so their running "
            f"statistics keep changing; call .eval() on the frozen part after every "
            f"train(), or use a freezedsl `freeze stats` rule",
            obj=f.target,
        )
        return


def updates_in_place(loop: ast.For | ast.AsyncFor, var: str) -> bool:
    """The loop body changes the parameter ``var`` in place and never tests its
    ``requires_grad`` or ``grad`` first."""
    changes = guarded = False
    for n in ast.walk(loop):
        if isinstance(n, (ast.If, ast.IfExp, ast.While)) or (
            isinstance(n, ast.comprehension) and n.ifs
        ):
            tests = [n.test] if not isinstance(n, ast.comprehension) else n.ifs
            for t in tests:
                for sub in ast.walk(t):
                    if (
                        isinstance(sub, ast.Attribute)
                        and sub.attr in ("requires_grad", "grad")
                        and isinstance(sub.value, ast.Name)
                        and sub.value.id == var
                    ):
                        guarded = True
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):
            if n.func.attr in _IN_PLACE and _is_param(n.func.value, var):
                changes = True
        elif (
            isinstance(n, ast.AugAssign)
            and _is_param(n.target, var)
            or isinstance(n, ast.Assign)
            and isinstance(n.value, ast.BinOp)  # `p.data = p.data.to(...)` is a cast
            and any(
                isinstance(t, ast.Attribute) and t.attr == "data" and _is_param(t, var)
                for t in n.targets
            )
        ):
            changes = True
    return changes and not guarded


def _is_param(node: ast.AST, var: str) -> bool:
    """``p``, ``p.data``, ``p.grad`` or ``p.grad.data`` (the gradient of a frozen
    parameter is ``None``, so changing it in place fails)."""
    if isinstance(node, ast.Attribute) and node.attr == "data":
        node = node.value
    if isinstance(node, ast.Attribute) and node.attr == "grad":
        node = node.value
    return isinstance(node, ast.Name) and node.id == var
