"""Small pure helpers over :mod:`ast` nodes shared by the walk and the checks."""

from __future__ import annotations

import ast
import re


def _dotted(node: ast.AST) -> str | None:
    """``a.b[0].c`` for a receiver made of names, attributes and constant subscripts."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append("." + node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            key = _const_index(node.slice)
            if key is None:
                return None
            parts.append(f"[{key}]")
            node = node.value
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            return "".join(reversed(parts))
        else:
            return None


def _const_index(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, str)):
        return repr(node.value)
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, int)
    ):
        return f"-{node.operand.value}"
    return None


def _root(dotted: str) -> str:
    return re.split(r"[.\[]", dotted, maxsplit=1)[0]


def _last(dotted: str) -> str:
    """Last attribute name of a dotted receiver, subscripts dropped."""
    return re.sub(r"\[[^\]]*\]$", "", dotted).rsplit(".", 1)[-1]


def _within(child: str, parent: str) -> bool:
    """``child`` is ``parent`` or reached through it (``model.fc`` is within ``model``)."""
    return child == parent or (child.startswith(parent) and child[len(parent)] in ".[")


def _bool_const(node: ast.AST | None) -> bool | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return node.value
    return None


def _arg(call: ast.Call, pos: int, name: str) -> ast.expr | None:
    if len(call.args) > pos and not any(isinstance(a, ast.Starred) for a in call.args[: pos + 1]):
        return call.args[pos]
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _refs(node: ast.AST, dotted: str) -> bool:
    """Whether ``dotted`` (or something reached through it) is read inside ``node``."""
    root = _root(dotted)
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id == root:
            return True
    return False


def _uses_whole(node: ast.AST, dotted: str) -> bool:
    """Whether ``dotted`` itself (not just ``dotted.attr``) is used inside ``node``."""
    exact = through = 0
    for sub in ast.walk(node):
        if isinstance(sub, (ast.Name, ast.Attribute, ast.Subscript)) and _dotted(sub) == dotted:
            exact += 1
        if isinstance(sub, (ast.Attribute, ast.Subscript)) and _dotted(sub.value) == dotted:
            through += 1
    return exact > through


def _kwarg(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def _typo_of_requires_grad(attr: str) -> bool:
    if attr in ("requires_grad", "requires_grad_"):
        return False
    norm = attr.lower().replace("_", "")
    if norm == "requiresgrad" or norm in ("requiresgradient", "requiregradient"):
        return True
    if not norm.startswith("re") or "gr" not in norm or not 9 <= len(norm) <= 15:
        return False
    return _edit_distance(norm, "requiresgrad") <= 2


def _edit_distance(a: str, b: str) -> int:
    """Damerau-Levenshtein (optimal string alignment) distance; inputs are short."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def _attr_pos(node: ast.Attribute) -> ast.AST:
    """A node-like position pointing at the attribute name itself when it is on one line."""
    end_line = node.end_lineno or node.lineno
    end_col = node.end_col_offset
    if end_line == node.lineno and end_col is not None:
        pos = ast.Name(id=node.attr)
        pos.lineno = end_line
        pos.col_offset = end_col - len(node.attr.encode("utf-8"))
        return pos
    return node
