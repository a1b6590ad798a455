"""freezedsl: say which parameters of a PyTorch model train, in a small rule language.

    import freezedsl
    rules = freezedsl.load("rules/resnet.frz")   # compile once
    plan = rules.apply(model)                    # atomic; returns the Plan
    print(plan)                                  # which statement decided each parameter

Importing freezedsl does not import torch; only planning against a model does.
"""

from freezedsl.api import Rules, apply, compile, format, load, plan, rules_from
from freezedsl.errors import (
    ExpectationError,
    FreezeError,
    ModelLoadError,
    RuleSyntaxError,
    SelectionError,
    UsageError,
)

__version__ = "0.1.0"

__all__ = [
    "ExpectationError",
    "FreezeError",
    "ModelLoadError",
    "RuleSyntaxError",
    "Rules",
    "SelectionError",
    "UsageError",
    "__version__",
    "apply",
    "compile",
    "format",
    "load",
    "plan",
    "rules_from",
]
