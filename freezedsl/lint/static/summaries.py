"""Per-function summaries: what a function does to its arguments and to ``self``.

Real freezing bugs are spread over functions: ``freeze_bn()`` called from ``__init__``,
DDP built in ``super().prepare()``, a helper ``set_requires_grad(nets, False)``. A summary
is the list of events (freeze, unfreeze, eval/train, wrap, optimizer built, head assigned)
a function's body records on names rooted at one of its parameters or at ``self``; the
walk replays it at every call site it can resolve within the file, with the callee's
parameter names replaced by the caller's arguments (a literal list argument stands for
each of its elements), ``self`` by the receiver, and a ``requires_grad`` flag passed as an
argument by the caller's constant.

Resolution is deliberately narrow (precision first): a plain call of a module-level
function of the file, ``self.m()`` and ``super().m()`` inside a class of the file (bases
followed within the file), ``C(...)`` of a class of the file (its ``__init__``), and
``obj.m()`` on a name the same scope built with ``C(...)``. Each function is summarised
once; a recursive call sees an empty summary.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from freezedsl.lint.static.astutil import _bool_const, _root

if TYPE_CHECKING:  # facts imports this module; events are only passed through here
    from freezedsl.lint.static.facts import _Event

FuncDef = ast.FunctionDef | ast.AsyncFunctionDef
# Event kinds a summary carries; SETGRAD is a requires_grad change whose flag is a parameter.
# HEAD is not carried: a constructor that builds a classifier followed by a freeze of the
# whole object is a frozen teacher or feature extractor, not a frozen head.
_CARRIED = frozenset(
    ("FREEZE", "UNFREEZE", "SETGRAD", "EVAL_SUB", "TRAIN", "WRAP", "OPT", "REEVAL", "UPDATE")
)


@dataclass
class Defs:
    """Functions and classes defined at the top level of one file."""

    functions: dict[str, FuncDef] = field(default_factory=dict)
    methods: dict[str, dict[str, FuncDef]] = field(default_factory=dict)
    bases: dict[str, list[str]] = field(default_factory=dict)
    done: dict[int, list[_Event]] = field(default_factory=dict)
    busy: set[int] = field(default_factory=set)

    lines: list[str] = field(default_factory=list)
    relevant_: dict[int, bool] = field(default_factory=dict)
    method_names: frozenset[str] = frozenset()  # names of every method of the file
    called: re.Pattern[str] | None = None  # a call of a function or method of the file

    @classmethod
    def of(cls, tree: ast.Module, lines: list[str]) -> Defs:
        d = cls(lines=lines)
        for s in tree.body:
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
                d.functions[s.name] = s
            elif isinstance(s, ast.ClassDef):
                d.methods[s.name] = {
                    f.name: f
                    for f in s.body
                    if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                }
                d.bases[s.name] = [b.id for b in s.bases if isinstance(b, ast.Name)]
        d.method_names = frozenset(n for m in d.methods.values() for n in m)
        return d

    def method(
        self, cls: str | None, name: str, *, skip_own: bool = False
    ) -> tuple[FuncDef, str] | None:
        """``name`` looked up on ``cls`` and its bases defined in this file (MRO by depth)."""
        seen: set[str] = set()
        todo = list(self.bases.get(cls, [])) if skip_own and cls else ([cls] if cls else [])
        while todo:
            c = todo.pop(0)
            if c in seen or c not in self.methods:
                continue
            seen.add(c)
            f = self.methods[c].get(name)
            if f is not None:
                return f, c
            todo.extend(self.bases.get(c, []))
        return None

    def summary(
        self, fdef: FuncDef, cls: str | None, walk: Callable[[FuncDef, str | None], list[_Event]]
    ) -> list[_Event]:
        """Events of ``fdef`` rooted at a parameter or ``self`` (memoised; recursion-safe)."""
        key = id(fdef)
        if key in self.done:
            return self.done[key]
        if key in self.busy or not self.relevant(fdef):
            return []
        self.busy.add(key)
        try:
            names = set(_param_names(fdef))
            events = [e for e in walk(fdef, cls) if e.kind in _CARRIED and _root(e.target) in names]
        finally:
            self.busy.discard(key)
        self.done[key] = events
        return events

    def relevant(self, fdef: FuncDef) -> bool:
        """Whether ``fdef``'s text can yield a carried event, directly or through a call of
        another function of the file (a text test, so most functions are never walked)."""
        key = id(fdef)
        if key in self.relevant_:
            return self.relevant_[key]
        self.relevant_[key] = False  # recursion guard
        if self.called is None:
            self._index()
        assert self.called is not None
        text = "\n".join(self.lines[fdef.lineno - 1 : fdef.end_lineno or fdef.lineno])
        found = _EVENT_TEXT.search(text) is not None
        if not found and self.called.pattern:
            for name in set(self.called.findall(text)) - {fdef.name}:
                callees = [self.functions.get(name)] + [m.get(name) for m in self.methods.values()]
                if any(c is not None and self.relevant(c) for c in callees):
                    found = True
                    break
        self.relevant_[key] = found
        return found

    def _index(self) -> None:
        """A pattern for calls of the file's own functions and methods."""
        names = set(self.functions) | self.method_names
        alternatives = "|".join(sorted(map(re.escape, names)))
        self.called = re.compile(rf"\b({alternatives})\s*\(" if names else "")


_EVENT_TEXT = re.compile(
    r"requires_grad|\.eval\(|\.train\(|DataParallel|DDP|FSDP|fully_shard|prepare\(|initialize\(|optim|"
    r"freezedsl|\.apply\(|\b(?:SGD|Adam\w*|RMSprop|Lion|LAMB|Adafactor)\(|"
    r"\.(?:mul|add|sub|div|addcdiv|addcmul|lerp|clamp)_\(|\.data\s*[-+*/]?=|\bp\s*[-+*/]=|\.grad\b"
)


def _param_names(fdef: FuncDef) -> list[str]:
    a = fdef.args
    return [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]


def bind_args(
    fdef: FuncDef, call: ast.Call, receiver: str | None, dotted: Callable[[ast.expr], str | None]
) -> dict[str, list[str] | bool]:
    """Callee parameter -> caller names (a list for a literal list argument) or a constant
    bool flag. ``receiver`` fills the first parameter of a method (``self``)."""
    params = [x.arg for x in fdef.args.posonlyargs + fdef.args.args]
    out: dict[str, list[str] | bool] = {}
    if receiver is not None and params:
        out[params[0]] = [receiver]
        params = params[1:]
    if any(isinstance(a, ast.Starred) for a in call.args):
        return out
    pairs = list(zip(params, call.args))
    pairs += [(k.arg, k.value) for k in call.keywords if k.arg is not None]
    for name, value in pairs:
        flag = _bool_const(value)
        if flag is not None:
            out[name] = flag
            continue
        elts = value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value]
        names = [d for d in map(dotted, elts) if d is not None]
        if names and len(names) == len(elts):
            out[name] = names
    return out


def replay(
    events: list[_Event],
    args: dict[str, list[str] | bool],
    at: _Event,
    own: str | None = None,
) -> list[_Event]:
    """The summary ``events`` as seen by the caller at the call event ``at``. ``own`` is
    the callee's ``self`` parameter when the call is ``self.m()`` in the same file: events
    on ``self`` then keep the callee's statement as their ``origin`` (the line to fix is
    in the method, not at each call of it)."""
    out: list[_Event] = []
    for e in events:
        root = _root(e.target)
        targets = args.get(root)
        if not isinstance(targets, list):
            continue
        kind = e.kind
        if kind == "SETGRAD":
            negate = e.label.startswith("!")
            flag = args.get(e.label.lstrip("!"))
            if not isinstance(flag, bool):
                continue
            kind = "UNFREEZE" if flag != negate else "FREEZE"
        for t in targets:
            out.append(
                replace(
                    e,
                    kind=kind,
                    target=t + e.target[len(root) :],
                    node=at.node,
                    branches=at.branches,
                    loops=at.loops,
                    loop=None,
                    origin=(e.origin or e.node) if own is not None and root == own else None,
                )
            )
    return out
