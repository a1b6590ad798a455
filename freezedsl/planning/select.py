"""Evaluate selectors against a ModelIndex.

Every atom must match something unless it is marked optional (``sel?``): a typo must
never freeze nothing silently. Errors point at the atom's position and suggest the
model's real names.
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from freezedsl.errors import SelectionError, Span, source_lines
from freezedsl.planning.index import ModelIndex, bits_mask, dtype_info, indices_mask, ranges_mask
from freezedsl.planning.rx import REGEX_BUDGET_ENV, Budget, RegexTimeout, file_budget, matcher
from freezedsl.planning.wrappers import PEFT_TYPE_SETS, peft_set_refs
from freezedsl.syntax import ast
from freezedsl.syntax.printer import format_path, format_selector

#: Attribute freezedsl.application sets on a tensor the first time it changes its
#: requires_grad: the flag the tensor had before (what `initially frozen` reads).
INITIAL_ATTR = "_freezedsl_initially_trainable"


def initially_trainable(param: Any) -> bool:
    """requires_grad before freezedsl first changed ``param`` (its flag now if it never did)."""
    value = getattr(param, INITIAL_ATTR, None)
    return bool(param.requires_grad) if value is None else bool(value)


class RegexBudgetError(SelectionError):
    """The rule file's regexes used up their time budget (freezedsl.planning.rx), at this regex."""


@dataclass
class Selection:
    mask: int  # bit set over index.names (parameters)
    mmask: int = 0  # bit set over module numbers (modules in scope, recursively)
    modules: int = 0  # how many modules/parameters the atoms matched (for reports)
    empty_atoms: list[ast.Selector] = field(default_factory=list)


@lru_cache(maxsize=512)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("".join("[^.]*" if ch == "*" else re.escape(ch) for ch in pattern) + r"\Z")


class Evaluator:
    """Evaluates selectors of one program against one index, raising located errors.

    ``modules=True`` also computes each selection's module mask (the scope of
    ``freeze stats``, ``convert`` and ``lr decay``); plain rules skip that work.
    """

    def __init__(self, index: ModelIndex, path: str | None, source: str | None) -> None:
        self.index = index
        self.path = path
        self.source = source
        self._lines = source_lines(source) if source else []
        # One regex budget for the whole rule file (every name~/type~ of this plan), or the
        # enclosing shared_budget() of a caller that checks the file in several passes.
        self.regex_budget = file_budget()
        self._tie_groups: list[int] | None = None  # name masks of tied tensors (2+ names)
        self._tensor_props: dict[str, list[Any]] = {}  # ndim/numel/dtype/initial state per tensor
        # modules each evaluated type=/type~ atom matched, by id(atom)
        self.type_refs: dict[int, tuple[ast.TypeName | ast.TypeRegex, list[int]]] = {}

    # ----------------------------------------------------------- errors
    def error(self, message: str, span: Span | None, hint: str | None = None) -> SelectionError:
        line = span.line if span else None
        col = span.col if span else None
        src = self._lines[line - 1] if line and 0 < line <= len(self._lines) else None
        return SelectionError(message, path=self.path, line=line, col=col, source_line=src, hint=hint)

    # ----------------------------------------------------------- tied tensors
    def with_aliases(self, mask: int) -> int:
        """``mask`` (over names) plus every other name of the tied tensors it touches.

        ``A except B`` removes a *tensor* when ``B`` selects any of its names, so that
        ``freeze all except lm_head`` keeps ``lm_head.weight`` trainable although
        ``all`` also reaches it as ``transformer.wte.weight`` (docs/language.md,
        "Tied (shared) parameters").
        """
        if not self.index.tied or not mask:
            return mask
        if self._tie_groups is None:
            by_tensor: dict[int, int] = {}
            for i, t in enumerate(self.index.tensor_of):
                by_tensor[t] = by_tensor.get(t, 0) | (1 << i)
            self._tie_groups = [bits for bits in by_tensor.values() if bits & (bits - 1)]
        for bits in self._tie_groups:
            if mask & bits:
                mask |= bits
        return mask

    # ----------------------------------------------------------- evaluation
    def select(self, sel: ast.Selector, optional: bool = False, modules: bool = False) -> Selection:
        if isinstance(sel, ast.Union_):
            out = Selection(0)
            for item in sel.items:
                part = self.select(item, optional, modules)
                out.mask |= part.mask
                out.mmask |= part.mmask
                out.modules += part.modules
                out.empty_atoms += part.empty_atoms
            return out
        if isinstance(sel, ast.Except):
            base = self.select(sel.base, optional, modules)
            excl = self.select(sel.excluded, optional, modules)
            if not optional and (base.mask or (modules and base.mmask)):
                self._check_except_removes(sel, base, modules)
            return Selection(
                base.mask & ~self.with_aliases(excl.mask),
                base.mmask & ~excl.mmask,
                base.modules,
                base.empty_atoms + excl.empty_atoms,
            )
        if isinstance(sel, ast.Maybe):
            return self.select(sel.inner, True, modules)
        if isinstance(sel, ast.Layer):  # one layer of `lr decay`; otherwise a group
            return self.select(sel.inner, optional, modules)
        mask, mmask, count = self.atom(sel, optional, modules)
        return Selection(mask, mmask, count, [sel] if count == 0 else [])

    def _check_except_removes(self, sel: ast.Except, base: Selection, modules: bool) -> None:
        """Each part of an ``except`` (each item of a ``,`` list) must remove something.

        ``except`` paths start at the model's root like every path, so ``layer4 except
        bn*`` names only a top-level ``bn*`` and would silently freeze all of layer4.
        A part marked ``?`` may remove nothing.
        """
        items = sel.excluded.items if isinstance(sel.excluded, ast.Union_) else (sel.excluded,)
        for item in items:
            if isinstance(item, ast.Maybe):
                continue
            part = self.select(item, False, modules)
            if base.mask & self.with_aliases(part.mask) or (modules and base.mmask & part.mmask):
                continue
            base_text, text = format_selector(sel.base), format_selector(item)
            why = f"it selects nothing inside {base_text}"
            if isinstance(item, ast.Path):
                why += " (a path after 'except' starts at the model's root, like every path)"
            hint = f"write {text}? if it may remove nothing"
            better = self._rooted_under(sel.base, item, base, modules)
            if better is not None:
                hint = f"did you mean {better}? (or {hint})"
            raise self.error(
                f"'except {text}' removes nothing from {base_text}: {why}", item.span or sel.span, hint
            )

    def _rooted_under(self, base: ast.Selector, item: ast.Selector, sel: Selection, modules: bool) -> str | None:
        """``layer4.**.bn*`` for ``layer4 except bn*``, when that form removes something."""
        if not (isinstance(base, ast.Path) and isinstance(item, ast.Path)):
            return None
        if any(isinstance(p, ast.Children) for p in item.parts):
            return None
        guess = ast.Path((*base.parts, ast.AnySegments(), *item.parts))
        try:
            part = self.select(guess, True, modules)
        except SelectionError:
            return None
        if sel.mask & self.with_aliases(part.mask) or (modules and sel.mmask & part.mmask):
            return format_selector(guess)
        return None

    def atom(self, sel: ast.Selector, optional: bool, modules: bool = False) -> tuple[int, int, int]:
        """(parameter mask, module mask, number of things matched) of one atom."""
        idx = self.index
        if isinstance(sel, ast.All):
            return idx.all_mask, (1 << idx.n_modules) - 1, 1
        if isinstance(sel, ast.NameRegex):
            rx = matcher(sel.pattern)
            mhits: list[int] = []
            view = idx.view_names()  # PEFT: the names without its levels match too
            try:
                hits = rx.hits(idx.names, self.regex_budget)
                if view is not None:
                    hits = sorted(set(hits).union(rx.hits(view[0], self.regex_budget)))
                if modules:
                    paths = idx.module_paths
                    mhits = [j for j in rx.hits(paths, self.regex_budget) if paths[j]]
                    if view is not None:
                        mhits = sorted(set(mhits).union(j for j in rx.hits(view[1], self.regex_budget) if j))
            except RegexTimeout:
                raise self.regex_timeout(sel, "names") from None
            mask = indices_mask(len(idx.names), hits)
            if mask == 0 and not optional:
                raise self.error(
                    f'name~"{sel.pattern}" matches no parameter name of {idx.model_class}',
                    sel.span,
                    self._name_hint(sel.pattern),
                )
            mmask = self._refs_mmask(mhits) if modules else 0
            return mask, mmask, len(hits)
        if isinstance(sel, (ast.TypeName, ast.TypeRegex)):
            try:
                if isinstance(sel, ast.TypeName) and sel.name in PEFT_TYPE_SETS:
                    refs = peft_set_refs(idx, sel.name)
                else:
                    refs = [j for j in idx.class_matches(_type_test(sel, self.regex_budget)) if j not in idx.transparent]
                    if idx.shadowed:
                        refs = [j for j in refs if j not in idx.shadowed]
            except RegexTimeout:
                raise self.regex_timeout(sel, "class names") from None
            self.type_refs[id(sel)] = (sel, refs)  # for the container check (planning/containers.py)
            if not refs and not optional:
                raise self.error(
                    f"{format_selector(sel)} matches no module of {idx.model_class}",
                    sel.span,
                    self._type_hint(sel),
                )
            self._require_params(sel, refs, optional)
            return self._refs_mask(refs), self._refs_mmask(refs) if modules else 0, len(refs)
        if isinstance(sel, (ast.TensorCompare, ast.DtypeIs, ast.ShapeIs, ast.Initially)):
            return self._tensor_atom(sel, optional)
        if isinstance(sel, ast.Path):
            refs = self.path_refs(sel, optional)
            self._require_params(sel, refs, optional)
            return self._refs_mask(refs), self._refs_mmask(refs) if modules else 0, len(refs)
        raise TypeError(f"not a selector atom: {sel!r}")  # pragma: no cover

    def _tensor_atom(
        self, sel: ast.TensorCompare | ast.DtypeIs | ast.ShapeIs | ast.Initially, optional: bool
    ) -> tuple[int, int, int]:
        """``ndim<=1``, ``numel>=N``, ``dtype=X``, ``initially frozen``: parameters by their
        tensor. Shapes and dtypes are known on the meta device too. Selects parameters,
        never modules (the module mask stays empty)."""
        idx = self.index
        values = self._tensor_values(sel)
        if isinstance(sel, ast.TensorCompare):
            passing = [sel.holds(v) for v in values]
        elif isinstance(sel, ast.DtypeIs):
            passing = [v == sel.dtype for v in values]
        elif isinstance(sel, ast.ShapeIs):
            passing = [sel.holds(v) for v in values]
        else:
            passing = [v == (sel.state == "trainable") for v in values]
        tensor_of = idx.tensor_of
        mask = bits_mask(passing[tensor_of[i]] for i in range(len(idx.names)))
        if mask == 0 and not optional:
            seen = sorted(set(values), key=lambda v: (str(type(v)), v))
            if isinstance(sel, ast.Initially):
                have = f"every parameter was initially {'frozen' if sel.state == 'trainable' else 'trainable'}"
            else:
                what = {"ndim": "dimensions", "numel": "element counts", "dtype": "dtypes", "shape": "shapes"}[
                    sel.prop if isinstance(sel, ast.TensorCompare) else "shape" if isinstance(sel, ast.ShapeIs) else "dtype"
                ]
                text = (lambda v: "[" + ", ".join(map(str, v)) + "]") if isinstance(sel, ast.ShapeIs) else str
                shown = [text(v) for v in seen[:8]] + (["..."] if len(seen) > 8 else [])
                have = f"its parameters have {what} {', '.join(shown)}" if seen else "it has no parameters"
            raise self.error(
                f"{format_selector(sel)} matches no parameter of {idx.model_class}",
                sel.span,
                f"{have} (add '?' after the selector if it may match nothing)",
            )
        return mask, 0, sum(passing)

    def _tensor_values(self, sel: ast.TensorCompare | ast.DtypeIs | ast.ShapeIs | ast.Initially) -> list[Any]:
        """The property ``sel`` tests, per tensor (cached per property)."""
        key = sel.prop if isinstance(sel, ast.TensorCompare) else type(sel).__name__
        cached = self._tensor_props.get(key)
        if cached is None:
            objects = self.index.objects
            if key == "ndim":
                cached = [len(p.shape) for p in objects]
            elif key == "numel":
                cached = list(self.index.numel)
            elif key == "ShapeIs":
                cached = [tuple(p.shape) for p in objects]
            elif key == "DtypeIs":
                cached = [dtype_info(p.dtype)[0] for p in objects]
            else:
                cached = [initially_trainable(p) for p in objects]
            self._tensor_props[key] = cached
        return cached

    def regex_timeout(self, sel: ast.Selector, what: str) -> RegexBudgetError:
        """The located error for running out of the regex budget at ``sel``."""
        line = sel.span.line if sel.span else None
        src = self._lines[line - 1] if line and 0 < line <= len(self._lines) else None
        return RegexBudgetError(
            f"{format_selector(sel)}: matching the regexes of this rule file against the {what} of "
            f"{self.index.model_class} took more than {self.regex_budget.seconds:g} s in all",
            path=self.path,
            line=line,
            col=sel.span.col if sel.span else None,
            source_line=src,
            hint=f"simplify the regex (avoid repetition that can backtrack) or raise {REGEX_BUDGET_ENV}",
        )

    def _require_params(self, sel: ast.Selector, refs: list[int], optional: bool) -> None:
        """An atom that matches only parameter-less modules is as suspicious as a typo."""
        idx = self.index
        if optional or not refs or any(idx.has_params(r) for r in refs):
            return
        kinds = sorted({idx.classes(r)[0] for r in refs if idx.classes(r)})
        what = ", ".join(kinds[:3]) + (", ..." if len(kinds) > 3 else "")
        raise self.error(
            f"{format_selector(sel)} matches only modules without parameters ({what}) in {idx.model_class}",
            sel.span,
            f"select modules that own parameters, or write {format_selector(sel)}? to allow this",
        )

    def _refs_mask(self, refs: list[int]) -> int:
        idx = self.index
        start, end = idx.param_start, idx.module_end
        spans = [(start[r], start[end[r]]) if r >= 0 else (~r, ~r + 1) for r in refs]
        if not idx.shadow_mask:
            return ranges_mask(len(idx.names), spans)
        # A hidden module (a ModulesToSaveWrapper's original) counts only when named itself.
        inside = [s for r, s in zip(refs, spans) if idx.is_shadowed(r)]
        outside = [s for r, s in zip(refs, spans) if not idx.is_shadowed(r)]
        mask = ranges_mask(len(idx.names), outside) & ~idx.shadow_mask
        return mask | ranges_mask(len(idx.names), inside)

    def _refs_mmask(self, refs: list[int]) -> int:
        idx = self.index
        end = idx.module_end
        if not idx.shadowed:
            return ranges_mask(idx.n_modules, [(r, end[r]) for r in refs if r >= 0])
        shadow = indices_mask(idx.n_modules, idx.shadowed)
        mask = ranges_mask(idx.n_modules, [(r, end[r]) for r in refs if r >= 0 and r not in idx.shadowed])
        return mask & ~shadow | ranges_mask(idx.n_modules, [(r, end[r]) for r in refs if r in idx.shadowed])

    # ----------------------------------------------------------- paths
    def path_refs(self, path: ast.Path, optional: bool) -> list[int]:
        idx = self.index
        if not idx.named_levels:
            return self._path_refs(path, optional)
        # PEFT: a path that starts at a level (`base_model.model.model.layers`) is a full
        # name and takes the levels by their own names; any other path is read as on the
        # bare model (`model.layers` looks through LoraModel.model), and a full name
        # written from further down (`query.base_layer`) still resolves. Errors are those
        # of the first reading.
        first = path.parts[0] if path.parts else None
        full = isinstance(first, ast.Word) and idx.direct_child(0, first.name) in idx.named_levels
        try:
            refs = self._path_refs(path, optional, levels_first=full)
        except SelectionError:
            refs = []
        return (
            refs
            or self._path_refs(path, True, levels_first=not full)
            or self._path_refs(path, optional, levels_first=full)
        )

    def _path_refs(self, path: ast.Path, optional: bool, levels_first: bool = False) -> list[int]:
        idx = self.index
        cur: list[int] = [0]
        skip = False
        for k, part in enumerate(path.parts):
            if skip:
                skip = False
                continue
            if isinstance(part, ast.Children):
                continue
            nxt: list[int] = []
            following = path.parts[k + 1] if k + 1 < len(path.parts) else None
            if isinstance(part, ast.AnySegments) and isinstance(following, (ast.Word, ast.Glob)):
                # `**.name`: look the name up in the whole model and keep what lies below
                # ``cur``, instead of walking every node below; keeps `**.bias` linear.
                nxt = self._below(cur, self._named(following))
                skip = True
                if not nxt:
                    if optional:
                        return []
                    raise self._deep_miss(path, k + 1, following)
                cur = nxt
                continue
            if isinstance(part, ast.Word):
                nxt = idx.children_named([r for r in cur if r >= 0], part.name, levels_first)
                if not nxt and part.name == "children" and isinstance(following, (ast.Index, ast.Slice)):
                    continue  # `backbone.body.children[:5]` reads as `backbone.body[:5]`
            elif isinstance(part, ast.Glob):
                if part.pattern == "*":
                    for r in cur:
                        if r >= 0:
                            nxt.extend(idx.child_refs(r))
                else:
                    rx = _glob(part.pattern)
                    for r in cur:
                        if r >= 0:
                            nxt.extend(ref for seg, ref in idx.children(r) if rx.match(seg))
            elif isinstance(part, ast.AnySegments):
                if len(cur) == 1:
                    nxt = idx.subtree(cur[0])
                else:
                    seen: set[int] = set()
                    for r in cur:
                        for d in idx.subtree(r):
                            if d not in seen:
                                seen.add(d)
                                nxt.append(d)
            else:  # Index / Slice over child modules
                nxt = self._index(path, k, part, cur, optional)
            if not nxt:
                if optional:
                    return []
                raise self._path_miss(path, k, cur)
            cur = nxt
        return cur

    def _named(self, part: ast.Word | ast.Glob) -> list[int]:
        idx = self.index
        if isinstance(part, ast.Word):
            return idx.named(part.name)
        rx = _glob(part.pattern)
        out: list[int] = []
        for seg in sorted(idx.segments()):
            if rx.match(seg):
                out.extend(idx.named(seg))
        return out

    def _below(self, cur: list[int], candidates: list[int]) -> list[int]:
        """The candidates strictly below some module of ``cur`` (pre-order ranges + bisect)."""
        idx = self.index
        mods = [r for r in cur if r >= 0]
        if idx.shadowed and not any(r in idx.shadowed for r in mods):  # hidden PEFT modules stay out
            candidates = [c for c in candidates if not idx.is_shadowed(c)]
        if mods == [0]:  # the root: everything but itself
            return [c for c in candidates if c != 0]

        def merged(spans: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
            starts: list[int] = []
            ends: list[int] = []
            for a, b in sorted(spans):
                if starts and a < ends[-1]:
                    ends[-1] = max(ends[-1], b)
                else:
                    starts.append(a)
                    ends.append(b)
            return starts, ends

        m_starts, m_ends = merged([(r, idx.module_end[r]) for r in mods])
        p_starts, p_ends = merged([(idx.param_start[r], idx.param_end(r)) for r in mods if idx.has_params(r)])
        out = []
        for c in candidates:
            if c < 0:
                i = bisect.bisect_right(p_starts, ~c) - 1
                if i >= 0 and ~c < p_ends[i]:
                    out.append(c)
            else:
                i = bisect.bisect_right(m_starts, c - 1) - 1  # an interval starting before c
                if i >= 0 and m_starts[i] < c < m_ends[i]:
                    out.append(c)
        return out

    def _deep_miss(self, path: ast.Path, k: int, part: ast.Word | ast.Glob) -> SelectionError:
        shown = format_path(path)
        names = sorted(self.index.segments())
        target = part.name if isinstance(part, ast.Word) else part.pattern.replace("*", "")
        close = difflib.get_close_matches(target, names, n=3, cutoff=0.6)
        where = "at any depth" if k == 1 else f"below {self._prefix(path, k - 1)}"
        hint = f"nothing named '{format_path(ast.Path((part,)))}' {where}"
        if close:
            hint += "; did you mean " + _or(close) + "?"
        hint += f" (or write {shown}? if it may match nothing)"
        return self.error(f"{shown} matches nothing in {self.index.model_class}", path.span, hint)

    def _index(
        self, path: ast.Path, k: int, part: ast.Index | ast.Slice, cur: list[int], optional: bool
    ) -> list[int]:
        out: list[int] = []
        params = [r for r in cur if r < 0]
        kids: dict[int, list[int]] = {}
        for r in cur:
            if r < 0:
                continue
            mods = kids[r] = self.index.child_modules(r)
            if isinstance(part, ast.Index):
                if -len(mods) <= part.index < len(mods):
                    out.append(mods[part.index])
            else:
                out.extend(mods[slice(part.start, part.stop, part.step)])
        if out or optional:
            return out
        prefix = self._prefix(path, k)
        where = idx_root_name(self.index) if prefix in ("", "children") else prefix
        if params and len(params) == len(cur):
            raise self.error(
                f"{prefix} is a parameter, not a module; [...] selects child modules",
                path.span,
                f"select the parameter as {prefix} or its module by path",
            )
        counts = sorted({len(mods) for mods in kids.values()})
        if counts == [0]:
            raise self.error(
                f"{where} has no child modules to index with [{_index_text(part)}]",
                path.span,
                "select it by path instead",
            )
        have = counts[0] if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"
        raise self.error(
            f"{self._prefix(path, k + 1)} selects no child module: {where} has {have} child modules",
            path.span,
            f"valid indices are 0..{counts[-1] - 1} or -{counts[-1]}..-1",
        )

    @staticmethod
    def _prefix(path: ast.Path, k: int) -> str:
        head = ast.Path(path.parts[:k])
        return format_path(head) if k else ""

    def _path_miss(self, path: ast.Path, k: int, cur: list[int]) -> SelectionError:
        part = path.parts[k]
        prefix = self._prefix(path, k)
        shown = format_path(path)
        concrete = all(isinstance(p, (ast.Word, ast.Index, ast.Slice, ast.Children)) for p in path.parts[:k])
        idx = self.index
        candidates = sorted(
            {seg for r in cur if r >= 0 for seg, c in idx.children(r) if concrete or c >= 0}
        )
        hint: str | None = None
        if isinstance(part, ast.Word):
            close = difflib.get_close_matches(part.name, candidates, n=3, cutoff=0.6)
            parametrized = f"{prefix}.parametrizations.{part.name}." if prefix else f"parametrizations.{part.name}."
            originals = [n for n in self.index.names if n.startswith(parametrized)] if "parametrizations" in candidates else []
            if close:
                opts = [f"{prefix}.{c}" if prefix else c for c in close]
                hint = "did you mean " + _or(opts) + "?"
            elif originals:  # weight_norm / spectral_norm: the parameter lives under parametrizations
                hint = f"{shown} is parametrized (weight_norm, ...); its tensors are " + _or(originals[:3])
            elif part.name == "module" and k == 0:
                hint = "rules use the bare model's names: drop the 'module.' prefix"
            else:
                full = self.index.module_paths[1:] + self.index.names
                close = difflib.get_close_matches(shown, full[:20000], n=3, cutoff=0.6)
                if close:
                    hint = "did you mean " + _or(close) + "?"
        if hint is None and candidates and not concrete:
            where = "at any depth" if prefix == "**" else f"below {prefix}"
            hint = f"nothing named '{format_path(ast.Path((part,)))}' {where}"
        elif hint is None and candidates:
            shown_c = candidates[:8]
            more = "" if len(candidates) <= 8 else f" (and {len(candidates) - 8} more)"
            where = f"{prefix} has" if prefix else f"{self.index.model_class} has"
            hint = f"{where}: {', '.join(shown_c)}{more}"
        elif hint is None:
            hint = f"{prefix or self.index.model_class} has no children"
        hint += f" (or write {shown}? if it may match nothing)"
        return self.error(f"{shown} matches nothing in {self.index.model_class}", path.span, hint)

    def _name_hint(self, pattern: str) -> str:
        names = self.index.names
        # difflib costs len(pattern) per name: a 200,000-character regex took seconds here
        close = difflib.get_close_matches(pattern, names[:20000], n=2, cutoff=0.5) if len(pattern) <= 200 else []
        sample = close or names[:3]
        text = "parameter names look like " + ", ".join(sample) if sample else "the model has no parameters"
        return text + " (add '?' after the selector if it may match nothing)"

    def _type_hint(self, sel: ast.TypeName | ast.TypeRegex) -> str:
        idx = self.index
        if isinstance(sel, ast.TypeName) and sel.name in PEFT_TYPE_SETS:
            return (
                f"{idx.model_class} has no active PEFT {'adapter' if sel.name == 'adapter' else 'modules_to_save copy'} "
                f"(peft's get_peft_model adds them; write {format_selector(sel)}? if it may match nothing)"
            )
        classes = sorted({idx.classes(j)[0] for j in range(idx.n_modules) if idx.classes(j)})
        if isinstance(sel, ast.TypeName):
            close = difflib.get_close_matches(sel.name.split(".")[-1], classes, n=3, cutoff=0.5)
            if close:
                return "did you mean " + _or([f"type={c}" for c in close]) + f"? (or write {format_selector(sel)}? if it may match nothing)"
        shown = ", ".join(classes[:8]) + ("" if len(classes) <= 8 else ", ...")
        return f"module classes in the model: {shown} (add '?' after the selector if it may match nothing)"


#: ``type=norm``: normalization layers, by class name, so that library subclasses count
#: without importing the library: torch's BatchNorm*/SyncBatchNorm/InstanceNorm*
#: (base ``_NormBase``), LayerNorm, GroupNorm, RMSNorm, LocalResponseNorm; timm's
#: BatchNormAct2d, GroupNormAct, LayerNorm2d, RmsNorm; Hugging Face's LlamaRMSNorm,
#: T5LayerNorm; torchvision's FrozenBatchNorm2d. Blocks that merely contain a norm layer
#: (torchvision ``Conv2dNormActivation``, timm ``ConvNormAct``) do not match.
NORM = "norm"
_NORM_CLASS = re.compile(
    r"(Norm|NormBase|(Batch|Layer|Group|Instance|RMS|Rms|LocalResponse)Norm(Act)?([123]d)?)$"
)


def _type_test(sel: ast.TypeName | ast.TypeRegex, spent: Budget) -> Callable[[tuple[str, ...], str], bool]:
    """Whether a module with these class names and dotted name matches ``type=`` / ``type~``."""
    if isinstance(sel, ast.TypeRegex):  # the class hierarchy, as type= sees it
        found = matcher(sel.pattern).tester(spent)
        return lambda classes, qualname: any(found(c) for c in classes)
    name = sel.name
    if name == NORM:
        return lambda classes, qualname: any(_NORM_CLASS.search(c) for c in classes)
    if "." in name:
        return lambda classes, qualname: qualname == name or qualname.endswith("." + name)
    return lambda classes, qualname: name in classes


def idx_root_name(index: ModelIndex) -> str:
    return f"the root {index.model_class}"


def _index_text(part: ast.Index | ast.Slice) -> str:
    from freezedsl.syntax.printer import format_index

    return format_index(part)


def _or(items: list[str]) -> str:
    items = [f"'{i}'" for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
