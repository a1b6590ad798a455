"""One registry of lint codes, shared by every check family.

Codes are declared next to the logic that emits them (``register(Rule(...))`` at module
level of the family's module) and documented as What it does / Why is this bad /
Example / Use instead, printed by ``freezedsl rule CODE``. Families:

* ``FZ0xx`` syntax and input problems that stop a file from being checked,
* ``FZ1xx`` rule files (``.frz``),
* ``FZ2xx`` static checks of Python training code,
* ``FZ3xx`` runtime checks of a live model and optimizer.

A code is never reused for a different meaning. This module must not import torch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Rule:
    code: str
    name: str  # kebab-case, e.g. "frozen-param-in-optimizer"
    severity: Severity
    summary: str  # one line
    what: str
    why: str
    example: str
    use_instead: str

    def doc(self) -> str:
        return (
            f"{self.code} ({self.name}) [{self.severity.value}]\n\n{self.summary}\n\n"
            f"## What it does\n{self.what.strip()}\n\n"
            f"## Why is this bad?\n{self.why.strip()}\n\n"
            f"## Example\n{self.example.rstrip()}\n\n"
            f"## Use instead\n{self.use_instead.rstrip()}\n"
        )


@dataclass(frozen=True)
class Diagnostic:
    """One finding. ``line``/``col`` are 1-based; ``obj`` names a parameter or module."""

    code: str
    message: str
    path: str
    line: int | None = None
    col: int | None = None
    obj: str | None = None
    severity: Severity = Severity.WARNING
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    def location(self) -> str:
        loc = self.path
        if self.line is not None:
            loc += f":{self.line}:{self.col or 1}"
        return loc

    def format(self) -> str:
        return f"{self.location()}: {self.code} {self.message}"


RULES: dict[str, Rule] = {}


def register(rule: Rule) -> Rule:
    if rule.code in RULES:
        raise RuntimeError(f"lint code {rule.code} registered twice")
    RULES[rule.code] = rule
    return rule


def diag(rule: Rule, message: str, path: str, **kw: object) -> Diagnostic:
    """Build a Diagnostic with the rule's code and default severity."""
    return Diagnostic(rule.code, message, path, severity=rule.severity, **kw)  # type: ignore[arg-type]
