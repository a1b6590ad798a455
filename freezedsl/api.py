"""The public API: compile rules once, plan and apply them to many models."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Union

from freezedsl.syntax import ast
from freezedsl.syntax.parser import parse, parse_file
from freezedsl.syntax.printer import format_program

RulesLike = Union["Rules", str, "os.PathLike[str]"]


class Rules:
    """A compiled rule program. Cheap to keep; ``plan``/``apply`` take any nn.Module."""

    def __init__(self, program: ast.Program) -> None:
        self.program = program

    @property
    def path(self) -> str | None:
        return self.program.path

    @property
    def text(self) -> str:
        return self.program.source if self.program.source is not None else format_program(self.program)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def plan(self, model: Any) -> Any:
        """What ``apply`` would do, without changing ``model``. Returns a Plan."""
        from freezedsl.planning.plan import make_plan

        plan = make_plan(self.program, model)
        plan.cost_checks = (_expensive_freeze,)  # Plan.cost's findings
        return plan

    def apply(self, model: Any) -> Any:
        """Plan, check every ``expect``, then set ``requires_grad`` atomically. Returns the Plan."""
        from freezedsl.application import apply_plan
        from freezedsl.gcpause import gc_paused

        with gc_paused():  # one pause for index, plan and apply (see build_index)
            return apply_plan(self.plan(model), fresh=True)

    def format(self) -> str:
        return format_program(self.program)

    @property
    def schedule_unit(self) -> str | None:
        """'epoch' or 'step' when the program has `at` statements, else None."""
        units = {st.unit for st in self.program.scheduled}
        if len(units) > 1:
            from freezedsl.errors import RuleSyntaxError

            st = next(s for s in self.program.scheduled if s.unit == "step")
            raise RuleSyntaxError(
                "a rule file schedules by epoch or by step, not both; use one unit for every 'at'",
                path=self.path,
                line=st.span.line if st.span else None,
                col=st.span.col if st.span else None,
            )
        return units.pop() if units else None

    def at(self, epoch: int | None = None, step: int | None = None) -> Rules:
        """The program in force at ``epoch`` (or ``step``): statements without `at`, then
        every `at` statement whose time has come, in time order (file order for ties).

        The result depends only on the time, so a resumed run lands in the right phase.
        """
        unit = self.schedule_unit
        now = epoch if unit == "epoch" else step
        base = [st for st in self.program.statements if not isinstance(st, ast.Scheduled)]
        due: list[tuple[int, int, ast.Statement]] = []
        if unit is not None and now is not None:
            for pos, st in enumerate(self.program.scheduled):
                if st.at <= now:
                    due.append((st.at, pos, st.statement))
        due.sort(key=lambda item: (item[0], item[1]))
        program = ast.Program(
            tuple(base) + tuple(st for _, _, st in due),
            path=self.program.path,
            source=self.program.source,
        )
        return Rules(program)

    def phases(self) -> list[int]:
        """The distinct times (epochs or steps) at which a scheduled statement starts."""
        return sorted({st.at for st in self.program.scheduled})

    def __repr__(self) -> str:
        where = self.path or "<string>"
        return f"<freezedsl.Rules {where}: {len(self.program.statements)} statements>"


def load(path: str | os.PathLike[str]) -> Rules:
    """Read and compile a rule file."""
    return Rules(parse_file(path))


def compile(text: str, path: str | None = None) -> Rules:
    """Compile rule text (``"freeze all; unfreeze fc"``)."""
    return Rules(parse(text, path=path))


def rules_from(rules: RulesLike) -> Rules:
    """Accept a Rules object, a path (str or PathLike) to a rule file, or rule text.

    A ``str`` is read as a path when it is one word (no spaces) that names an existing
    file or folder or ends in ``.frz``; otherwise it is rule text (``"freeze all"``).
    """
    if isinstance(rules, Rules):
        return rules
    if isinstance(rules, ast.Program):
        return Rules(rules)
    if isinstance(rules, os.PathLike):
        return load(rules)
    if isinstance(rules, str):
        if _names_a_file(rules):
            return load(rules)
        return compile(rules)
    raise TypeError(f"rules must be a Rules object, a path or rule text, not {type(rules).__name__}")


def _names_a_file(text: str) -> bool:
    """A one-word string is a path when it exists or ends in .frz; rule text has spaces."""
    if "\n" in text or ";" in text or len(text) > 4096:
        return False
    word = text.strip()
    if not word or any(ch.isspace() for ch in word):
        return False
    if word.endswith(".frz"):
        return True
    try:
        return Path(word).exists()
    except (OSError, ValueError):
        return False


def plan(model: Any, rules: RulesLike) -> Any:
    """Plan ``rules`` against ``model`` (no change). Returns a Plan."""
    return rules_from(rules).plan(model)


def apply(model: Any, rules: RulesLike) -> Any:
    """Apply ``rules`` to ``model`` atomically; raises on a failed ``expect``. Returns the Plan."""
    return rules_from(rules).apply(model)


def cost(
    model: Any, rules: RulesLike, example_inputs: Any, *, dtype: str | None = None, optimizer: str | None = None
) -> Any:
    """``freezedsl.cost(model, rules, inputs)``: ``freezedsl.plan(model, rules).cost(inputs)``.

    Returns a :class:`freezedsl.planning.cost.CostEstimate` whose ``findings`` hold FZ340.
    """
    from freezedsl.planning.cost import estimate_cost

    planned = plan(model, rules)
    return estimate_cost(
        planned, model, example_inputs, dtype=dtype, optimizer=optimizer, checks=planned.cost_checks
    )


def _expensive_freeze(plan: Any, model: Any, estimate: Any, **options: Any) -> list[Any]:
    """FZ340 on a cost estimate. Wired here: planning must not import the linter."""
    from freezedsl.lint.cost import check_expensive_freeze

    return check_expensive_freeze(plan, model, estimate, **options)


def format(text: str) -> str:
    """The canonical form of rule text."""
    return format_program(parse(text))
