"""Loop variables and receivers: what ``p`` in ``for p in model.parameters()`` stands for.

A mixin of the walk (:class:`.walk._Scope`): it maps loop variables and aliases to the
dotted names of the modules they come from, and decides whether a receiver is clearly an
``nn.Module``. Kept apart so the walk stays one idea (statements and expressions).
"""

from __future__ import annotations

import ast

from freezedsl.lint.static.astutil import _dotted, _last, _root
from freezedsl.lint.static.facts import _Bind, _File
from freezedsl.lint.static.tables import (
    _BARE_MODULE_WORD,
    _MODULE_WORD,
    _NAME_SOURCES,
    _PARAM_LIKE,
)


class _Bindings:
    """Loop-variable bindings of one scope (state lives on the walk)."""

    ctx: _File
    binds: dict[str, _Bind]
    params: frozenset[str]
    lits: dict[str, ast.expr]

    def bind(self, target: ast.expr, it: ast.expr, loop: ast.AST, depth: int) -> dict[str, _Bind]:
        """Bindings made by ``for target in it`` (or a comprehension generator)."""
        while (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Name)
            and it.func.id in ("list", "tuple", "iter", "reversed", "sorted")
            and len(it.args) == 1
        ):
            it = it.args[0]
        out: dict[str, _Bind] = {}
        if (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Name)
            and it.func.id == "enumerate"
            and it.args
            and isinstance(target, ast.Tuple)
            and len(target.elts) == 2
        ):
            return self.bind(target.elts[1], it.args[0], loop, depth)
        if (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Name)
            and it.func.id == "zip"
            and isinstance(target, ast.Tuple)
            and len(target.elts) == len(it.args)
        ):
            for elt, arg in zip(target.elts, it.args):
                out.update(self.bind(elt, arg, loop, depth))
            return out
        if isinstance(it, ast.Name):
            it = self.lits.get(it.id) or self.ctx.lit_lists.get(it.id) or it
        if isinstance(it, (ast.List, ast.Tuple, ast.Set)) and isinstance(target, ast.Name):
            lits = tuple(
                e for e in it.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
            )
            if lits and len(lits) == len(it.elts):
                out[target.id] = _Bind("lit", None, loop, depth, lits)
            return out
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute)):
            return out
        method = it.func.attr
        recv = it.func.value
        items = False
        if method in ("items", "keys") and isinstance(recv, ast.Call):
            inner = recv.func
            if isinstance(inner, ast.Attribute) and inner.attr == "state_dict":
                items = method == "items"
                method, recv = "state_dict", inner.value
        owner = self.resolve(_dotted(recv))
        names = target.elts if isinstance(target, ast.Tuple) else [target]
        if method == "parameters" and isinstance(target, ast.Name):
            out[target.id] = _Bind("param", owner, loop, depth)
        elif method in ("modules", "children") and isinstance(target, ast.Name):
            out[target.id] = _Bind("module", owner, loop, depth)
        elif method in _NAME_SOURCES and len(names) == 2:
            if isinstance(names[0], ast.Name):
                out[names[0].id] = _Bind("name", owner, loop, depth)
            if isinstance(names[1], ast.Name):
                kind = "param" if method == "named_parameters" else "module"
                if method != "named_buffers":
                    out[names[1].id] = _Bind(kind, owner, loop, depth)
        elif (
            method == "state_dict" and isinstance(names[0], ast.Name) and items == (len(names) == 2)
        ):
            out[names[0].id] = _Bind("name", owner, loop, depth)
        return out

    def loop_aliases(self, s: ast.For | ast.AsyncFor) -> list[str]:
        """Modules a ``for m in (a.backbone, a.neck)`` loop (or ``for net in nets`` over a
        parameter of the function) runs over; empty for any other loop."""
        if not isinstance(s.target, ast.Name):
            return []
        it = s.iter
        if isinstance(it, ast.Name) and it.id in self.params:
            return [it.id]
        if isinstance(it, (ast.Tuple, ast.List)) and it.elts:
            names = [self.alias(d) for d in map(_dotted, it.elts) if d is not None]
            if len(names) == len(it.elts):
                return names
        return []

    def alias(self, dotted: str) -> str:
        """``m.fc`` -> ``model.backbone.fc`` when ``m`` is a loop alias of ``model.backbone``."""
        b = self.binds.get(_root(dotted))
        if b is not None and b.kind == "alias" and b.owner is not None:
            return b.owner + dotted[len(_root(dotted)) :]
        return dotted

    def resolve(self, dotted: str | None) -> str | None:
        """Map a receiver through module loop variables: ``m.conv`` -> ``model.*.conv``."""
        if dotted is None:
            return None
        dotted = self.alias(dotted)
        root = _root(dotted)
        b = self.binds.get(root)
        if b is None:
            return dotted
        if b.kind != "module" or b.owner is None:
            return None
        return b.owner + ".*" + dotted[len(root) :]

    def module_like(self, recv: str) -> bool:
        """``recv`` is clearly an ``nn.Module`` (not a parameter or a plain tensor)."""
        b = self.binds.get(_root(recv))
        if b is not None:
            return b.kind == "module" and recv == _root(recv)
        if recv in self.ctx.modules:
            return True
        last = _last(recv)
        if recv != last and not recv.endswith("]") and last in self.ctx.module_attrs:
            return True
        if recv.endswith("]"):
            return not _PARAM_LIKE.search(last) and bool(_MODULE_WORD.match(last))
        if _PARAM_LIKE.search(last):
            return False
        if recv == last:
            return bool(_BARE_MODULE_WORD.match(last))
        return bool(_MODULE_WORD.match(last))


def _param_guard(test: ast.expr) -> str | None:
    """``x`` in ``if isinstance(x, nn.Parameter):`` (or ``torch.Tensor``): in the body, ``x``
    is a tensor whatever its name says."""
    if (
        isinstance(test, ast.Call)
        and isinstance(test.func, ast.Name)
        and test.func.id == "isinstance"
        and len(test.args) == 2
        and isinstance(test.args[0], ast.Name)
    ):
        kinds = test.args[1].elts if isinstance(test.args[1], ast.Tuple) else [test.args[1]]
        names = [(_dotted(k) or "").rsplit(".", 1)[-1] for k in kinds]
        if names and all(n in ("Parameter", "Tensor", "UninitializedParameter") for n in names):
            return test.args[0].id
    return None
