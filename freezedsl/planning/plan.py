"""Plan: which parameter ends trainable or frozen, and which statement decided it.

Planning reads the model (through a ModelIndex) and never changes it. Statements run
in order and the last one that matches a parameter decides it; parameters no
statement matches keep their current state. ``expect`` statements are checked against
the final state, wherever they stand in the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from freezedsl.errors import SelectionError
from freezedsl.gcpause import gc_paused
from freezedsl.planning.containers import TypeContainer, type_containers
from freezedsl.planning.index import (
    ModelIndex,
    bits_mask,
    build_index,
    dtype_info,
    iter_bits,
    mask_bits,
    ranges_mask,
    weighted_sum,
)
from freezedsl.planning.select import Evaluator, initially_trainable
from freezedsl.syntax import ast
from freezedsl.syntax.printer import format_selector, format_statement


@dataclass(frozen=True)
class StatementResult:
    number: int  # 1-based position among the program's statements
    line: int | None
    text: str
    action: str  # freeze | unfreeze | expect
    matched_tensors: int
    matched_elements: int
    decided_tensors: int
    decided_elements: int


class ParamDecision(NamedTuple):
    """One parameter tensor's decision (a NamedTuple: plans of 100k tensors stay cheap)."""

    name: str
    aliases: tuple[str, ...]
    shape: tuple[int, ...]
    numel: int
    dtype: str
    before: bool  # requires_grad before
    after: bool  # requires_grad after
    decided_by: int | None  # StatementResult.number, or None when no statement matched
    lr: ast.Factor | None = None  # from `lr` statements (for freezedsl.param_groups)
    weight_decay: ast.Factor | None = None

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class ModuleDecision:
    """A module that a `freeze stats` / `unfreeze stats` / `convert` statement decided."""

    path: str
    cls: str
    module_index: int  # position in the model's pre-order module list
    frozen: bool  # stats frozen (always True for conversions)
    decided_by: int


@dataclass(frozen=True)
class ExpectResult:
    number: int
    line: int | None
    col: int | None
    text: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class TieConflict:
    """A tied tensor whose names were decided by different statements."""

    aliases: tuple[str, ...]
    deciders: tuple[int | None, ...]  # statement number deciding each alias (None = none)
    final: bool  # requires_grad the tensor ends with


class Plan:
    """The outcome of planning a program against one model.

    Decisions are kept as bit sets over the model's tensors; the per-tensor view
    (``params``) and the per-statement counts (``statements``) are built on first use,
    so applying rules to a model with 100k tensors never pays for a report nobody reads.
    """

    def __init__(
        self,
        *,
        program: ast.Program,
        index: ModelIndex,
        before: int,
        after: int,
        rule_masks: list[tuple[int, int]],
        decided: dict[int, int],
        hyper_of: dict[str, list[ast.Factor | None]] | None,
        extra_statements: dict[int, tuple[str, int, int]],
        warnings: list[str],
        ties: list[TieConflict],
        scheduled: int,
    ) -> None:
        self.program = program
        self.model_class = index.model_class
        self.wrapper = index.wrapper
        self.warnings = warnings
        self.ties = ties
        self.scheduled = scheduled  # statements that wait for an `at epoch/step` (see freezedsl.Schedule)
        self.expectations: list[ExpectResult] = []
        self.norm_stats: list[ModuleDecision] = []
        self.conversions: list[ModuleDecision] = []
        self.type_containers: list[TypeContainer] = []  # FZ116: type atoms that match containers too
        self.reenabled: list[tuple[ast.Rule, str]] = []  # FZ117: `unfreeze all` training initially frozen tensors
        # run on every Plan.cost estimate; freezedsl.api sets FZ340 (planning never imports lint)
        self.cost_checks: tuple[Any, ...] = ()
        self._index = index
        self._before = before  # tensor masks: requires_grad before and after
        self._after = after
        self._rule_masks = rule_masks  # (statement number, tensor mask) per rule, file order
        self._decided = decided  # statement number -> tensors it decides
        self._hyper_of = hyper_of
        self._extra = extra_statements  # number -> (action, count, elements) of other statements
        self._params: list[ParamDecision] | None = None
        self._statements: list[StatementResult] | None = None

    @property
    def has_hyper(self) -> bool:
        """Whether the program sets an lr or weight decay (`plan --explain` shows them)."""
        return self._hyper_of is not None

    @property
    def _objects(self) -> list[Any]:
        return self._index.objects

    @property
    def _modules(self) -> list[Any]:
        return self._index.module_objects

    # ------------------------------------------------------------ per tensor
    @property
    def params(self) -> list[ParamDecision]:
        """One ParamDecision per tensor, in model order (tied tensors once)."""
        if self._params is None:
            with gc_paused():
                self._params = self._build_params()
        return self._params

    def _build_params(self) -> list[ParamDecision]:
        index = self._index
        n = len(index.objects)
        by = self.decided_by()
        after = mask_bits(self._after, n)
        no_hyper: list[ast.Factor | None] = [None] * n
        lrs = self._hyper_of["lr"] if self._hyper_of else no_hyper
        wds = self._hyper_of["weight_decay"] if self._hyper_of else no_hyper
        out = []
        for t, (param, aliases, numel, before) in enumerate(
            zip(index.objects, index.aliases(), index.numel, index.requires_grad)
        ):
            out.append(
                ParamDecision(
                    aliases[0],
                    aliases,
                    tuple(param.shape),
                    numel,
                    dtype_info(param.dtype)[0],
                    before,
                    bool(after[t]),
                    by[t] or None,
                    lrs[t],
                    wds[t],
                )
            )
        return out

    def decided_by(self) -> list[int]:
        """The statement number deciding each tensor (0: none matched it)."""
        out = [0] * len(self._index.objects)
        for number, mask in self._decided.items():
            for t in iter_bits(mask):
                out[t] = number
        return out

    # ------------------------------------------------------------ per statement
    @property
    def statements(self) -> list[StatementResult]:
        if self._statements is None:
            self._statements = self._build_statements()
        return self._statements

    def _build_statements(self) -> list[StatementResult]:
        numel = self._index.numel
        masks = dict(self._rule_masks)
        out: list[StatementResult] = []
        for number, st in enumerate(self.program.statements, 1):
            line = st.span.line if st.span else None
            text = format_statement(st)
            if isinstance(st, ast.Rule):
                m, d = masks[number], self._decided.get(number, 0)
                out.append(
                    StatementResult(
                        number, line, text, st.action,
                        m.bit_count(), weighted_sum(m, numel),
                        d.bit_count(), weighted_sum(d, numel),
                    )
                )
            elif number in self._extra:
                action, matched, elements = self._extra[number]
                out.append(StatementResult(number, line, text, action, matched, elements, 0, 0))
            elif isinstance(st, ast.Scheduled):
                out.append(StatementResult(number, line, text, "scheduled", 0, 0, 0, 0))
            else:
                out.append(StatementResult(number, line, text, "expect", 0, 0, 0, 0))
        return out

    # ------------------------------------------------------------ totals
    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.expectations)

    @property
    def total_elements(self) -> int:
        return sum(self._index.numel)

    @property
    def trainable_elements(self) -> int:
        return weighted_sum(self._after, self._index.numel)

    @property
    def trainable_percent(self) -> float:
        total = self.total_elements
        return 100.0 * self.trainable_elements / total if total else 0.0

    @property
    def trainable(self) -> list[str]:
        return [p.name for p in self.params if p.after]

    def cost(self, example_inputs: Any, *, dtype: str | None = None, optimizer: str | None = None) -> Any:
        """One training step's cost with this freeze and without it (see freezedsl.planning.cost)."""
        from freezedsl.planning.cost import estimate_cost

        return estimate_cost(
            self,
            self._index.module_objects[0],
            example_inputs,
            dtype=dtype,
            optimizer=optimizer,
            checks=self.cost_checks,
        )

    @property
    def frozen(self) -> list[str]:
        return [p.name for p in self.params if not p.after]

    @property
    def changed(self) -> list[ParamDecision]:
        return [p for p in self.params if p.changed]

    def state_of(self, name: str) -> bool:
        """requires_grad after the plan, looked up by any name of the parameter."""
        for p in self.params:
            if name in p.aliases:
                return p.after
        raise KeyError(name)

    # ------------------------------------------------------------ output
    def render(self, *, explain: bool = False, color: bool = False) -> str:
        from freezedsl.planning.report import render_text

        return render_text(self, explain=explain, color=color)

    def to_dict(self) -> dict[str, Any]:
        from freezedsl.planning.report import plan_to_dict

        return plan_to_dict(self)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"<freezedsl.Plan {self.program.path or '<rules>'} on {self.model_class}: {len(self._index.objects)} tensors>"


def _pct(part: int, total: int) -> float:
    return 100.0 * part / total if total else 0.0


def make_plan(program: ast.Program, model: Any, index: ModelIndex | None = None) -> Plan:
    """Plan ``program`` against ``model`` without changing it."""
    with gc_paused():
        return _make_plan(program, model, index)


def _make_plan(program: ast.Program, model: Any, index: ModelIndex | None) -> Plan:
    index = index or build_index(model)
    ev = Evaluator(index, program.path, program.source)
    n_tensors = len(index.objects)

    rules: list[tuple[int, ast.Rule, int]] = []  # (statement number, rule, name mask)
    module_stmts: list[tuple[int, ast.StatsRule | ast.Convert, list[int]]] = []
    hypers: list[tuple[int, str, list[tuple[int, Any]], bool]] = []  # (number, name, targets, decay)
    for number, st in enumerate(program.statements, 1):
        if isinstance(st, ast.Rule):
            sel = ev.select(st.selector)
            if sel.mask == 0 and not _all_optional(st.selector):
                raise _empty_statement(ev, st.selector, index)
            rules.append((number, st, sel.mask))
        elif isinstance(st, (ast.StatsRule, ast.Convert)):
            module_stmts.append((number, st, _module_targets(ev, st)))
        elif isinstance(st, ast.Hyper):
            hypers.append((number, st.name, _hyper_targets(ev, st), False))
        elif isinstance(st, ast.HyperDecay):
            scaled, below = _decay_targets(ev, st)
            hypers.append((number, st.name, scaled, True))
            if below:  # `freeze below T` freezes those layers, as a freeze statement here would
                rules.append((number, ast.Rule("freeze", st.selector, span=st.span), below))

    # A tied tensor is one parameter: it is matched when any of its names is, and
    # follows the latest statement matching it.
    rule_masks = [(number, index.tensor_bits(mask)) for number, _rule, mask in rules]
    before = bits_mask(bytes(index.requires_grad))  # bools: one C pass
    after = before
    for (_number, rule, _m), (_n, mask) in zip(rules, rule_masks):
        after = (after | mask) if rule.requires_grad else (after & ~mask)
    # Last match wins: walking the rules backwards, each tensor goes to the first
    # (i.e. last in the file) rule that matches it.
    decided: dict[int, int] = {}
    undecided = index.all_tensors_mask
    for number, mask in reversed(rule_masks):
        new = mask & undecided
        if new:
            decided[number] = new
            undecided &= ~new

    rule_of = {number: rule for number, rule, _ in rules}
    untrainable = _first_untrainable(index, after & ~before)
    if untrainable is not None:
        number = next(n for n, m in decided.items() if m >> untrainable & 1)
        name = index.canonical_names()[untrainable]
        dtype = dtype_info(index.objects[untrainable].dtype)[0]
        raise ev.error(
            f"{name} has dtype {dtype} and cannot be trainable "
            f"(only floating-point and complex tensors can require gradients)",
            rule_of[number].span,
            f"exclude it: unfreeze ... except {name}",
        )
    warnings, ties = _tie_conflicts(program, index, rules, rule_of, before, after) if index.tied else ([], [])
    reenabled = _unfreeze_all_reenabled(index, rules, decided, after)
    warnings.extend(message for _rule, message in reenabled)

    hyper_of: dict[str, list[ast.Factor | None]] | None = None
    extra: dict[int, tuple[str, int, int]] = {}
    if hypers:
        # Two channels per setting, each "last match wins": the factor of `lr 2x` / `lr 3e-4`
        # statements and the scale of `lr decay` statements; a relative factor and a scale
        # multiply (docs/language.md, "Composing lr decay with lr factors").
        factor_of: dict[str, list[ast.Factor | None]] = {"lr": [None] * n_tensors, "weight_decay": [None] * n_tensors}
        scale_of: dict[str, list[Decimal | None]] = {"lr": [None] * n_tensors, "weight_decay": [None] * n_tensors}
        numel = index.numel
        for number, hname, targets, decay in hypers:  # in file order: the last match wins
            touched = set()
            channel: list[Any] = scale_of[hname] if decay else factor_of[hname]
            for i, value in targets:
                t = index.tensor_of[i]
                channel[t] = value
                touched.add(t)
            extra[number] = (hname, len(touched), sum(numel[t] for t in touched))
        hyper_of = {
            name: [compose(f, sc) for f, sc in zip(factor_of[name], scale_of[name])] for name in factor_of
        }
    for number, st, found in module_stmts:
        kind = "convert" if isinstance(st, ast.Convert) else f"{st.action} stats"
        extra[number] = (kind, len(found), 0)

    plan = Plan(
        program=program,
        index=index,
        before=before,
        after=after,
        rule_masks=rule_masks,
        decided=decided,
        hyper_of=hyper_of,
        extra_statements=extra,
        warnings=warnings,
        ties=ties,
        scheduled=sum(1 for st in program.statements if isinstance(st, ast.Scheduled)),
    )
    plan.norm_stats, plan.conversions = _module_decisions(index, module_stmts)
    if index.wrapper:
        advice = {
            "OptimizedModule": "freeze before torch.compile, or expect a recompile on the next call",
            "DataParallel": "freeze before wrapping",
        }.get(
            index.wrapper,
            "freeze before wrapping: DDP records which parameters need gradients when it is built",
        )
        plan.warnings.insert(
            0,
            f"the model is wrapped in {index.wrapper}; rules were applied to the bare model's names; {advice}",
        )
    plan.expectations = [
        _check_expect(plan, ev, n, st)
        for n, st in enumerate(program.statements, 1)
        if isinstance(st, (ast.ExpectSelector, ast.ExpectShare))
    ]
    plan.reenabled = reenabled
    plan.type_containers = type_containers(ev)
    for mixed in plan.type_containers:
        where = f"line {mixed.atom.span.line}: " if mixed.atom.span else ""
        plan.warnings.append(f"{where}{mixed.message}; {mixed.hint}")
    return plan


def _first_untrainable(index: ModelIndex, becoming: int) -> int | None:
    """The first tensor made trainable whose dtype cannot require gradients."""
    if not becoming:
        return None
    objects = index.objects
    for t in iter_bits(becoming):
        if not dtype_info(objects[t].dtype)[1]:
            return t
    return None


def _tie_conflicts(
    program: ast.Program, index: ModelIndex, rules: list[tuple[int, ast.Rule, int]],
    rule_of: dict[int, ast.Rule], before: int, after: int,
) -> tuple[list[str], list[TieConflict]]:
    """Tied tensors whose names were decided differently: say so. Names decided by
    different statements the same way (``freeze all`` then ``freeze lm_head``), or left
    undecided in the state they already had, need no warning: every reading agrees."""
    names = index.names
    decided_name = [0] * len(names)
    undecided = index.all_mask
    for number, _rule, mask in reversed(rules):
        new = mask & undecided
        for i in iter_bits(new):
            decided_name[i] = number
        undecided &= ~new
    alias_idx: dict[int, list[int]] = {}
    for i, t in enumerate(index.tensor_of):
        alias_idx.setdefault(t, []).append(i)
    warnings: list[str] = []
    ties: list[TieConflict] = []
    for t, idxs in alias_idx.items():
        if len(idxs) < 2 or len({decided_name[i] for i in idxs}) < 2:
            continue
        outcomes = {
            rule_of[decided_name[i]].requires_grad if decided_name[i] else bool(before >> t & 1)
            for i in idxs
        }
        if len(outcomes) < 2:
            continue
        by = ", ".join(f"{names[i]} by {_stmt_ref(program, decided_name[i])}" for i in idxs)
        final = bool(after >> t & 1)
        ties.append(TieConflict(tuple(names[i] for i in idxs), tuple(decided_name[i] or None for i in idxs), final))
        listed = ", ".join(names[i] for i in idxs)
        warnings.append(
            f"tied parameter {' = '.join(names[i] for i in idxs)} is one tensor but its names were "
            f"decided differently ({by}); it follows the last: "
            f"{'trainable' if final else 'frozen'}; say which in one statement that names them all "
            f"(freeze {listed} / unfreeze {listed})"
        )
    return warnings, ties


def _unfreeze_all_reenabled(
    index: ModelIndex, rules: list[tuple[int, ast.Rule, int]], decided: dict[int, int], after: int
) -> list[tuple[ast.Rule, str]]:
    """``unfreeze all`` that trains tensors the model's library froze on purpose (Whisper's
    fixed sinusoidal ``embed_positions``): say so, and how to keep them frozen (FZ117)."""
    out: list[tuple[ast.Rule, str]] = []
    for number, rule, _mask in rules:
        if rule.action != "unfreeze" or not any(
            isinstance(a, ast.All) and not excl for a, _opt, excl in ast.atoms(rule.selector)
        ):
            continue
        mine = decided.get(number, 0) & after
        hit = [t for t in iter_bits(mine) if not initially_trainable(index.objects[t])]
        if not hit:
            continue
        names = index.canonical_names()
        shown = ", ".join(names[t] for t in hit[:3]) + (f" and {len(hit) - 3} more" if len(hit) > 3 else "")
        line = rule.span.line if rule.span else "?"
        out.append((rule, (
            f"line {line} ({format_statement(rule)}) makes {len(hit)} tensors trainable that were frozen "
            f"before any rule changed them ({shown}); libraries freeze such tensors on purpose; write "
            f"'unfreeze all except initially frozen' to keep them frozen, or unfreeze them by name"
        )))
    return out


def convertible(index: ModelIndex, i: int) -> bool:
    """``convert ... to FrozenBatchNorm2d`` can replace module ``i``: a plain BatchNorm2d
    with running statistics, or timm's BatchNormAct2d (batch norm fused with its
    activation; it becomes timm's FrozenBatchNormAct2d, which keeps the activation).
    Other subclasses are left alone: a frozen plain layer would drop what they add."""
    if not index.running_stats(i):
        return False
    cls = index.classes(i)[:1]
    return cls == ("BatchNorm2d",) or (
        cls == ("BatchNormAct2d",) and index.qualname(i) == "timm.layers.norm_act.BatchNormAct2d"
    )


def _module_targets(ev: Evaluator, st: ast.StatsRule | ast.Convert) -> list[int]:
    """Module indices a stats/convert statement acts on: norm layers in its scope."""
    sel = ev.select(st.selector, modules=True)
    index = ev.index
    if isinstance(st, ast.Convert):
        found = [i for i in iter_bits(sel.mmask) if convertible(index, i)]
        what = "BatchNorm2d module with running statistics"
        if not found and not _all_optional(st.selector):
            others = sorted({index.classes(i)[0] for i in iter_bits(sel.mmask) if "BatchNorm2d" in index.classes(i)[1:]})
            if others:
                what += (
                    f" that can be converted (its BatchNorm2d subclasses {', '.join(others)} are left alone: "
                    "FrozenBatchNorm2d would drop what the subclass adds; convert takes BatchNorm2d and "
                    "timm's BatchNormAct2d)"
                )
    else:
        found = [i for i in iter_bits(sel.mmask) if index.running_stats(i)]
        what = "norm layer with running statistics (BatchNorm, SyncBatchNorm, InstanceNorm(track_running_stats=True))"
    if not found and not _all_optional(st.selector):
        raise ev.error(
            f"{format_selector(st.selector)} contains no {what}",
            st.span,
            "select a scope that holds such layers, or add '?' to allow none",
        )
    return found


def compose(factor: ast.Factor | None, scale: Decimal | None) -> ast.Factor | None:
    """One parameter's setting from its `lr Nx`/`lr V` factor and its `lr decay` scale:
    relative factors and scales multiply (MMEngine's ``bias_lr_mult`` times the layer
    decay); an absolute value (`lr 3e-4`) is used as it is."""
    if scale is None:
        return factor
    if factor is None:
        return ast.Factor(scale, True)
    return ast.Factor(factor.value * scale, True) if factor.relative else factor


def _hyper_targets(ev: Evaluator, st: ast.Hyper) -> list[tuple[int, ast.Factor]]:
    """(name index, factor) pairs of an `lr` / `weight_decay` statement."""
    sel = ev.select(st.selector)
    if sel.mask == 0 and not _all_optional(st.selector):
        raise _empty_statement(ev, st.selector, ev.index)
    return [(i, st.factor) for i in iter_bits(sel.mask)]


def decay_layers(ev: Evaluator, selector: ast.Selector) -> tuple[list[int], Any]:
    """The layers of an `lr decay ... over SEL`, as name masks in model order.

    A layer is a ``{...}`` group (everything it selects), an outermost selected module
    with parameters, or a selected parameter outside both (a root-level ``cls_token``).
    Layers are ordered by their first parameter; a parameter belongs to one layer.
    """
    sel = ev.select(selector, modules=True)
    index = ev.index
    remaining = sel.mask
    units: list[int] = []
    for layer in ast.layers(selector):
        part = ev.select(layer.inner, True).mask & remaining
        if part:
            units.append(part)
            remaining &= ~part
    end = -1
    for i in iter_bits(sel.mmask):
        if i < end or not index.has_params(i):
            continue
        span = ranges_mask(len(index.names), [(index.param_start[i], index.param_end(i))])
        if span & remaining:
            units.append(span & remaining)
            remaining &= ~span
            end = index.module_end[i]
    units.extend(1 << i for i in iter_bits(remaining))  # parameters outside every module layer
    units.sort(key=lambda m: (m & -m).bit_length())
    return units, sel


def _decay_targets(ev: Evaluator, st: ast.HyperDecay) -> tuple[list[tuple[int, Decimal]], int]:
    """(name index, scale) pairs of `lr decay F over SEL`, and the names `freeze below`
    freezes. The last layer gets F, the one before F^2, ... (timm's
    ``param_groups_layer_decay``: scale = max(min, F^(last - k)))."""
    units, sel = decay_layers(ev, st.selector)
    if not units:
        if sel.mask == 0 and not _all_optional(st.selector):
            raise _empty_statement(ev, st.selector, ev.index)
        return [], 0
    out: list[tuple[int, Decimal]] = []
    frozen = 0
    n = len(units)
    for k, unit in enumerate(units):
        scale = st.factor ** (n - k)
        if st.min_scale is not None:
            scale = max(scale, st.min_scale)
        out.extend((i, scale) for i in iter_bits(unit))
        if st.freeze_below is not None and scale < st.freeze_below:
            frozen |= unit
    return out, frozen


def _module_decisions(
    index: ModelIndex, stmts: list[tuple[int, ast.StatsRule | ast.Convert, list[int]]]
) -> tuple[list[ModuleDecision], list[ModuleDecision]]:
    stats: dict[int, ModuleDecision] = {}
    convert: dict[int, ModuleDecision] = {}
    for number, st, targets in stmts:
        for i in targets:
            path = index.module_paths[i]
            cls = index.classes(i)[0] if index.classes(i) else "?"
            if isinstance(st, ast.Convert):
                convert[i] = ModuleDecision(path, cls, i, True, number)
            else:
                stats[i] = ModuleDecision(path, cls, i, st.action == "freeze", number)
    return [stats[i] for i in sorted(stats)], [convert[i] for i in sorted(convert)]


def _stmt_ref(program: ast.Program, number: int) -> str:
    if not number:
        return "no statement"
    st = program.statements[number - 1]
    line = st.span.line if st.span else "?"
    return f"line {line} ({format_statement(st)})"


def _all_optional(sel: ast.Selector) -> bool:
    return all(opt for _atom, opt, excl in ast.atoms(sel) if not excl)


def _empty_statement(ev: Evaluator, sel: ast.Selector, index: ModelIndex) -> SelectionError:
    text = format_selector(sel)
    if isinstance(sel, ast.Except):
        return ev.error(
            f"{text} selects no parameters: 'except' removes everything the rest matches",
            sel.span,
            "drop or narrow the 'except' part",
        )
    return ev.error(
        f"{text} selects no parameters (it matches only modules without parameters)",
        sel.span,
        "select modules that own parameters, or add '?' to allow no match",
    )


def _check_expect(plan: Plan, ev: Evaluator, number: int, st: ast.Statement) -> ExpectResult:
    line = st.span.line if st.span else None
    col = st.span.col if st.span else None
    text = format_statement(st)
    if isinstance(st, ast.ExpectShare):
        total = plan.total_elements
        part = plan.trainable_elements if st.state == "trainable" else total - plan.trainable_elements
        pct = _pct(part, total)
        ok = st.holds(pct)
        detail = f"{pct:.2f}% {st.state} ({part:,} of {total:,} parameters)"
        return ExpectResult(number, line, col, text, ok, detail)
    assert isinstance(st, ast.ExpectSelector)
    sel = ev.select(st.selector)
    if sel.mask == 0 and not _all_optional(st.selector):
        raise _empty_statement(ev, st.selector, ev.index)
    want = st.state == "trainable"
    tensors = ev.index.tensor_bits(sel.mask)
    bad = tensors & (~plan._after if want else plan._after)
    n_selected = tensors.bit_count()
    if bad:
        names = ev.index.canonical_names()
        n_bad = bad.bit_count()
        first = [names[t] for t, _ in zip(iter_bits(bad), range(3))]
        shown = ", ".join(first) + (f" and {n_bad - 3} more" if n_bad > 3 else "")
        other = "frozen" if want else "trainable"
        detail = f"{n_bad} of {n_selected} selected tensors are {other}: {shown}"
        return ExpectResult(number, line, col, text, False, detail)
    return ExpectResult(number, line, col, text, True, f"all {n_selected} selected tensors are {st.state}")
