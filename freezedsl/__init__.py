"""freezedsl: say which parameters of a PyTorch model train, in a small rule language.

    import freezedsl
    rules = freezedsl.load("rules/resnet.frz")   # compile once
    plan = rules.apply(model)                    # atomic; returns the Plan
    print(plan)                                  # which statement decided each parameter

Importing freezedsl does not import torch; only planning against a model does.
"""

from typing import TYPE_CHECKING, Any

from freezedsl.api import Rules, apply, compile, format, load, plan, rules_from
from freezedsl.errors import (
    ExpectationError,
    FreezeError,
    ModelLoadError,
    RuleSyntaxError,
    SelectionError,
    UsageError,
)

if TYPE_CHECKING:
    from freezedsl.pipeline import Schedule, param_groups

__version__ = "0.1.0"

_LAZY = {"Schedule": "freezedsl.pipeline", "param_groups": "freezedsl.pipeline"}


def __getattr__(name: str) -> Any:
    """Training-pipeline helpers load on first use, keeping ``import freezedsl`` light."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'freezedsl' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

__all__ = [
    "ExpectationError",
    "FreezeError",
    "ModelLoadError",
    "RuleSyntaxError",
    "Rules",
    "Schedule",
    "SelectionError",
    "UsageError",
    "__version__",
    "apply",
    "compile",
    "format",
    "load",
    "param_groups",
    "plan",
    "rules_from",
]
