"""freezedsl: say which parameters of a PyTorch model train, in a small rule language.

    import freezedsl
    rules = freezedsl.load("rules/resnet.frz")   # compile once
    plan = rules.apply(model)                    # atomic; returns the Plan
    print(plan)                                  # which statement decided each parameter

Importing freezedsl does not import torch; only planning against a model does.
"""

from __future__ import annotations

from freezedsl.errors import (
    ExpectationError,
    FreezeError,
    ModelLoadError,
    RuleSyntaxError,
    SelectionError,
    UsageError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from freezedsl import lint as lint
    from freezedsl.api import Rules, apply, compile, cost, format, load, plan, rules_from
    from freezedsl.manifest import restore_freeze
    from freezedsl.pipeline.groups import param_groups
    from freezedsl.pipeline.schedule import Schedule

__version__ = "0.1.0"

_LAZY = {
    "Rules": "freezedsl.api",
    "apply": "freezedsl.api",
    "compile": "freezedsl.api",
    "format": "freezedsl.api",
    "load": "freezedsl.api",
    "plan": "freezedsl.api",
    "rules_from": "freezedsl.api",
    "Schedule": "freezedsl.pipeline.schedule",
    "cost": "freezedsl.api",
    "param_groups": "freezedsl.pipeline.groups",
    "restore_freeze": "freezedsl.manifest",
}
# Subpackages reachable as attributes after a plain `import freezedsl` (imported on first
# use: `freezedsl.lint.assert_ok(...)` works without `import freezedsl.lint`).
_SUBMODULES = ("api", "syntax", "lint")


def __getattr__(name: str) -> Any:
    """The API loads on first use, keeping ``import freezedsl`` (and the CLI's start) light."""
    import importlib

    if name in _SUBMODULES:
        return importlib.import_module(f"freezedsl.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'freezedsl' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        from freezedsl.errors import is_missing_torch, torch_needed

        if not is_missing_torch(exc):
            raise
        # torch is the optional ``freezedsl[torch]`` extra: say so instead of a bare
        # "No module named 'torch'" from deep inside freezedsl
        raise ModuleNotFoundError(torch_needed(f"freezedsl.{name}"), name="torch") from exc
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
    "cost",
    "format",
    "load",
    "param_groups",
    "plan",
    "restore_freeze",
    "rules_from",
]
