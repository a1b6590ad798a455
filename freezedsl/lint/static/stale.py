"""FZ218: a part frozen when a filtered optimizer was built is unfrozen later, and the
same optimizer keeps being used.

``filter(lambda p: p.requires_grad, model.parameters())`` takes a snapshot: parameters
unfrozen afterwards are in no param group, so they never train. The check compares
events of one scope (:mod:`.order`) and asks for evidence that the stale optimizer is
still what trains afterwards: its variable is read after the unfreeze, nothing builds a
new optimizer over that part after it, and the file never calls ``add_param_group``.
"""

from __future__ import annotations

import ast

from freezedsl.lint.static.astutil import _dotted, _within
from freezedsl.lint.static.facts import _Event, _exclusive, _File
from freezedsl.lint.static.rules import UNFREEZE_MISSED_BY_OPTIMIZER


def _line(node: ast.AST) -> int:
    return getattr(node, "lineno", 0)


def _optimizer_name(ctx: _File, call: ast.AST) -> tuple[str, ast.AST] | None:
    """The dotted name ``call`` is assigned to, and the function (or module) holding it."""
    if ctx.tree is None:
        return None
    todo: list[ast.AST] = [ctx.tree]
    while todo:
        scope = todo.pop()
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign) and node.value is call and len(node.targets) == 1:
                name = _dotted(node.targets[0])
                if name is None:
                    return None
                inner = [
                    f
                    for f in ast.walk(ctx.tree)
                    if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                    and f.lineno <= node.lineno <= (f.end_lineno or f.lineno)
                ]
                return name, max(inner, key=lambda f: f.lineno, default=ctx.tree)
    return None


def _read_after(holder: ast.AST, name: str, line: int) -> bool:
    """``name`` is read in ``holder`` after ``line``, before anything rebinds it."""
    later = sorted(
        (_line(node), getattr(node, "col_offset", 0), isinstance(node.ctx, ast.Store))
        for node in ast.walk(holder)
        if isinstance(node, (ast.Name, ast.Attribute))
        and _line(node) > line
        and _dotted(node) == name
    )
    return bool(later) and not later[0][2]


def check_stale_optimizer(ctx: _File, events: list[_Event], i: int) -> None:
    opt = events[i]
    if not opt.filtered or "add_param_group" in "\n".join(ctx.lines):
        return
    frozen = [
        (j, f)
        for j, f in enumerate(events[:i])
        if f.kind == "FREEZE" and _within(f.target, opt.target) and not _exclusive(f, opt)
    ]
    if not frozen:
        return
    for k in range(i + 1, len(events)):
        u = events[k]
        if u.kind != "UNFREEZE" or _exclusive(u, opt) or set(u.loops) & set(opt.loops):
            continue
        for j, f in frozen:
            if not _within(u.target, f.target):
                continue
            # still frozen when the optimizer was built: nothing unfroze, replaced or
            # rebound that part in between
            if any(
                e.kind in ("UNFREEZE", "HEAD", "KILL")
                and (_within(u.target, e.target) or _within(e.target, u.target))
                for e in events[j + 1 : i]
            ):
                continue
            if any(
                e.kind in ("OPT", "KILL") and _within(u.target, e.target) for e in events[k + 1 :]
            ):
                return  # a new optimizer (or model) after the unfreeze
            named = _optimizer_name(ctx, opt.node)
            if named is None:
                return
            name, holder = named
            node = u.loop if u.loop is not None else u.node
            if not _read_after(holder, name, getattr(node, "end_lineno", None) or _line(node)):
                return
            ctx.report(
                UNFREEZE_MISSED_BY_OPTIMIZER,
                node,
                f"{u.target} is unfrozen here, but {name} ({opt.label}, line "
                f"{_line(opt.node)}) was built from the parameters that required grad then, "
                f"so it holds none of them and they never train; add them with "
                f"{name}.add_param_group(...) or build the optimizer again",
                obj=u.target,
            )
            return
