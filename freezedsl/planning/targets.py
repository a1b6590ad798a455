"""What the statements other than freeze/unfreeze act on.

``freeze stats`` / ``unfreeze stats`` / ``convert`` act on norm-layer modules; ``lr`` and
``weight_decay`` act on parameters with a factor; ``lr decay ... over SEL`` splits its
selection into layers and gives each a scale. Working out these targets (and refusing
a statement that selects nothing) is separate from make_plan's core, the last-match-wins
walk over freeze/unfreeze rules in plan.py, which only folds the targets in.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from freezedsl.errors import SelectionError
from freezedsl.planning.index import ModelIndex, iter_bits, ranges_mask
from freezedsl.planning.select import Evaluator
from freezedsl.syntax import ast
from freezedsl.syntax.printer import format_selector


def convertible(index: ModelIndex, i: int) -> bool:
    """``convert ... to FrozenBatchNorm2d`` can replace module ``i``: a plain BatchNorm2d
    with running statistics, or timm's BatchNormAct2d (batch norm fused with its
    activation; it becomes timm's FrozenBatchNormAct2d, which keeps the activation).
    Other subclasses are left alone: a frozen plain layer would drop what they add."""
    if not index.running_stats(i):
        return False
    cls = index.classes(i)[:1]
    return cls == ("BatchNorm2d",) or (
        cls == ("BatchNormAct2d",) and index.qualname(i) == "timm.layers.norm_act.BatchNormAct2d"
    )


def module_targets(ev: Evaluator, st: ast.StatsRule | ast.Convert) -> list[int]:
    """Module indices a stats/convert statement acts on: norm layers in its scope."""
    sel = ev.select(st.selector, modules=True)
    index = ev.index
    if isinstance(st, ast.Convert):
        found = [i for i in iter_bits(sel.mmask) if convertible(index, i)]
        what = "BatchNorm2d module with running statistics"
        if not found and not all_optional(st.selector):
            others = sorted({index.classes(i)[0] for i in iter_bits(sel.mmask) if "BatchNorm2d" in index.classes(i)[1:]})
            if others:
                what += (
                    f" that can be converted (its BatchNorm2d subclasses {', '.join(others)} are left alone: "
                    "FrozenBatchNorm2d would drop what the subclass adds; convert takes BatchNorm2d and "
                    "timm's BatchNormAct2d)"
                )
    else:
        found = [i for i in iter_bits(sel.mmask) if index.running_stats(i)]
        what = "norm layer with running statistics (BatchNorm, SyncBatchNorm, InstanceNorm(track_running_stats=True))"
    if not found and not all_optional(st.selector):
        raise ev.error(
            f"{format_selector(st.selector)} contains no {what}",
            st.span,
            "select a scope that holds such layers, or add '?' to allow none",
        )
    return found


def compose(factor: ast.Factor | None, scale: Decimal | None) -> ast.Factor | None:
    """One parameter's setting from its `lr Nx`/`lr V` factor and its `lr decay` scale:
    relative factors and scales multiply (MMEngine's ``bias_lr_mult`` times the layer
    decay); an absolute value (`lr 3e-4`) is used as it is."""
    if scale is None:
        return factor
    if factor is None:
        return ast.Factor(scale, True)
    return ast.Factor(factor.value * scale, True) if factor.relative else factor


def hyper_targets(ev: Evaluator, st: ast.Hyper) -> list[tuple[int, ast.Factor]]:
    """(name index, factor) pairs of an `lr` / `weight_decay` statement."""
    sel = ev.select(st.selector)
    if sel.mask == 0 and not all_optional(st.selector):
        raise empty_statement(ev, st.selector, ev.index)
    return [(i, st.factor) for i in iter_bits(sel.mask)]


def decay_layers(ev: Evaluator, selector: ast.Selector) -> tuple[list[int], Any]:
    """The layers of an `lr decay ... over SEL`, as name masks in model order.

    A layer is a ``{...}`` group (everything it selects), an outermost selected module
    with parameters, or a selected parameter outside both (a root-level ``cls_token``).
    Layers are ordered by their first parameter; a parameter belongs to one layer.
    """
    sel = ev.select(selector, modules=True)
    index = ev.index
    remaining = sel.mask
    units: list[int] = []
    for layer in ast.layers(selector):
        part = ev.select(layer.inner, True).mask & remaining
        if part:
            units.append(part)
            remaining &= ~part
    end = -1
    for i in iter_bits(sel.mmask):
        if i < end or not index.has_params(i):
            continue
        span = ranges_mask(len(index.names), [(index.param_start[i], index.param_end(i))])
        if span & remaining:
            units.append(span & remaining)
            remaining &= ~span
            end = index.module_end[i]
    units.extend(1 << i for i in iter_bits(remaining))  # parameters outside every module layer
    units.sort(key=lambda m: (m & -m).bit_length())
    return units, sel


def decay_targets(ev: Evaluator, st: ast.HyperDecay) -> tuple[list[tuple[int, Decimal]], int]:
    """(name index, scale) pairs of `lr decay F over SEL`, and the names `freeze below`
    freezes. The last layer gets F, the one before F^2, ... (timm's
    ``param_groups_layer_decay``: scale = max(min, F^(last - k)))."""
    units, sel = decay_layers(ev, st.selector)
    if not units:
        if sel.mask == 0 and not all_optional(st.selector):
            raise empty_statement(ev, st.selector, ev.index)
        return [], 0
    out: list[tuple[int, Decimal]] = []
    frozen = 0
    n = len(units)
    for k, unit in enumerate(units):
        scale = st.factor ** (n - k)
        if st.min_scale is not None:
            scale = max(scale, st.min_scale)
        out.extend((i, scale) for i in iter_bits(unit))
        if st.freeze_below is not None and scale < st.freeze_below:
            frozen |= unit
    return out, frozen


def all_optional(sel: ast.Selector) -> bool:
    return all(opt for _atom, opt, excl in ast.atoms(sel) if not excl)


def empty_statement(ev: Evaluator, sel: ast.Selector, index: ModelIndex) -> SelectionError:
    text = format_selector(sel)
    if isinstance(sel, ast.Except):
        return ev.error(
            f"{text} selects no parameters: 'except' removes everything the rest matches",
            sel.span,
            "drop or narrow the 'except' part",
        )
    return ev.error(
        f"{text} selects no parameters (it matches only modules without parameters)",
        sel.span,
        "select modules that own parameters, or add '?' to allow no match",
    )
