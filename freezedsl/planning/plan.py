"""Plan: which parameter ends trainable or frozen, and which statement decided it.

Planning reads the model (through a ModelIndex) and never changes it. Statements run
in order and the last one that matches a parameter decides it; parameters no
statement matches keep their current state. ``expect`` statements are checked against
the final state, wherever they stand in the file.

This module is the algorithm (make_plan and the warnings it raises); the records it
returns (Plan, ParamDecision, ...) are in result.py and the targets of stats, convert,
lr, weight_decay and lr decay statements in targets.py. Those names are re-exported
here, so ``from freezedsl.planning.plan import Plan, make_plan`` keeps working.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from freezedsl.gcpause import gc_paused
from freezedsl.planning.containers import type_containers
from freezedsl.planning.index import ModelIndex, bits_mask, build_index, dtype_info, iter_bits
from freezedsl.planning.result import (
    ExpectResult,
    ModuleDecision,
    ParamDecision,
    Plan,
    StatementResult,
    TieConflict,
)
from freezedsl.planning.select import Evaluator, initially_trainable
from freezedsl.planning.targets import (
    all_optional,
    compose,
    convertible,
    decay_layers,
    decay_targets,
    empty_statement,
    hyper_targets,
    module_targets,
)
from freezedsl.syntax import ast
from freezedsl.syntax.printer import format_statement

__all__ = [
    "ExpectResult",
    "ModuleDecision",
    "ParamDecision",
    "Plan",
    "StatementResult",
    "TieConflict",
    "compose",
    "convertible",
    "decay_layers",
    "make_plan",
]


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
            if sel.mask == 0 and not all_optional(st.selector):
                raise empty_statement(ev, st.selector, index)
            rules.append((number, st, sel.mask))
        elif isinstance(st, (ast.StatsRule, ast.Convert)):
            module_stmts.append((number, st, module_targets(ev, st)))
        elif isinstance(st, ast.Hyper):
            hypers.append((number, st.name, hyper_targets(ev, st), False))
        elif isinstance(st, ast.HyperDecay):
            scaled, below = decay_targets(ev, st)
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
    if sel.mask == 0 and not all_optional(st.selector):
        raise empty_statement(ev, st.selector, ev.index)
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
