"""The freezedsl linter: checks for ``.frz`` rule files, training code and live runs.

The public entry points are loaded on first use so that importing any part of
``freezedsl.lint`` stays cheap and never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "LintConfig": "freezedsl.lint.config",
    "load_config": "freezedsl.lint.config",
    "LintReport": "freezedsl.lint.report",
    "lint_paths": "freezedsl.lint.runner",
    "lint_script": "freezedsl.lint.runner",
    "load_rules": "freezedsl.lint.runner",
    "render": "freezedsl.lint.output",
    "check": "freezedsl.lint.runtime",
    "assert_ok": "freezedsl.lint.runtime",
    "FreezeLintError": "freezedsl.lint.runtime",
}

__all__ = [
    "FreezeLintError",
    "LintConfig",
    "LintReport",
    "assert_ok",
    "check",
    "lint_paths",
    "lint_script",
    "load_config",
    "load_rules",
    "render",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
