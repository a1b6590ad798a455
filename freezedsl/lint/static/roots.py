"""FZ211: a ``named_modules()`` loop whose name test also selects the root module ``""``.

A syntactic check of each ``for name, m in M.named_modules():`` loop: the name test that
guards a recursive ``requires_grad`` change of ``m`` is evaluated for ``name == ""``
(three-valued: true, false, or unknown; unknown never reports).
"""

from __future__ import annotations

import ast

from freezedsl.lint.static.astutil import _dotted
from freezedsl.lint.static.facts import _File
from freezedsl.lint.static.rules import ROOT_MODULE_SELECTED


def check_roots(ctx: _File, tree: ast.Module) -> None:
    for loop in ast.walk(tree):
        if not isinstance(loop, (ast.For, ast.AsyncFor)):
            continue
        it, target = loop.iter, loop.target
        if not (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Attribute)
            and it.func.attr == "named_modules"
            and isinstance(target, ast.Tuple)
            and len(target.elts) == 2
            and all(isinstance(e, ast.Name) for e in target.elts)
        ):
            continue
        name, mod = (e.id for e in target.elts)  # type: ignore[attr-defined]
        if _skips_root(loop.body, name):
            continue
        owner = _dotted(it.func.value) or "the model"
        _block(ctx, loop.body, name, mod, owner, selected=None)


def _skips_root(body: list[ast.stmt], name: str) -> bool:
    """The loop tests ``name`` for emptiness anywhere (``if not name``, ``name and ...``,
    ``name == ""``): the author thought of the root."""
    for n in ast.walk(ast.Module(body=body, type_ignores=[])):
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not) and _is(n.operand, name):
            return True
        if isinstance(n, ast.BoolOp) and any(_is(v, name) for v in n.values):
            return True
        if isinstance(n, ast.If) and _is(n.test, name):
            return True
        if (
            isinstance(n, ast.Compare)
            and _is(n.left, name)
            and any(isinstance(c, ast.Constant) and c.value == "" for c in n.comparators)
        ):
            return True
    return False


def _is(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _block(
    ctx: _File, body: list[ast.stmt], name: str, mod: str, owner: str, selected: str | None
) -> None:
    """Walk ``body``; ``selected`` is the source of the test that lets the root through
    (``None`` while no name test guards the code)."""
    for i, s in enumerate(body):
        if isinstance(s, ast.If):
            value = _on_root(s.test, name)
            if value is True:
                _block(ctx, s.body, name, mod, owner, ast.unparse(s.test))
            elif value is False:
                _block(ctx, s.orelse, name, mod, owner, f"not ({ast.unparse(s.test)})")
                if _ends_in_skip(s.body):  # `if "x" in name: continue` lets the root on
                    _block(ctx, body[i + 1 :], name, mod, owner, f"not ({ast.unparse(s.test)})")
                    return
            continue
        if selected is None or isinstance(s, (ast.FunctionDef, ast.ClassDef)):
            continue
        for n in ast.walk(s):
            if _changes_all(n, mod):
                ctx.report(
                    ROOT_MODULE_SELECTED,
                    n,
                    f"named_modules() also yields the root module '' (all of {owner}), and "
                    f"`{selected}` is true for it, so this changes requires_grad of every "
                    f"parameter; skip the root with `if not {name}: continue` or test "
                    f"parameter names from named_parameters()",
                    obj=owner,
                )
                return


def _ends_in_skip(body: list[ast.stmt]) -> bool:
    return bool(body) and isinstance(body[-1], ast.Continue)


def _changes_all(n: ast.AST, mod: str) -> bool:
    """``m.requires_grad_(...)`` or ``for p in m.parameters(): p.requires_grad = ...``."""
    if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):
        return n.func.attr == "requires_grad_" and _is(n.func.value, mod)
    if isinstance(n, (ast.For, ast.AsyncFor)):
        it = n.iter
        if (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Attribute)
            and it.func.attr == "parameters"
            and _is(it.func.value, mod)
            and not any(k.arg == "recurse" for k in it.keywords)
            and not it.args
        ):
            return any(
                isinstance(t, ast.Attribute) and t.attr == "requires_grad"
                for x in ast.walk(n)
                if isinstance(x, ast.Assign)
                for t in x.targets
            )
    return False


def _on_root(test: ast.expr, name: str) -> bool | None:
    """Value of ``test`` when ``name == ""``; ``None`` when it cannot be told."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        v = _on_root(test.operand, name)
        return None if v is None else not v
    if isinstance(test, ast.BoolOp):
        vals = [_on_root(v, name) for v in test.values]
        if isinstance(test.op, ast.And):
            if False in vals:
                return False
            return True if all(v is True for v in vals) else None
        if True in vals:
            return True
        return False if all(v is False for v in vals) else None
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, op, right = test.left, test.ops[0], test.comparators[0]
        if isinstance(op, (ast.In, ast.NotIn)) and _is(right, name):
            lit = left.value if isinstance(left, ast.Constant) else None
            if isinstance(lit, str) and lit:
                return isinstance(op, ast.NotIn)
            # `any(x in name for x in L)` reaches here with a Name on the left
            return None
        return None
    if isinstance(test, ast.Call):
        f = test.func
        if isinstance(f, ast.Attribute) and f.attr in ("startswith", "endswith"):
            if _is(f.value, name) and test.args:
                arg = test.args[0]
                lits = arg.elts if isinstance(arg, ast.Tuple) else [arg]
                if all(isinstance(a, ast.Constant) and a.value for a in lits):
                    return False
            return None
        if isinstance(f, ast.Name) and f.id in ("any", "all") and len(test.args) == 1:
            gen = test.args[0]
            if isinstance(gen, ast.GeneratorExp):
                # the same value for every element of a non-empty literal list
                return _elt_on_root(gen, name)
    return None


def _elt_on_root(gen: ast.GeneratorExp, name: str) -> bool | None:
    """``any(x in name for x in LITS)`` / ``any(name.startswith(x) for x in LITS)`` with
    a literal list of non-empty strings."""
    if len(gen.generators) != 1:
        return None
    g = gen.generators[0]
    if not (isinstance(g.target, ast.Name) and isinstance(g.iter, (ast.List, ast.Tuple))):
        return None
    if not all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) and e.value for e in g.iter.elts
    ):
        return None
    var = g.target.id
    elt = gen.elt
    negate = False
    if isinstance(elt, ast.UnaryOp) and isinstance(elt.op, ast.Not):
        elt, negate = elt.operand, True
    hit: bool | None = None
    if (
        isinstance(elt, ast.Compare)
        and len(elt.ops) == 1
        and _is(elt.left, var)
        and _is(elt.comparators[0], name)
        and isinstance(elt.ops[0], (ast.In, ast.NotIn))
    ):
        hit = isinstance(elt.ops[0], ast.NotIn)
    elif (
        isinstance(elt, ast.Call)
        and isinstance(elt.func, ast.Attribute)
        and elt.func.attr in ("startswith", "endswith")
        and _is(elt.func.value, name)
        and len(elt.args) == 1
        and _is(elt.args[0], var)
    ):
        hit = False
    if hit is None:
        return None
    return not hit if negate else hit
