"""An independent reference interpreter of the rule language, written from the spec.

It shares nothing with ``freezedsl.planning``: it walks the live ``nn.Module`` with the
public torch API, represents a selection as a set of parameter names
(``named_parameters(remove_duplicate=False)``) and follows the normative rules:

* statements run in order; for every tensor the last rule matching ANY of its names
  decides it; untouched tensors keep their state;
* an atom (path, regex, type, children) that matches nothing, or only modules without
  parameters, is an error unless it is under ``?``; a statement whose selector selects no parameter is an error unless all
  its non-excluded atoms are optional;
* ``children[...]`` / ``PATH[...]`` index ``named_children()`` in registration order,
  skipping modules the index is out of range for;
* shares are computed exactly (fractions), tied tensors counted once.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from torch import nn

from freezedsl.syntax import ast
from freezedsl.syntax.printer import format_selector


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


@dataclass
class Evaluated:
    names: set[str]
    errors: list[str] = field(default_factory=list)  # printed atoms that wrongly match nothing


@dataclass
class RefResult:
    errors: list[str]  # non-empty: planning must raise SelectionError at one of these texts
    canonical: list[str]  # canonical (first) name per tensor, in first-occurrence order
    aliases: list[list[str]]
    before: list[bool]
    after: list[bool]
    decided_by: list[int | None]
    expect_ok: list[bool]
    name_state: dict[str, bool]  # state each single name would get on its own
    name_rule: dict[str, int]  # statement number deciding each name (0 = none)
    selected: dict[int, set[str]]  # rule statement number -> names its selector selects
    numel: list[int]


class Reference:
    """Evaluates selectors and programs against a live module."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.named = list(model.named_parameters(remove_duplicate=False))
        self.names = [n for n, _ in self.named]
        self.name_set = set(self.names)
        self.modules = dict(model.named_modules(remove_duplicate=False))
        self.tensors: list[nn.Parameter] = []
        self.tensor_of: dict[str, int] = {}
        ids: dict[int, int] = {}
        for n, p in self.named:
            if id(p) not in ids:
                ids[id(p)] = len(self.tensors)
                self.tensors.append(p)
            self.tensor_of[n] = ids[id(p)]

    # ---------------------------------------------------------------- tree
    def is_module(self, path: str) -> bool:
        return path in self.modules

    def segments(self, path: str) -> dict[str, str]:
        """Child segment -> child path (modules, every registration, and own parameters)."""
        if not self.is_module(path):
            return {}
        m = self.modules[path]
        out = {n: _join(path, n) for n, c in m._modules.items() if c is not None}
        out.update(
            (n, _join(path, n))
            for n, _ in m.named_parameters(recurse=False, remove_duplicate=False)
        )
        return out

    def indexable(self, path: str) -> list[str]:
        return [_join(path, n) for n, _ in self.modules[path].named_children()]

    def below(self, path: str) -> list[str]:
        """The node and every node under it (modules and parameters)."""
        if not self.is_module(path):
            return [path]
        pre = path + "."
        return [
            p for p in list(self.modules) + self.names if p == path or not path or p.startswith(pre)
        ]

    def names_under(self, path: str) -> set[str]:
        if not self.is_module(path):
            return {path}
        pre = path + "."
        return {n for n in self.names if not path or n.startswith(pre)}

    # ---------------------------------------------------------------- atoms
    def path_nodes(self, path: ast.Path) -> list[str]:
        cur = [""]
        for part in path.parts:
            nxt: list[str] = []
            if isinstance(part, ast.Children):
                continue
            if isinstance(part, ast.Word):
                for p in cur:
                    child = self.segments(p).get(part.name)
                    if child is not None:
                        nxt.append(child)
            elif isinstance(part, ast.Glob):
                for p in cur:
                    nxt.extend(
                        c
                        for s, c in self.segments(p).items()
                        if fnmatch.fnmatchcase(s, part.pattern)
                    )
            elif isinstance(part, ast.AnySegments):
                for p in cur:
                    nxt.extend(self.below(p))
            elif isinstance(part, ast.Index):
                for p in cur:
                    if self.is_module(p):
                        kids = self.indexable(p)
                        if -len(kids) <= part.index < len(kids):
                            nxt.append(kids[part.index])
            elif isinstance(part, ast.Slice):
                for p in cur:
                    if self.is_module(p):
                        nxt.extend(self.indexable(p)[part.start : part.stop : part.step])
            else:  # pragma: no cover
                raise TypeError(part)
            cur = list(dict.fromkeys(nxt))
            if not cur:
                return []
        return cur

    def type_modules(self, atom: ast.TypeName | ast.TypeRegex) -> list[str]:
        out = []
        for path, m in self.modules.items():
            cls = type(m)
            if isinstance(atom, ast.TypeRegex):
                hit = any(re.search(atom.pattern, c.__name__) for c in cls.__mro__ if c is not object)
            elif "." in atom.name:
                full = f"{cls.__module__}.{cls.__qualname__}"
                hit = full == atom.name or full.endswith("." + atom.name)
            else:
                hit = any(c.__name__ == atom.name for c in cls.__mro__ if c is not object)
            if hit:
                out.append(path)
        return out

    def atom(self, atom: ast.Selector) -> tuple[set[str], bool]:
        """(selected names, matched something)."""
        if isinstance(atom, ast.All):
            return set(self.names), True
        if isinstance(atom, ast.NameRegex):
            hits = {n for n in self.names if re.search(atom.pattern, n)}
            return hits, bool(hits)
        if isinstance(atom, (ast.TensorCompare, ast.DtypeIs, ast.ShapeIs, ast.Initially)):
            hits = {n for n, p in self.named if self._tensor_test(atom, p)}
            return hits, bool(hits)
        # A path or type atom that matches only modules without parameters counts as
        # matching nothing (as suspicious as a typo), so it is an error unless optional.
        if isinstance(atom, (ast.TypeName, ast.TypeRegex)):
            names = set().union(*(self.names_under(p) for p in self.type_modules(atom)))
            return names, bool(names)
        if isinstance(atom, ast.Path):
            names = set().union(*(self.names_under(p) for p in self.path_nodes(atom)))
            return names, bool(names)
        raise TypeError(atom)  # pragma: no cover

    @staticmethod
    def _tensor_test(atom: ast.TensorCompare | ast.DtypeIs | ast.ShapeIs | ast.Initially, p: nn.Parameter) -> bool:
        if isinstance(atom, ast.ShapeIs):
            return p.dim() == len(atom.dims) and all(d is None or d == n for d, n in zip(atom.dims, p.shape))
        if isinstance(atom, ast.DtypeIs):
            return str(p.dtype) == f"torch.{atom.dtype}"
        if isinstance(atom, ast.Initially):
            return p.requires_grad == (atom.state == "trainable")  # models here are fresh
        value = p.dim() if atom.prop == "ndim" else p.numel()
        return {
            "==": value == atom.value, "!=": value != atom.value, "<": value < atom.value,
            "<=": value <= atom.value, ">": value > atom.value, ">=": value >= atom.value,
        }[atom.op]

    def atom_is_empty(self, atom: ast.Selector) -> bool:
        return not self.atom(atom)[1]

    def with_aliases(self, names: set[str]) -> set[str]:
        """The names plus every other name of the tensors they name."""
        tensors = {self.tensor_of[n] for n in names}
        return {n for n in self.names if self.tensor_of[n] in tensors}

    # ---------------------------------------------------------------- selectors
    def select(self, sel: ast.Selector, optional: bool = False) -> Evaluated:
        if isinstance(sel, ast.Union_):
            out = Evaluated(set())
            for item in sel.items:
                part = self.select(item, optional)
                out.names |= part.names
                out.errors += part.errors
            return out
        if isinstance(sel, ast.Except):
            base = self.select(sel.base, optional)
            excl = self.select(sel.excluded, optional)
            errors = base.errors + excl.errors
            removed = self.with_aliases(excl.names)  # except removes whole tied tensors
            if not optional and base.names:
                # every part of an `except` (each `,` item) must remove something, unless `?`
                items = sel.excluded.items if isinstance(sel.excluded, ast.Union_) else (sel.excluded,)
                for item in items:
                    if not isinstance(item, ast.Maybe) and not (self.with_aliases(self.select(item).names) & base.names):
                        errors.append(format_selector(item))
                        break
            return Evaluated(base.names - removed, errors)
        if isinstance(sel, ast.Maybe):
            return self.select(sel.inner, True)
        names, matched = self.atom(sel)
        return Evaluated(names, [] if matched or optional else [format_selector(sel)])

    @staticmethod
    def required_atoms(sel: ast.Selector) -> Iterable[bool]:
        """For every non-excluded atom: is it optional?"""

        def walk(s: ast.Selector, opt: bool, excl: bool) -> Iterable[bool]:
            if isinstance(s, ast.Union_):
                for item in s.items:
                    yield from walk(item, opt, excl)
            elif isinstance(s, ast.Except):
                yield from walk(s.base, opt, excl)
                yield from walk(s.excluded, opt, not excl)
            elif isinstance(s, ast.Maybe):
                yield from walk(s.inner, True, excl)
            elif not excl:
                yield opt

        return walk(sel, False, False)

    def statement_selection(self, sel: ast.Selector, errors: list[str]) -> set[str]:
        ev = self.select(sel)
        errors.extend(ev.errors)
        if not ev.names and not all(self.required_atoms(sel)):
            errors.append(format_selector(sel))
        return ev.names

    # ---------------------------------------------------------------- programs
    def run(self, program: ast.Program) -> RefResult:
        errors: list[str] = []
        rules: list[tuple[int, bool, set[str]]] = []
        expects: list[tuple[ast.Statement, set[str] | None]] = []
        for number, st in enumerate(program.statements, 1):
            if isinstance(st, ast.Rule):
                rules.append(
                    (number, st.action == "unfreeze", self.statement_selection(st.selector, errors))
                )
            elif isinstance(st, ast.ExpectSelector):
                expects.append((st, self.statement_selection(st.selector, errors)))
            elif isinstance(st, ast.ExpectShare):
                expects.append((st, None))
            else:  # pragma: no cover - only core statements are generated
                raise TypeError(st)
        name_rule = {n: 0 for n in self.names}
        name_action: dict[str, bool] = {}
        for number, action, names in rules:
            for n in names:
                name_rule[n] = number
                name_action[n] = action
        before = [bool(p.requires_grad) for p in self.tensors]
        aliases: list[list[str]] = [[] for _ in self.tensors]
        for n in self.names:
            aliases[self.tensor_of[n]].append(n)
        decided: list[int | None] = []
        after: list[bool] = []
        actions = {number: action for number, action, _ in rules}
        for t, tensor_names in enumerate(aliases):
            last = max(name_rule[n] for n in tensor_names)
            decided.append(last or None)
            after.append(actions[last] if last else before[t])
        name_state = {n: name_action.get(n, before[self.tensor_of[n]]) for n in self.names}
        expect_ok = [self._expect(st, names, after) for st, names in expects]
        return RefResult(
            errors,
            [a[0] for a in aliases],
            aliases,
            before,
            after,
            decided,
            expect_ok,
            name_state,
            name_rule,
            {number: names for number, _, names in rules},
            [p.numel() for p in self.tensors],
        )

    def _expect(self, st: ast.Statement, names: set[str] | None, after: list[bool]) -> bool:
        if isinstance(st, ast.ExpectSelector):
            assert names is not None
            want = st.state == "trainable"
            return all(after[self.tensor_of[n]] == want for n in names)
        assert isinstance(st, ast.ExpectShare)
        total = sum(p.numel() for p in self.tensors)
        part = sum(p.numel() for p, a in zip(self.tensors, after) if a == (st.state == "trainable"))
        share = Fraction(100 * part, total) if total else Fraction(0)
        low = Fraction(st.low)
        if st.op == "between":
            assert st.high is not None
            return low <= share <= Fraction(st.high)
        return {
            "<": share < low,
            "<=": share <= low,
            ">": share > low,
            ">=": share >= low,
            "==": share == low,
        }[st.op]


def run(program: ast.Program, model: nn.Module) -> RefResult:
    return Reference(model).run(program)


def share_of(model: nn.Module, state: str = "trainable") -> Decimal:
    """Exact share (percent) of unique parameter elements in ``state``."""
    seen = list(model.parameters())
    total = sum(p.numel() for p in seen)
    part = sum(p.numel() for p in seen if p.requires_grad == (state == "trainable"))
    return Decimal(100 * part) / Decimal(total) if total else Decimal(0)


def share_after(ref: RefResult, model: nn.Module, state: str) -> Decimal:
    """The share (percent) of elements in ``state`` after the rules, rounded down to 4 places."""
    from decimal import ROUND_FLOOR

    sizes = [p.numel() for p in Reference(model).tensors]
    total = sum(sizes)
    part = sum(n for n, a in zip(sizes, ref.after) if a == (state == "trainable"))
    if not total:
        return Decimal(0)
    return (Decimal(100 * part) / Decimal(total)).quantize(Decimal("0.0001"), rounding=ROUND_FLOOR)
