"""One finding per mistake: runtime findings grouped by rule and module subtree.

A runtime check reports every tensor it judges, so one mistake (``model.layer1`` frozen
but left in SGD with momentum) used to print one line per tensor: 140 lines for one
ClassyVision bug. For reading, findings of the same rule in the same run are grouped by
the top-level module they belong to and named by the deepest module all of them share:
``layer1 (60 tensors): frozen parameter layer1.0.conv1.weight is in SGD ...``. The
tensors are kept in ``extra["tensors"]``; ``--verbose`` and ``--format json`` print
every tensor instead. This module must not import torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from freezedsl.lint.registry import Diagnostic

__all__ = ["group_runtime"]

# Codes whose findings name one tensor (or one module, for the norm and checkpoint rules).
_PER_TENSOR = frozenset({"FZ301", "FZ302", "FZ303", "FZ311"})
_PER_MODULE = frozenset({"FZ306", "FZ310", "FZ350"})


def _subtree(names: Sequence[str], *, tensors: bool) -> str:
    """The deepest module that holds every name (``layer1`` for ``layer1.0.conv1.weight``)."""
    parts = [n.split(".")[:-1] if tensors else n.split(".") for n in names]
    common: list[str] = []
    for column in zip(*parts):
        if len(set(column)) != 1:
            break
        common.append(column[0])
    return ".".join(common) or "<model>"


def group_runtime(diagnostics: Sequence[Diagnostic]) -> list[Diagnostic]:
    """Merge per-tensor runtime findings of one rule under one top-level module.

    Groups need two or more findings; a single one is kept as it is. The first finding
    of a group stands for it (its message, location and severity), with a count.
    """
    groups: dict[tuple[str, str, str], list[Diagnostic]] = {}
    order: list[Diagnostic | tuple[str, str, str]] = []
    for d in diagnostics:
        if d.code not in _PER_TENSOR | _PER_MODULE or not d.obj or d.obj.startswith("<"):
            order.append(d)
            continue
        key = (d.code, d.path, d.obj.split(".")[0])
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(d)
    out: list[Diagnostic] = []
    for item in order:
        if isinstance(item, Diagnostic):
            out.append(item)
            continue
        members = groups[item]
        if len(members) == 1:
            out.append(members[0])
            continue
        tensors = item[0] in _PER_TENSOR
        names = [str(d.obj) for d in members]
        where = _subtree(names, tensors=tensors)
        noun = "tensors" if tensors else "modules"
        first = members[0]
        out.append(
            replace(
                first,
                message=f"{where} ({len(members)} {noun}): {first.message} "
                f"(and {len(members) - 1} more; --verbose lists them)",
                obj=where,
                extra={**first.extra, noun: names},
            )
        )
    return out
