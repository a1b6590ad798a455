"""The shared analysis of the FZ3xx runtime checks: models, names, FZ003.

Every check family reads one :class:`_Ctx`: the given models unwrapped from DDP/compile
wrappers, display names for their tensors, the optimizers. A model that cannot be read
(a half-built module, a ``parameters()`` that raises) becomes an FZ003 finding here
instead of a crash that would read as a pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn
from torch.nn.parameter import is_lazy
from torch.optim import Optimizer

from freezedsl.lint.registry import Diagnostic, Rule, Severity, diag, register

# Wrapper modules whose child name is noise in a parameter name: torch.compile's
# OptimizedModule, activation checkpointing and FSDP1 units.
_WRAPPER_PARTS = frozenset({"_orig_mod", "_checkpoint_wrapped_module", "_fsdp_wrapped_module"})


class FreezeLintError(AssertionError):
    """Raised by :func:`assert_ok`; ``diagnostics`` holds the findings."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        lines = [f"{len(self.diagnostics)} freeze lint finding(s):"]
        lines += [f"  {d.code} [{d.severity.value}] {d.message}" for d in self.diagnostics]
        super().__init__("\n".join(lines))


# --------------------------------------------------------------------------- context


@dataclass
class _Model:
    """One model as given, its unwrapped root and display names for its tensors."""

    given: nn.Module
    root: nn.Module
    prefix: str  # "" for a single model, "ClassName." when several are checked
    strip: tuple[str, ...]  # leading name parts that belong to DDP/compile wrappers
    params: list[tuple[str, nn.Parameter]] = field(default_factory=list)

    def clean(self, name: str) -> str:
        """Display name for a name relative to ``given``."""
        parts = name.split(".") if name else []
        if parts[: len(self.strip)] == list(self.strip):
            parts = parts[len(self.strip) :]
        parts = [p for p in parts if p not in _WRAPPER_PARTS]
        return self.prefix + ".".join(parts) if parts else self.prefix.rstrip(".") or "<model>"

    def rel(self, name: str) -> str:
        """Display name for a name relative to the unwrapped ``root``."""
        parts = [p for p in (name.split(".") if name else []) if p not in _WRAPPER_PARTS]
        return self.prefix + ".".join(parts) if parts else self.prefix.rstrip(".") or "<model>"


@dataclass
class _Ctx:
    models: list[_Model]
    optimizers: list[Optimizer]
    path: str
    names: dict[int, str] = field(default_factory=dict)
    out: list[Diagnostic] = field(default_factory=list)
    # Run mode: only this optimizer's frozen tensors count for FZ301/FZ302 (the others are
    # checked when they step: CycleGAN freezes D while G's optimizer steps).
    stepping: Optimizer | None = None

    def name(self, p: torch.Tensor, where: str = "") -> str:
        found = self.names.get(id(p))
        if found is not None:
            return found
        shape = "lazy" if _lazy(p) else tuple(p.shape)
        return f"<tensor {shape}{' in ' + where if where else ''}, not in the model>"

    def add(self, rule: Rule, message: str, obj: str | None, **extra: object) -> None:
        self.out.append(diag(rule, message, self.path, obj=obj, extra=dict(extra)))

    def all_params(self) -> Iterator[tuple[str, nn.Parameter]]:
        for m in self.models:
            yield from m.params


def _unwrap(module: nn.Module) -> tuple[nn.Module, tuple[str, ...]]:
    """Peel DDP, DataParallel and torch.compile wrappers; return the model and their names."""
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    parts: list[str] = []
    while True:
        if isinstance(module, (DistributedDataParallel, DataParallel)):
            parts.append("module")
            module = cast(nn.Module, module.module)
        elif type(module).__name__ == "OptimizedModule" and isinstance(
            getattr(module, "_orig_mod", None), nn.Module
        ):
            parts.append("_orig_mod")
            module = cast(nn.Module, module._orig_mod)
        else:
            return module, tuple(parts)


def _as_list(x: Any) -> list[Any]:
    if x is None:
        return []
    if isinstance(x, (nn.Module, Optimizer)):
        return [x]
    return list(x)


def built(module: object) -> bool:
    """Whether ``nn.Module.__init__`` ran: a half-built module has no ``_parameters``.

    A model whose ``__init__`` raised before ``super().__init__()`` can stay alive (in
    a traceback, in ``gc``); touching its parameters raises ``AttributeError``.
    """
    return isinstance(getattr(module, "__dict__", None), dict) and all(
        k in module.__dict__ for k in ("_parameters", "_modules", "_buffers")
    )


def _context(
    models: Sequence[nn.Module], optimizers: Sequence[Optimizer], path: str
) -> tuple[_Ctx, list[Diagnostic]]:
    """The shared analysis; a model that cannot be read becomes an FZ003 finding."""
    failed: list[Diagnostic] = []
    readable: list[tuple[nn.Module, list[tuple[str, nn.Parameter]]]] = []
    for m in models:
        try:
            if not built(m):
                raise RuntimeError(
                    f"{type(m).__name__} is half-built (its __init__ did not call "
                    "nn.Module.__init__)"
                )
            readable.append((m, list(m.named_parameters())))
        except Exception as exc:  # noqa: BLE001 - reported as FZ003, never a silent pass
            failed.append(
                _failed("reading the model's parameters", exc, path, obj=type(m).__name__)
            )
    labels: list[str] = []
    for m, _ in readable:
        base = type(_unwrap(m)[0]).__name__
        label = base if base not in labels else f"{base}{len(labels)}"
        labels.append(label)
    ctx = _Ctx([], list(optimizers), path)
    for (m, named), label in zip(readable, labels):
        root, strip = _unwrap(m)
        view = _Model(m, root, f"{label}." if len(readable) > 1 else "", strip)
        view.params = [(view.clean(n), p) for n, p in named]
        for n, p in view.params:
            ctx.names.setdefault(id(p), n)
        ctx.models.append(view)
    return ctx, failed


CHECK_FAILED = register(
    Rule(
        "FZ003",
        "check-failed",
        Severity.ERROR,
        "A runtime check could not run; its part of the report is missing, not clean.",
        what="""
Reported when one of the FZ3xx checks of a live model and optimizer raised an error
instead of finishing: a model whose ``parameters()`` raises, a half-built module (its
``__init__`` failed before ``nn.Module.__init__``), an optimizer with a malformed
``param_groups``. The message names the check that did not run and the error. The
other checks still run and report their findings.
""",
        why="""
A check that crashed has looked at nothing. Printing "All checks passed" (exit 0) for
it would be a silent pass: the mistake it exists to find could be right there.
""",
        example="""
$ freezedsl lint train.py   # the model's parameters() raises
train.py: FZ003 check 'frozen-param-in-optimizer' did not run: RuntimeError: ...
""",
        use_instead="""
$ freezedsl lint train.py   # fix the model (or report the freezedsl bug) and rerun
All checks passed.
""",
    )
)


def _failed(what: str, exc: BaseException, path: str, obj: str | None = None) -> Diagnostic:
    """FZ003 for a check (or the analysis it needs) that raised ``exc``."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    why = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return diag(
        CHECK_FAILED,
        f"{what} did not run: {why}; its findings are missing from this report",
        path,
        obj=obj,
        extra={"check": what, "error": why},
    )


def _lazy(t: torch.Tensor) -> bool:
    """An uninitialized (Lazy*) parameter: it has no shape or values yet."""
    return bool(is_lazy(t))


def _numel(t: torch.Tensor) -> int:
    return 0 if _lazy(t) else t.numel()


def _nonzero(t: object) -> bool:
    return isinstance(t, torch.Tensor) and _numel(t) > 0 and bool(t.detach().ne(0).any())
