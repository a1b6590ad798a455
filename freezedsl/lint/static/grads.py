"""Syntactic checks of code that handles gradients by hand: FZ215, FZ216 and FZ217.

* FZ215: a loop over an optimizer's param group (``for p in group["params"]`` with
  ``group`` from ``X.param_groups``) that updates ``p`` or dereferences ``p.grad`` before
  any test of ``p.grad``/``p.requires_grad``: custom optimizers and optimizer wrappers
  that decay frozen parameters or crash on their ``grad`` of ``None``.
* FZ216: ``if p.requires_grad: p.requires_grad = flag``: a change guarded by the flag it
  changes can only ever go one way (a frozen parameter is never unfrozen again).
* FZ217: rows of a gradient zeroed to keep them fixed while the same function's
  optimizer applies weight decay, which still moves them.

Each looks at one loop or one function on its own (no events, no summaries), so each is
cheap and precise: precision first, as everywhere in the static checks.
"""

from __future__ import annotations

import ast

from freezedsl.lint.static.astutil import _dotted, _kwarg
from freezedsl.lint.static.facts import _File
from freezedsl.lint.static.rules import (
    GRAD_MASK_WITH_DECAY,
    GUARDED_BY_OWN_FLAG,
    OPT_LOOP_IGNORES_NO_GRAD,
)
from freezedsl.lint.static.tables import _OPTIMIZERS

_IN_PLACE = frozenset(
    ("mul_", "add_", "sub_", "div_", "addcdiv_", "addcmul_", "lerp_", "clamp_", "clamp_min_")
)
_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def check_grads(ctx: _File, tree: ast.Module, text: str) -> None:
    if "param_groups" in text:
        groups = _group_names(tree)
        for fn in _step_functions(tree):
            for loop in ast.walk(fn):
                if (
                    isinstance(loop, (ast.For, ast.AsyncFor))
                    and isinstance(loop.target, ast.Name)
                    and _is_group_params(loop.iter, groups)
                ):
                    _check_group_loop(ctx, loop, loop.target.id)
    if "requires_grad" in text:
        for node in ast.walk(tree):
            if isinstance(node, ast.If):
                _check_self_guard(ctx, node)
    if ".grad" in text:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                _check_grad_mask(ctx, node)


# FZ215 ----------------------------------------------------------------------------


def _step_functions(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Functions that take an optimizer step: named like ``step`` (``step``,
    ``_step``, ``train_step``), or methods of a class deriving from ``...Optimizer``. Other
    loops over param groups (a gradient-clipping hook in a test, logging) run on models
    whose parameters all have gradients often enough that reporting them would be noise;
    tests (``test*`` functions) are never reported."""
    out: list[ast.FunctionDef | ast.AsyncFunctionDef] = []

    def visit(body: list[ast.stmt], optimizer_class: bool) -> None:
        for s in body:
            if isinstance(s, ast.ClassDef):
                bases = [(_dotted(b) or "") for b in s.bases]
                visit(s.body, any(b.endswith("Optimizer") for b in bases))
            elif isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if s.name.startswith("test"):
                    continue
                if optimizer_class or "step" in s.name.lower():
                    out.append(s)
                else:
                    visit(s.body, False)

    visit(tree.body, False)
    return out


def _group_names(tree: ast.Module) -> set[str]:
    """Names a loop binds to the param groups of an optimizer: ``group`` in ``for group in
    opt.param_groups``, also through ``enumerate(...)`` and ``zip(...)``."""
    out: set[str] = set()
    for loop in ast.walk(tree):
        if not isinstance(loop, (ast.For, ast.AsyncFor, ast.comprehension)):
            continue
        it, target = loop.iter, loop.target
        if _is_param_groups(it):
            if isinstance(target, ast.Name):
                out.add(target.id)
            continue
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name)):
            continue
        if not isinstance(target, ast.Tuple):
            continue
        if it.func.id == "enumerate" and it.args and _is_param_groups(it.args[0]):
            second = target.elts[1] if len(target.elts) == 2 else None
            if isinstance(second, ast.Name):
                out.add(second.id)
        elif it.func.id == "zip" and len(it.args) == len(target.elts):
            for arg, elt in zip(it.args, target.elts):
                if _is_param_groups(arg) and isinstance(elt, ast.Name):
                    out.add(elt.id)
    return out


def _is_param_groups(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "param_groups"


def _is_group_params(it: ast.AST, groups: set[str]) -> bool:
    """``group["params"]`` for a param-group name, or ``opt.param_groups[i]["params"]``."""
    if not (
        isinstance(it, ast.Subscript)
        and isinstance(it.slice, ast.Constant)
        and it.slice.value == "params"
    ):
        return False
    v = it.value
    if isinstance(v, ast.Name):
        return v.id in groups
    return isinstance(v, ast.Subscript) and _is_param_groups(v.value)


def _is_grad_of(node: ast.AST, p: str) -> bool:
    """``p.grad``."""
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "grad"
        and isinstance(node.value, ast.Name)
        and node.value.id == p
    )


def _mentions_guard(test: ast.AST, p: str, aliases: set[str]) -> bool:
    for n in ast.walk(test):
        if _is_grad_of(n, p):
            return True
        if (
            isinstance(n, ast.Attribute)
            and n.attr == "requires_grad"
            and isinstance(n.value, ast.Name)
            and n.value.id == p
        ):
            return True
        if isinstance(n, ast.Name) and n.id in aliases:
            return True
    return False


def _tests(stmt: ast.stmt) -> list[ast.AST]:
    """Every test expression inside ``stmt`` (``if``/``while``/``assert``, conditional
    expressions, ``and``/``or`` operands, comprehension filters), nested blocks included."""
    out: list[ast.AST] = []
    for n in ast.walk(stmt):
        if isinstance(n, (ast.If, ast.While, ast.IfExp, ast.Assert)):
            out.append(n.test)
        elif isinstance(n, ast.BoolOp):
            out.extend(n.values)
        elif isinstance(n, ast.comprehension):
            out.extend(n.ifs)
    return out


def _statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Simple statements of ``body`` in source order, nested blocks flattened (compound
    statements come before what they contain)."""
    out: list[ast.stmt] = []
    for s in body:
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        out.append(s)
        for name in ("body", "orelse", "finalbody"):
            out.extend(_statements(getattr(s, name, []) or []))
        for h in getattr(s, "handlers", []) or []:
            out.extend(_statements(h.body))
        for c in getattr(s, "cases", []) or []:
            out.extend(_statements(c.body))
    return out


def _own(stmt: ast.stmt) -> list[ast.AST]:
    """Nodes of ``stmt`` that are not inside a nested statement (a compound statement's
    header: an ``if`` test, a ``for`` iterable)."""
    out: list[ast.AST] = []
    todo: list[ast.AST] = [stmt]
    while todo:
        n = todo.pop()
        out.append(n)
        for child in ast.iter_child_nodes(n):
            if isinstance(child, (ast.stmt, _FUNCS)):
                continue
            todo.append(child)
    return out


def _use(nodes: list[ast.AST], p: str, aliases: set[str]) -> tuple[ast.AST, str] | None:
    """The first (in source order) update of ``p`` or dereference of its gradient among
    ``nodes``."""
    found: list[tuple[int, int, ast.AST, str]] = []
    for n in nodes:
        kind = ""
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):
            recv = _dotted(n.func.value)
            if n.func.attr in _IN_PLACE and recv in (p, f"{p}.data"):
                kind = "update"
        elif (isinstance(n, ast.AugAssign) and _dotted(n.target) in (p, f"{p}.data")) or (
            isinstance(n, ast.Assign)
            and any(_dotted(t) == f"{p}.data" for t in n.targets)
            and isinstance(n.value, ast.BinOp)
        ):
            kind = "update"
        if not kind and isinstance(n, (ast.Attribute, ast.Subscript)):
            inner = n.value
            if _is_grad_of(inner, p) or (isinstance(inner, ast.Name) and inner.id in aliases):
                kind = "grad"
        if kind:
            found.append((getattr(n, "lineno", 0), getattr(n, "col_offset", 0), n, kind))
    if not found:
        return None
    _, _, node, kind = min(found, key=lambda f: (f[0], f[1]))
    return node, kind


def _check_group_loop(ctx: _File, loop: ast.For | ast.AsyncFor, p: str) -> None:
    aliases: set[str] = set()
    for s in _statements(loop.body):
        if isinstance(s, ast.Assign) and _is_grad_of(s.value, p):
            aliases.update(t.id for t in s.targets if isinstance(t, ast.Name))
    for s in _statements(loop.body):
        if any(_mentions_guard(t, p, aliases) for t in _tests(s)):
            return  # what follows is (assumed) guarded
        found = _use(_own(s), p, aliases)
        if found is None:
            continue
        node, kind = found
        where = ast.unparse(node)
        if len(where) > 60:
            where = where[:57] + "..."
        if kind == "update":
            msg = (
                f"`{where}` changes every parameter of the param group, also those without "
                f"a gradient: frozen parameters (requires_grad=False) are decayed or moved "
                f"too; test `{p}.grad is None` (and `continue`) first"
            )
        else:
            msg = (
                f"`{where}` reads {p}.grad without testing it: a frozen parameter "
                f"(requires_grad=False) in the group has grad None and the step fails with "
                f"AttributeError/TypeError; skip it with `if {p}.grad is None: continue` first"
            )
        ctx.report(OPT_LOOP_IGNORES_NO_GRAD, node, msg, obj=p)
        return


# FZ216 ----------------------------------------------------------------------------


def _requires_grad_test(test: ast.AST) -> tuple[str, bool] | None:
    """``X.requires_grad`` (True) or ``not X.requires_grad`` (False), alone or as an operand
    of ``and``: the dotted ``X`` and the value the test demands."""
    tests = test.values if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) else [test]
    for t in tests:
        want = True
        if isinstance(t, ast.UnaryOp) and isinstance(t.op, ast.Not):
            t, want = t.operand, False
        if isinstance(t, ast.Attribute) and t.attr == "requires_grad":
            d = _dotted(t.value)
            if d is not None:
                return d, want
    return None


def _check_self_guard(ctx: _File, node: ast.If) -> None:
    found = _requires_grad_test(node.test)
    if found is None:
        return
    x, want = found
    for s in _statements(node.body):
        value: ast.AST | None
        if (
            isinstance(s, ast.Assign)
            and len(s.targets) == 1
            and isinstance(s.targets[0], ast.Attribute)
            and s.targets[0].attr == "requires_grad"
            and _dotted(s.targets[0].value) == x
        ):
            value = s.value
        elif (
            isinstance(s, ast.Expr)
            and isinstance(s.value, ast.Call)
            and isinstance(s.value.func, ast.Attribute)
            and s.value.func.attr == "requires_grad_"
            and _dotted(s.value.func.value) == x
        ):
            call = s.value
            value = call.args[0] if call.args else _kwarg(call, "requires_grad")
            if value is None:
                value = ast.Constant(True)
        else:
            continue
        if isinstance(value, ast.Constant) and value.value is (not want):
            continue  # `if p.requires_grad: p.requires_grad = False`: a plain freeze
        way, never = ("freeze", "unfrozen") if want else ("unfreeze", "frozen")
        ctx.report(
            GUARDED_BY_OWN_FLAG,
            s,
            f"this runs only when {x}.requires_grad is {want}, so it can only {way}: a "
            f"parameter that is already {'frozen' if want else 'trainable'} is never "
            f"{never if want else 'frozen'} by it; drop the `{ast.unparse(node.test)}` test",
            obj=x,
        )
        return


# FZ217 ----------------------------------------------------------------------------


def _decaying_optimizer(ctx: _File, fn: ast.AST) -> tuple[ast.Call, str] | None:
    """An optimizer built in ``fn`` that applies weight decay: ``AdamW`` (decay 0.01 by
    default) unless ``weight_decay=0``, or any optimizer given a ``weight_decay`` that is
    not the constant 0."""
    for n in ast.walk(fn):
        if not isinstance(n, ast.Call):
            continue
        qual = ctx.qualify(n.func) or _dotted(n.func) or ""
        last = qual.rsplit(".", 1)[-1]
        if last not in _OPTIMIZERS:
            continue
        wd = _kwarg(n, "weight_decay")
        if wd is None:
            if last.startswith(("AdamW", "PagedAdamW")):
                return n, f"{last} (weight_decay 0.01 by default)"
            continue
        if isinstance(wd, ast.Constant) and not wd.value:
            continue
        return n, f"{last}(weight_decay={ast.unparse(wd)})"
    return None


def _zero(value: ast.AST) -> bool:
    """``0``, ``0.0``, ``x.fill_(0)``, ``x.zero_()``, ``torch.zeros_like(x)``."""
    if isinstance(value, ast.Constant):
        return value.value == 0 and not isinstance(value.value, bool)
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
        attr = value.func.attr
        if attr == "zero_":
            return True
        if attr == "fill_" and value.args and _zero(value.args[0]):
            return True
        return attr in ("zeros_like", "zeros")
    return False


def _check_grad_mask(ctx: _File, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
    grads: set[str] = set()  # names bound to some X.grad in this function
    for n in ast.walk(fn):
        if (
            isinstance(n, ast.Assign)
            and isinstance(n.value, ast.Attribute)
            and n.value.attr == "grad"
        ):
            grads.update(t.id for t in n.targets if isinstance(t, ast.Name))

    def is_grad(e: ast.AST) -> bool:
        if isinstance(e, ast.Attribute) and e.attr == "data":
            e = e.value
        if isinstance(e, ast.Attribute) and e.attr == "grad":
            return True
        return isinstance(e, ast.Name) and e.id in grads

    masks: list[ast.AST] = []
    for n in ast.walk(fn):
        if isinstance(n, ast.Assign) and len(n.targets) == 1:
            t = n.targets[0]
            if isinstance(t, ast.Subscript) and is_grad(t.value) and _zero(n.value):
                masks.append(n)
        elif isinstance(n, ast.Expr) and isinstance(n.value, ast.Call) and _zero(n.value):
            recv = n.value.func.value if isinstance(n.value.func, ast.Attribute) else None
            if isinstance(recv, ast.Subscript) and is_grad(recv.value):
                masks.append(n)
    if not masks:
        return
    found = _decaying_optimizer(ctx, fn)
    if found is None:
        return
    _, label = found
    node = min(masks, key=lambda m: (getattr(m, "lineno", 0), getattr(m, "col_offset", 0)))
    ctx.report(
        GRAD_MASK_WITH_DECAY,
        node,
        f"zeroing part of a gradient does not keep those entries fixed: {label} still "
        f"shrinks them at every step; restore their values after optimizer.step() (or "
        f"keep them in a separate frozen tensor)",
    )
