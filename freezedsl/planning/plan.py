"""Plan: which parameter ends trainable or frozen, and which statement decided it.

Planning reads the model (through a ModelIndex) and never changes it. Statements run
in order and the last one that matches a parameter decides it; parameters no
statement matches keep their current state. ``expect`` statements are checked against
the final state, wherever they stand in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from freezedsl.errors import SelectionError
from freezedsl.planning.index import ModelIndex, Node, build_index, iter_bits
from freezedsl.planning.select import Evaluator
from freezedsl.syntax import ast
from freezedsl.syntax.printer import format_selector, format_statement
from freezedsl.util import gc_paused


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


@dataclass
class Plan:
    program: ast.Program
    model_class: str
    params: list[ParamDecision]
    statements: list[StatementResult]
    expectations: list[ExpectResult]
    warnings: list[str] = field(default_factory=list)
    wrapper: str | None = None
    ties: list[TieConflict] = field(default_factory=list)
    norm_stats: list[ModuleDecision] = field(default_factory=list)
    conversions: list[ModuleDecision] = field(default_factory=list)
    scheduled: int = 0  # statements that wait for an `at epoch/step` (see freezedsl.Schedule)
    _objects: list[Any] = field(default_factory=list, repr=False)
    _modules: list[Any] = field(default_factory=list, repr=False)

    # ------------------------------------------------------------ totals
    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.expectations)

    @property
    def total_elements(self) -> int:
        return sum(p.numel for p in self.params)

    @property
    def trainable_elements(self) -> int:
        return sum(p.numel for p in self.params if p.after)

    @property
    def trainable_percent(self) -> float:
        total = self.total_elements
        return 100.0 * self.trainable_elements / total if total else 0.0

    @property
    def trainable(self) -> list[str]:
        return [p.name for p in self.params if p.after]

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


def _pct(part: int, total: int) -> float:
    return 100.0 * part / total if total else 0.0


def make_plan(program: ast.Program, model: Any, index: ModelIndex | None = None) -> Plan:
    """Plan ``program`` against ``model`` without changing it."""
    with gc_paused():
        return _make_plan(program, model, index)


def _make_plan(program: ast.Program, model: Any, index: ModelIndex | None) -> Plan:
    index = index or build_index(model)
    ev = Evaluator(index, program.path, program.source)
    n_tensors = len(index.tensors)
    names = index.names
    tensor_of = index.tensor_of
    numel = [t.numel for t in index.tensors]

    rules: list[tuple[int, ast.Rule, int]] = []  # (statement number, rule, name mask)
    module_stmts: list[tuple[int, ast.StatsRule | ast.Convert, list[int]]] = []
    hypers: list[tuple[int, str, list[tuple[int, ast.Factor]]]] = []
    for number, st in enumerate(program.statements, 1):
        if isinstance(st, ast.Rule):
            sel = ev.select(st.selector)
            if sel.mask == 0 and not _all_optional(st.selector):
                raise _empty_statement(ev, st.selector, index)
            rules.append((number, st, sel.mask))
        elif isinstance(st, (ast.StatsRule, ast.Convert)):
            module_stmts.append((number, st, _module_targets(ev, st)))
        elif isinstance(st, (ast.Hyper, ast.HyperDecay)):
            hypers.append((number, st.name, _hyper_targets(ev, st)))

    # Last match wins: walk the rules backwards and give each name to the first
    # (i.e. last in the file) rule that matches it; each name is decided once.
    untied = len(names) == n_tensors
    decided_name: list[int] = [0] * len(names)  # statement number, 0 = undecided
    undecided = index.all_mask
    matched_counts: dict[int, tuple[int, int]] = {}
    for number, _rule, mask in reversed(rules):
        new = mask & undecided
        if new:
            for i in iter_bits(new):
                decided_name[i] = number
            undecided &= ~new
        if untied:  # name index == tensor index: no set needed
            hits = list(iter_bits(mask))
            matched_counts[number] = (len(hits), sum(map(numel.__getitem__, hits)))
        else:
            tset = index.tensor_mask(mask)
            matched_counts[number] = (len(tset), sum(numel[t] for t in tset))

    rule_of = {number: rule for number, rule, _ in rules}
    decided_tensor: list[int] = [0] * n_tensors
    partial_ties: list[str] = []
    ties: list[TieConflict] = []
    for i, number in enumerate(decided_name):
        t = tensor_of[i]
        decided_tensor[t] = max(decided_tensor[t], number)
    # A tied tensor is one parameter: it follows the latest statement matching any of
    # its names. Say so whenever its names were matched differently.
    alias_idx: dict[int, list[int]] = {}
    for i, t in enumerate(tensor_of):
        if len(index.tensors[t].aliases) > 1:
            alias_idx.setdefault(t, []).append(i)
    for t, idxs in alias_idx.items():
        states = {decided_name[i] for i in idxs}
        if len(states) > 1:
            info = index.tensors[t]
            by = ", ".join(
                f"{names[i]} by {_stmt_ref(program, decided_name[i])}" for i in idxs
            )
            final = rule_of[decided_tensor[t]]
            ties.append(
                TieConflict(
                    tuple(names[i] for i in idxs),
                    tuple(decided_name[i] or None for i in idxs),
                    final.requires_grad,
                )
            )
            partial_ties.append(
                f"tied parameter {' = '.join(info.aliases)} is one tensor but its names were "
                f"decided differently ({by}); it follows the last: "
                f"{'trainable' if final.requires_grad else 'frozen'}"
            )

    hyper_of: dict[str, list[ast.Factor | None]] = {
        "lr": [None] * n_tensors,
        "weight_decay": [None] * n_tensors,
    }
    hyper_counts: dict[int, tuple[int, int]] = {}
    for number, hname, targets in hypers:  # in file order: the last match wins
        touched = set()
        for i, factor in targets:
            t = tensor_of[i]
            hyper_of[hname][t] = factor
            touched.add(t)
        hyper_counts[number] = (len(touched), sum(numel[t] for t in touched))

    params: list[ParamDecision] = []
    decided_stats: dict[int, list[int]] = {n: [0, 0] for n, _, _ in rules}
    for t, info in enumerate(index.tensors):
        number = decided_tensor[t]
        after = rule_of[number].requires_grad if number else info.requires_grad
        if after and not info.can_require_grad:
            rule = rule_of[number]
            raise ev.error(
                f"{info.name} has dtype {info.dtype} and cannot be trainable "
                f"(only floating-point and complex tensors can require gradients)",
                rule.span,
                f"exclude it: unfreeze ... except {info.name}",
            )
        if number:
            decided_stats[number][0] += 1
            decided_stats[number][1] += info.numel
        params.append(
            ParamDecision(
                name=info.name,
                aliases=info.aliases,
                shape=info.shape,
                numel=info.numel,
                dtype=info.dtype,
                before=info.requires_grad,
                after=after,
                decided_by=number or None,
                lr=hyper_of["lr"][t],
                weight_decay=hyper_of["weight_decay"][t],
            )
        )

    statements: list[StatementResult] = []
    for number, st in enumerate(program.statements, 1):
        line = st.span.line if st.span else None
        text = format_statement(st)
        if isinstance(st, ast.Rule):
            mt, me = matched_counts[number]
            dt, de = decided_stats[number]
            statements.append(StatementResult(number, line, text, st.action, mt, me, dt, de))
        elif number in hyper_counts:
            ht, he = hyper_counts[number]
            statements.append(StatementResult(number, line, text, st.name, ht, he, 0, 0))  # type: ignore[union-attr]
        elif isinstance(st, (ast.StatsRule, ast.Convert)):
            count = next(len(m) for n, _s, m in module_stmts if n == number)
            kind = "convert" if isinstance(st, ast.Convert) else f"{st.action} stats"
            statements.append(StatementResult(number, line, text, kind, count, 0, 0, 0))
        elif isinstance(st, ast.Scheduled):
            statements.append(StatementResult(number, line, text, "scheduled", 0, 0, 0, 0))
        else:
            statements.append(StatementResult(number, line, text, "expect", 0, 0, 0, 0))

    plan = Plan(
        program=program,
        model_class=index.model_class,
        params=params,
        statements=statements,
        expectations=[],
        warnings=partial_ties,
        wrapper=index.wrapper,
        ties=ties,
        scheduled=sum(1 for st in program.statements if isinstance(st, ast.Scheduled)),
        _objects=index.objects,
        _modules=index.module_objects,
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
    return plan


def _module_targets(ev: Evaluator, st: ast.StatsRule | ast.Convert) -> list[int]:
    """Module indices a stats/convert statement acts on: norm layers in its scope."""
    sel = ev.select(st.selector)
    nodes = ev.index.module_nodes
    if isinstance(st, ast.Convert):
        found = [
            i for i in iter_bits(sel.mmask) if nodes[i].classes[:1] == ("BatchNorm2d",) and nodes[i].running_stats
        ]
        what = "BatchNorm2d module with running statistics"
    else:
        found = [i for i in iter_bits(sel.mmask) if nodes[i].running_stats]
        what = "norm layer with running statistics (BatchNorm, SyncBatchNorm, InstanceNorm(track_running_stats=True))"
    if not found and not _all_optional(st.selector):
        raise ev.error(
            f"{format_selector(st.selector)} contains no {what}",
            st.span,
            "select a scope that holds such layers, or add '?' to allow none",
        )
    return found


def _hyper_targets(ev: Evaluator, st: ast.Hyper | ast.HyperDecay) -> list[tuple[int, ast.Factor]]:
    """(name index, factor) pairs of an `lr` / `weight_decay` statement."""
    sel = ev.select(st.selector)
    if sel.mask == 0 and not _all_optional(st.selector):
        raise _empty_statement(ev, st.selector, ev.index)
    if isinstance(st, ast.Hyper):
        return [(i, st.factor) for i in iter_bits(sel.mask)]
    # Layer-wise decay: the outermost selected modules, in model order, are the layers.
    nodes = ev.index.module_nodes
    layers: list[Node] = []
    end = -1
    for i in iter_bits(sel.mmask):
        if i >= end and nodes[i].end > nodes[i].start:
            layers.append(nodes[i])
            end = nodes[i].mend
    if not layers:
        raise ev.error(
            f"{format_selector(st.selector)} selects no module with parameters to decay over",
            st.span,
            "select the blocks, e.g. encoder.layer[:]",
        )
    out: list[tuple[int, ast.Factor]] = []
    n = len(layers)
    for k, layer in enumerate(layers):
        factor = ast.Factor(st.factor ** (n - k), True)
        out.extend((i, factor) for i in range(layer.start, layer.end) if sel.mask >> i & 1)
    return out


def _module_decisions(
    index: ModelIndex, stmts: list[tuple[int, ast.StatsRule | ast.Convert, list[int]]]
) -> tuple[list[ModuleDecision], list[ModuleDecision]]:
    stats: dict[int, ModuleDecision] = {}
    convert: dict[int, ModuleDecision] = {}
    for number, st, targets in stmts:
        for i in targets:
            node = index.module_nodes[i]
            cls = node.classes[0] if node.classes else "?"
            if isinstance(st, ast.Convert):
                convert[i] = ModuleDecision(node.path, cls, i, True, number)
            else:
                stats[i] = ModuleDecision(node.path, cls, i, st.action == "freeze", number)
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
    tensors = sorted(ev.index.tensor_mask(sel.mask))
    bad = [plan.params[t].name for t in tensors if plan.params[t].after != want]
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        other = "frozen" if want else "trainable"
        detail = f"{len(bad)} of {len(tensors)} selected tensors are {other}: {shown}"
        return ExpectResult(number, line, col, text, False, detail)
    return ExpectResult(number, line, col, text, True, f"all {len(tensors)} selected tensors are {st.state}")
