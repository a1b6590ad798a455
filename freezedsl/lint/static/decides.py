"""Which name tests decide training (precision for FZ206).

A substring test on a parameter name is only a freezing bug when its outcome decides what
trains: it guards a ``requires_grad`` change, an ``eval()``/``train()`` call, a freeze
helper, or the parameter lists and ``lr``/``weight_decay`` of an optimizer. The same test
in a test assertion, a weight initialiser, a hook or a log line merely reads names and is
not reported. This module finds the ``ast`` nodes in such deciding positions, once per
file and only when a candidate finding needs it.

It also decides whether a digit-final literal can collide with a sibling at all: only an
index (``blocks.1``, ``layer1``, ``stage3``) has siblings ``blocks.10``/``layer10``;
``adapter-0`` or ``ia3`` are names chosen by a user, not positions in a sequence.
"""

from __future__ import annotations

import ast
import re

# Words that number their siblings (``layer1``..``layer4``, ``res2``..``res5``).
_INDEX_WORD = re.compile(
    r"^(?:layer|layers|block|blocks|resblocks|stage|stages|res|down|up|level|lvl"
    r"|dense|denseblock|transition|encoder|decoder|features|module|model|h|blk|cell"
    r"|unit|group|mixed|step|depth)$",
    re.IGNORECASE,
)
_INDEXED = re.compile(r"(?:^|[._/])([A-Za-z]+)_?\d+$")
_LIST_NAME = re.compile(r"param|decay|group|train|freez|frozen|lr|opt|update|grad", re.IGNORECASE)
_TRAINING_KEYS = frozenset(("lr", "weight_decay", "params", "initial_lr"))
_HELPER = re.compile(r"freez|requires_grad|trainable", re.IGNORECASE)


def can_collide(text: str) -> bool:
    """``text`` ends in an index that a longer sibling index also starts with."""
    if not text or not text[-1].isdigit():
        return False
    head = text.rstrip("0123456789")
    if head.endswith(".") or head == "":
        return True
    m = _INDEXED.search(text)
    return m is not None and bool(_INDEX_WORD.match(m.group(1)))


def _decides(stmts: list[ast.stmt]) -> bool:
    """Whether running ``stmts`` changes what trains (see the module docstring)."""
    for s in stmts:
        for n in ast.walk(s):
            if isinstance(n, ast.Attribute):
                if n.attr == "requires_grad" and isinstance(n.ctx, ast.Store):
                    return True
            elif isinstance(n, ast.Call):
                f = n.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if name in ("requires_grad_", "eval", "train") or _HELPER.search(name):
                    return True
                if name in ("append", "extend", "add") and isinstance(f, ast.Attribute):
                    target = f.value
                    tname = getattr(target, "id", getattr(target, "attr", ""))
                    if _LIST_NAME.search(tname):
                        return True
                if any(k.arg in _TRAINING_KEYS for k in n.keywords):
                    return True
            elif isinstance(n, ast.Dict):
                if any(isinstance(k, ast.Constant) and k.value in _TRAINING_KEYS for k in n.keys):
                    return True
            elif (
                isinstance(n, ast.Subscript)
                and isinstance(n.ctx, ast.Store)
                and isinstance(n.slice, ast.Constant)
                and n.slice.value in _TRAINING_KEYS
            ):
                return True
    return False


def _skips(body: list[ast.stmt]) -> bool:
    return any(isinstance(s, (ast.Continue, ast.Break)) for s in body)


def _mark(node: ast.AST, out: set[int]) -> None:
    out.update(id(n) for n in ast.walk(node))


def deciding_nodes(tree: ast.Module) -> set[int]:
    """Ids of every node that sits in a test deciding training (module docstring)."""
    out: set[int] = set()

    def stmts(body: list[ast.stmt], loop_rest: list[ast.stmt]) -> None:
        for i, s in enumerate(body):
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if not s.name.startswith("test"):
                    stmts(s.body, [])
                continue
            if isinstance(s, ast.Assert):
                continue
            if isinstance(s, (ast.For, ast.AsyncFor, ast.While)):
                stmts(s.body, s.body)
                stmts(s.orelse, loop_rest)
                exprs(s)
                continue
            if isinstance(s, ast.If):
                if (
                    _decides(s.body)
                    or _decides(s.orelse)
                    or ((_skips(s.body) or _skips(s.orelse)) and _decides(loop_rest))
                ):
                    _mark(s.test, out)
                stmts(s.body, loop_rest)
                stmts(s.orelse, loop_rest)
                exprs(s.test)
                continue
            if isinstance(s, ast.ClassDef):
                stmts(s.body, [])
                continue
            for field in ("body", "orelse", "finalbody"):
                stmts(getattr(s, field, []), loop_rest)
            for h in getattr(s, "handlers", []):
                stmts(h.body, loop_rest)
            for c in getattr(s, "cases", []):
                stmts(c.body, loop_rest)
            if isinstance(s, (ast.Assign, ast.AnnAssign)):
                targets = s.targets if isinstance(s, ast.Assign) else [s.target]
                if s.value is not None and any(
                    isinstance(t, ast.Attribute) and t.attr == "requires_grad" for t in targets
                ):
                    _mark(s.value, out)
            exprs(s)

    def exprs(s: ast.AST) -> None:
        for n in ast.walk(s):
            if isinstance(n, ast.Call):
                f = n.func
                if isinstance(f, ast.Attribute) and f.attr == "requires_grad_":
                    for a in n.args:
                        _mark(a, out)
            elif isinstance(
                n, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
            ) and _comp_selects(n):
                for g in n.generators:
                    for cond in g.ifs:
                        _mark(cond, out)

    stmts(tree.body, [])
    return out


def _comp_selects(n: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> bool:
    """A comprehension that selects parameters (``[p for n, p in ... if test]``) or
    changes them (``[p.requires_grad_(False) for ...]``)."""
    elt = n.value if isinstance(n, ast.DictComp) else n.elt
    if any(
        isinstance(x, ast.Call)
        and isinstance(x.func, ast.Attribute)
        and x.func.attr == "requires_grad_"
        for x in ast.walk(elt)
    ):
        return True
    if isinstance(elt, ast.Name):
        for g in n.generators:
            t = g.target
            last = t.elts[-1] if isinstance(t, ast.Tuple) and t.elts else None
            if isinstance(last, ast.Name) and last.id == elt.id:
                return True
    return False
