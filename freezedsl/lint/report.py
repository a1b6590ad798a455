"""What a lint run returns: :class:`LintReport` (the findings after filtering, the files
checked, the errors) and :class:`RunSummary` (how a linted script's run ended).

Why a module of its own: the renderers (:mod:`freezedsl.lint.output`) and the command
line read a report without needing the runner that fills it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from freezedsl.lint.registry import Diagnostic, Severity

__all__ = ["LintReport", "RunSummary"]


@dataclass(frozen=True)
class RunSummary:
    """What happened when the script ran (for the report and the exit code)."""

    script: str
    args: tuple[str, ...]
    exit_code: int | None
    stopped_at_step: bool
    crashed: str | None
    models: tuple[str, ...]
    optimizers: tuple[str, ...]
    timed_out: bool = False  # stopped at --timeout: never described as "finished"
    steps: int = 0  # the --steps asked for; 0: stopped at the first optimizer.step()

    def failure(self) -> str | None:
        """One line if the script failed on its own; ``None`` if it ran fine or we stopped it.

        ``exit_code`` ``None`` means freezedsl stopped it (after ``--steps`` or at the
        timeout, which the runtime checks report as a finding of their own).
        """
        if self.stopped_at_step:
            return None
        if self.crashed:
            return f"{self.script} crashed: {self.crashed}"
        if self.exit_code is not None and self.exit_code != 0:
            return f"{self.script} exited with code {self.exit_code}"
        return None


@dataclass
class LintReport:
    """Findings after filtering, plus what was checked and what went wrong."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    suppressed: int = 0
    errors: list[str] = field(default_factory=list)  # files that could not be checked
    run: RunSummary | None = None
    sources: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def error_count(self) -> int:
        return sum(d.severity is Severity.ERROR for d in self.diagnostics)

    @property
    def warning_count(self) -> int:
        return len(self.diagnostics) - self.error_count

    def statistics(self) -> list[tuple[str, int]]:
        """``(code, count)`` by descending count, then code."""
        counts = Counter(d.code for d in self.diagnostics)
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))

    def exit_code(self, *, exit_zero: bool = False) -> int:
        """2 if a file could not be checked, 1 for findings or a failed script run, else 0.

        ``exit_zero`` silences findings only: a crashed script still fails the run.
        """
        if self.errors:
            return 2
        if self.run is not None and self.run.failure():
            return 1
        if self.diagnostics and not exit_zero:
            return 1
        return 0


def sort_key(d: Diagnostic) -> tuple[Any, ...]:
    """The order of a report's findings: by file (findings without one last), line,
    column, code, object and message."""
    return (
        not d.path,
        d.path,
        d.line is None,
        d.line or 0,
        d.col or 0,
        d.code,
        d.obj or "",
        d.message,
    )
