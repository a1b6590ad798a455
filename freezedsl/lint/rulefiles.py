"""Lint checks for rule files (``.frz``): family FZ0xx/FZ1xx.

Model-free checks run on the AST alone (``freezedsl check`` and ``lint`` without a
model; no torch). With a model (``lint --model SPEC``) the program is also planned
against the real architecture. Planning stops at the first selection error, so here
each statement is evaluated on its own and the faulty ones are set aside; every
problem in a file is reported in one run.
"""

from __future__ import annotations

import re
from typing import Any

from freezedsl.errors import FreezeError, SelectionError
from freezedsl.lint.registry import Diagnostic, Rule, Severity, diag, register
from freezedsl.syntax import ast
from freezedsl.syntax.parser import parse
from freezedsl.syntax.printer import format_statement

SYNTAX = register(
    Rule(
        code="FZ001",
        name="rule-syntax-error",
        severity=Severity.ERROR,
        summary="The rule file does not parse.",
        what="Reports a rule file that is not valid freezedsl syntax, at the line and column where parsing stopped.",
        why="A rule file that does not parse cannot be applied; the training script using it fails at start-up, "
        "or worse, someone works around it by hand.",
        example='freeze layer1 unfreeze fc      # two statements on one line without ";"',
        use_instead="freeze layer1; unfreeze fc",
    )
)

UNANCHORED = register(
    Rule(
        code="FZ101",
        name="unanchored-name-regex",
        severity=Severity.WARNING,
        summary="A name regex ends with a digit and no boundary, so it also matches sibling names.",
        what='Flags `name~"..."` patterns whose last element is a digit or a digit class (`1`, `[12]`, `\\d`) '
        "with nothing after it that ends the name segment (`\\.`, `$`, `\\b`, `(?!\\d)`).",
        why='`name~"layer1"` is a substring test: it also matches `layer10`, `layer11`, ... and '
        "`blocks.1` also matches `blocks.10`. Models with ten or more blocks get the wrong layers frozen, silently.",
        example='freeze name~"layer[12]"',
        use_instead='freeze name~"^layer[12]\\."     # or a path: freeze layer1, layer2',
    )
)

REGEX_BUDGET = register(
    Rule(
        code="FZ004",
        name="regex-budget-exceeded",
        severity=Severity.ERROR,
        summary="Matching the file's regexes against the model took longer than the regex time budget.",
        what="With `--model`, reports the `name~`/`type~` regex at which all regex matching of the file "
        "(every pass of the model checks together) used up `FREEZEDSL_REGEX_TIMEOUT` seconds (default 2).",
        why="A regex that backtracks on names that almost match can take exponential time; `plan` and "
        "`apply` stop the same file with an error, so it must not pass lint.",
        example='freeze name~"(a|a)*$"',
        use_instead='freeze name~"a*$"',
    )
)

NOTHING = register(
    Rule(
        code="FZ110",
        name="selector-matches-nothing",
        severity=Severity.ERROR,
        summary="A selector matches nothing in the given model.",
        what="With `--model`, reports every selector (path, regex, type, slice) that matches no module or "
        "parameter of the model and is not marked optional with `?`.",
        why="A typo must never freeze nothing silently: `freeze layr4` would leave layer4 training.",
        example="freeze layr4",
        use_instead="freeze layer4        # or `freeze layer4?` when it may legitimately be absent",
    )
)

OVERRIDDEN = register(
    Rule(
        code="FZ111",
        name="statement-overridden",
        severity=Severity.WARNING,
        summary="A statement decides no parameter: later statements override all of it.",
        what="With `--model`, reports a freeze/unfreeze statement whose every matched parameter is matched "
        "again by a later statement, so it has no effect (the last matching statement decides).",
        why="Dead statements mislead readers about what trains, and usually mean the order is wrong, "
        "e.g. a new head unfrozen before a later freeze-everything.",
        example="unfreeze fc\nfreeze all",
        use_instead="freeze all\nunfreeze fc",
    )
)

NOOP_UNFREEZE = register(
    Rule(
        code="FZ112",
        name="unfreeze-of-unfrozen",
        severity=Severity.WARNING,
        summary="An unfreeze changes nothing: no earlier statement froze what it selects.",
        what="With `--model`, reports an `unfreeze` whose parameters are all already trainable at that point "
        "(nothing earlier froze them and the model does not start with them frozen).",
        why="It does nothing, which usually means the freeze it was meant to undo is missing or comes later.",
        example="unfreeze fc\nfreeze layer1",
        use_instead="freeze all\nunfreeze fc",
    )
)

TIED = register(
    Rule(
        code="FZ113",
        name="tied-parameter-split",
        severity=Severity.WARNING,
        summary="Names of one tied (shared) tensor are decided by different statements.",
        what="With `--model`, reports a shared parameter (e.g. a language model's input embedding and output "
        "head) whose names are matched by different statements, so one of them loses silently.",
        why="A tied tensor has one requires_grad. `freeze transformer.wte; unfreeze lm_head` trains the "
        "embedding too, which the author of the first line did not intend.",
        example="freeze transformer.wte\nunfreeze lm_head        # lm_head.weight is transformer.wte.weight",
        use_instead="freeze transformer.wte, lm_head   # decide the tied pair together",
    )
)

SIBLINGS = register(
    Rule(
        code="FZ114",
        name="regex-matches-inside-segment",
        severity=Severity.WARNING,
        summary="A name regex matches in the middle of a name segment of the model.",
        what="With `--model`, reports a `name~` regex that matches some parameter name only by ending inside a "
        "segment (`layer1` matching `layer10.0.weight`).",
        why="That is the substring trap for real: the rule selects sibling layers its author did not mean.",
        example='freeze name~"blocks.1"        # also blocks.10 ... blocks.19',
        use_instead='freeze blocks[1]              # or name~"^blocks\\.1\\."',
    )
)

EXPECT_FAILS = register(
    Rule(
        code="FZ115",
        name="expectation-fails",
        severity=Severity.ERROR,
        summary="An `expect` statement fails on the given model.",
        what="With `--model`, plans the file against the model and reports each failing `expect`.",
        why="`apply` would refuse this model; catching it in lint gives the reason before a training job starts.",
        example="freeze all\nexpect trainable fc",
        use_instead="freeze all\nunfreeze fc\nexpect trainable fc",
    )
)

TYPE_CONTAINER = register(
    Rule(
        code="FZ116",
        name="type-selector-matches-containers",
        severity=Severity.WARNING,
        summary="A `type=` / `type~` selector matches layers and also blocks that contain other layers.",
        what="With `--model`, reports a `type=` or `type~` selector that matches modules owning parameters "
        "(layers) and also container modules whose subtree holds other parameterised layers the selector "
        "does not match, such as `type~\"Norm\"` matching torchvision's `Conv2dNormActivation` or timm's "
        "`ConvNormAct` next to the `BatchNorm2d` layers. A selector that matches only containers "
        "(`type=Bottleneck`) selects whole blocks on purpose and is not reported, nor is `type=norm`.",
        why="A selected module means all of its parameters: `freeze all except type~\"Norm\"` keeps the "
        "convolutions inside every Conv2dNormActivation training (64% of efficientnet_b0, where the norm "
        "layers hold 0.8%).",
        example='freeze all except type~"Norm"',
        use_instead="freeze all except type=norm",
    )
)

REENABLED = register(
    Rule(
        code="FZ117",
        name="unfreeze-all-reenables-initially-frozen",
        severity=Severity.WARNING,
        summary="`unfreeze all` makes trainable a parameter the model's library froze on purpose.",
        what="With `--model`, reports an `unfreeze` whose selector includes `all` and that ends up training "
        "parameters which were frozen before any rule changed them (`initially frozen`), such as Whisper's "
        "fixed sinusoidal `embed_positions`, unless a statement names them.",
        why="A library freezes such tensors because training them is wrong (fixed position tables, "
        "buffers kept as parameters); `unfreeze all` undoes that silently.",
        example="freeze all\nunfreeze all",
        use_instead="freeze all\nunfreeze all except initially frozen",
    )
)


# ------------------------------------------------------------------ model-free checks

_DIGIT_END = re.compile(r"(\d|\[[0-9\-]+\]|\\d)([+*?]|\{\d*,?\d*\})?\)*\Z")


def _unanchored(pattern: str) -> bool:
    return bool(_DIGIT_END.search(pattern))


def _name_regexes(program: ast.Program) -> list[ast.NameRegex]:
    found: list[ast.NameRegex] = []
    for st in program.statements:
        inner = st.statement if isinstance(st, ast.Scheduled) else st  # `at` ones too: checked now
        sel = getattr(inner, "selector", None)
        if sel is None:
            continue
        for atom, _opt, _excl in ast.atoms(sel):
            if isinstance(atom, ast.NameRegex):
                found.append(atom)
    return found


def _at(path: str, node: Any) -> dict[str, Any]:
    span = getattr(node, "span", None)
    return {"line": span.line if span else None, "col": span.col if span else None}


def check_program(program: ast.Program) -> list[Diagnostic]:
    """Model-free checks (no torch)."""
    path = program.path or "<rules>"
    out: list[Diagnostic] = []
    for atom in _name_regexes(program):
        if _unanchored(atom.pattern):
            out.append(
                diag(
                    UNANCHORED,
                    f'name~"{atom.pattern}" can end inside a name segment, so it also matches siblings '
                    f"such as {_sibling_example(atom.pattern)}; end it with \\. or $, or use a path",
                    path,
                    **_at(path, atom),
                )
            )
    return out


def _sibling_example(pattern: str) -> str:
    """A name the pattern also matches: its final digit followed by a 0 (layer1 -> layer10)."""
    m = _DIGIT_END.search(pattern)
    if m is None:
        return "layer10"
    elem = m.group(1)
    digit = elem if elem.isdigit() else (elem[1] if elem.startswith("[") else "1")
    head = re.sub(r"\\(.)", r"\1", pattern[: m.start()]).lstrip("^")
    return head[-24:] + digit + "0"


# ------------------------------------------------------------------ with a model


def check_source(path: str, text: str, model: Any | None = None) -> list[Diagnostic]:
    """All rule-file checks for one file; never raises for bad user input."""
    try:
        program = parse(text, path=path)
    except FreezeError as err:
        return [
            diag(
                SYNTAX,
                err.message + (f"; {err.hint}" if err.hint else ""),
                path,
                line=err.line or 1,
                col=err.col or 1,
            )
        ]
    out = check_program(program)
    if model is not None:
        out.extend(check_with_model(program, model))
    return sorted(out, key=lambda d: (d.line or 0, d.col or 0, d.code))


def check_with_model(program: ast.Program, model: Any) -> list[Diagnostic]:
    """The model checks, every pass sharing one regex time budget for the file.

    Running out of it is FZ004 at the regex where it happened; the findings made until
    then are kept and the rest of the model checks are skipped.
    """
    from freezedsl.planning.rx import shared_budget
    from freezedsl.planning.select import RegexBudgetError

    out: list[Diagnostic] = []
    with shared_budget():
        try:
            _check_with_model(program, model, out)
        except RegexBudgetError as err:
            out.append(
                diag(
                    REGEX_BUDGET,
                    err.message + (f"; {err.hint}" if err.hint else "")
                    + "; the remaining model checks were skipped",
                    program.path or "<rules>",
                    line=err.line,
                    col=err.col,
                )
            )
    return out


def _phase_errors(program: ast.Program, model: Any, index: Any, path: str, out: list[Diagnostic]) -> bool:
    """Plan the rules in force at each `at` phase, as ``freezedsl.Schedule`` will: a
    scheduled statement that does not fit the model (an ``except`` that removes
    everything, say) is reported now, not when its epoch comes. True if one failed."""
    from freezedsl.api import Rules
    from freezedsl.planning.plan import make_plan
    from freezedsl.planning.select import RegexBudgetError

    rules = Rules(program)
    unit = rules.schedule_unit
    for time in rules.phases():
        phase = rules.at(epoch=time) if unit == "epoch" else rules.at(step=time)
        try:
            make_plan(phase.program, model, index=index)
        except RegexBudgetError:
            raise
        except SelectionError as err:
            hint = f"; {err.hint}" if err.hint else ""
            out.append(diag(NOTHING, err.message + hint, path, line=err.line, col=err.col))
            return True
    return False


def _check_with_model(program: ast.Program, model: Any, out: list[Diagnostic]) -> None:
    from freezedsl.planning.index import build_index
    from freezedsl.planning.plan import make_plan
    from freezedsl.planning.rx import RegexTimeout, file_budget, matcher
    from freezedsl.planning.select import Evaluator, RegexBudgetError

    path = program.path or "<rules>"
    index = build_index(model)
    ev = Evaluator(index, program.path, program.source)
    kept: list[ast.Statement] = []
    masks: dict[int, int] = {}
    for st in program.statements:
        sel = getattr(st, "selector", None)
        if sel is None:
            kept.append(st)
            continue
        problem = None
        for atom, opt, _excl in ast.atoms(sel):
            try:
                ev.select(atom, opt)
            except RegexBudgetError:
                raise
            except SelectionError as err:
                problem = err
                out.append(
                    diag(
                        NOTHING,
                        err.message + (f"; {err.hint}" if err.hint else ""),
                        path,
                        line=err.line,
                        col=err.col,
                    )
                )
        if problem is None:
            try:
                masks[id(st)] = ev.select(sel).mask
            except RegexBudgetError:
                raise
            except SelectionError as err:  # e.g. an `except` part that removes nothing
                out.append(
                    diag(NOTHING, err.message + (f"; {err.hint}" if err.hint else ""), path, line=err.line, col=err.col)
                )
                continue
            kept.append(st)
    reduced = ast.Program(
        tuple(kept), program.trailing_comments, path=program.path, source=program.source
    )
    try:
        plan = make_plan(reduced, model, index=index)
    except RegexBudgetError:
        raise
    except SelectionError as err:
        out.append(diag(NOTHING, err.message, path, line=err.line, col=err.col))
        return
    if _phase_errors(reduced, model, index, path, out):
        return
    out.extend(_adapter_findings(model, index, plan, path))

    # FZ111 / FZ112: walk the rules in order with the running state per tensor.
    state = list(index.requires_grad)
    decided = {r.number: r.decided_tensors for r in plan.statements}
    for number, st in enumerate(reduced.statements, 1):
        if not isinstance(st, ast.Rule):
            continue
        mask = masks[id(st)]
        tensors = index.tensor_mask(mask)
        if tensors and decided.get(number, 0) == 0:
            out.append(
                diag(
                    OVERRIDDEN,
                    f"'{format_statement(st)}' decides no parameter: later statements match all "
                    f"{len(tensors)} tensors it selects; move it after them or remove it",
                    path,
                    **_at(path, st),
                )
            )
        if st.action == "unfreeze" and tensors and all(state[t] for t in tensors):
            out.append(
                diag(
                    NOOP_UNFREEZE,
                    f"'{format_statement(st)}' changes nothing: the {len(tensors)} tensors it selects are "
                    "already trainable here; freeze first (freeze all) or drop it",
                    path,
                    **_at(path, st),
                )
            )
        for t in tensors:
            state[t] = st.requires_grad

    for tie in plan.ties:
        who = ", ".join(
            f"{name} by line {_line_of(reduced, n)}" if n else f"{name} by no statement"
            for name, n in zip(tie.aliases, tie.deciders)
        )
        first = next((n for n in tie.deciders if n), None)
        node = reduced.statements[first - 1] if first else None
        out.append(
            diag(
                TIED,
                f"tied parameter {' = '.join(tie.aliases)} is one tensor but is decided differently ({who}); "
                f"it ends {'trainable' if tie.final else 'frozen'}; select all its names in one statement",
                path,
                obj=tie.aliases[0],
                **(_at(path, node) if node else {}),
            )
        )

    for rule, message in plan.reenabled:
        out.append(diag(REENABLED, message, path, **_at(path, rule)))

    for mixed in plan.type_containers:
        out.append(diag(TYPE_CONTAINER, f"{mixed.message}; {mixed.hint}", path, **_at(path, mixed.atom)))

    spent = file_budget()  # the shared budget of check_with_model
    for atom in _name_regexes(reduced):
        names = index.names
        try:
            found = matcher(atom.pattern).matches(names, spent)
        except RegexTimeout:
            raise ev.regex_timeout(atom, "names") from None
        inside = []
        for i, m in found:
            name = names[i]
            if (
                m.end() < len(name)
                and name[m.end()] != "."
                and m.end() > 0
                and name[m.end() - 1] != "."
            ):
                inside.append(name)
        if inside:
            out.append(
                diag(
                    SIBLINGS,
                    f'name~"{atom.pattern}" matches inside a name segment of {len(inside)} parameters, '
                    f"e.g. {inside[0]}; anchor it with \\. or $, or use a path",
                    path,
                    **_at(path, atom),
                )
            )

    for e in plan.expectations:
        if not e.ok:
            out.append(
                diag(
                    EXPECT_FAILS,
                    f"{e.text} fails on {index.model_class}: {e.detail}",
                    path,
                    line=e.line,
                    col=e.col,
                )
            )


def _adapter_findings(model: Any, index: Any, plan: Any, path: str) -> list[Diagnostic]:
    """FZ350/FZ351 on the state the rules would leave (a PeftModel given as --model)."""
    from freezedsl.lint.peft_checks import check_adapters

    after = {id(obj): p.after for obj, p in zip(index.objects, plan.params)}
    return check_adapters(model, path=path, requires_grad=lambda t: after.get(id(t), bool(t.requires_grad)))


def _line_of(program: ast.Program, number: int) -> str:
    st = program.statements[number - 1]
    return str(st.span.line) if st.span else "?"
