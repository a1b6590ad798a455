"""Application: the only place that changes a model.

It sets ``requires_grad`` and nothing else: parameter values, buffers, modules and
hooks are untouched. It is atomic: expectations are checked first, and if setting any
flag fails (an exception, a KeyboardInterrupt), every flag already set is restored
before the error propagates.
"""

from __future__ import annotations

from freezedsl.errors import ExpectationError, UsageError
from freezedsl.planning.plan import Plan


def check_expectations(plan: Plan) -> None:
    failed = [e for e in plan.expectations if not e.ok]
    if not failed:
        return
    first = failed[0]
    lines = plan.program.source.splitlines() if plan.program.source else []
    src = lines[first.line - 1] if first.line and 0 < first.line <= len(lines) else None
    err = ExpectationError(
        f"{first.text} failed: {first.detail}; nothing was applied",
        path=plan.program.path,
        line=first.line,
        col=first.col,
        source_line=src,
    )
    err.failures = [  # type: ignore[attr-defined]
        ExpectationError(
            f"{e.text} failed: {e.detail}; nothing was applied", path=plan.program.path, line=e.line, col=e.col
        )
        for e in failed
    ]
    raise err


def apply_plan(plan: Plan) -> Plan:
    """Set ``requires_grad`` as planned, all or nothing."""
    check_expectations(plan)
    objects = plan._objects
    if len(objects) != len(plan.params):
        raise UsageError("this plan holds no model; build it with freezedsl.plan(model, rules)")
    todo = []
    for obj, p in zip(objects, plan.params):
        if bool(obj.requires_grad) != p.before:
            raise UsageError(
                f"{p.name} changed since the plan was made (requires_grad is now {bool(obj.requires_grad)}); "
                "plan again before applying"
            )
        if p.before != p.after:
            todo.append((obj, p.after))
    done: list[tuple[object, bool]] = []
    try:
        for obj, want in todo:
            _set(obj, want)
            done.append((obj, not want))
    except BaseException:
        for obj, old in reversed(done):
            obj.requires_grad_(old)  # type: ignore[attr-defined]
        raise
    return plan


def _set(obj: object, want: bool) -> None:
    """One flag change; a separate function so fault-injection tests can patch it."""
    obj.requires_grad_(want)  # type: ignore[attr-defined]
