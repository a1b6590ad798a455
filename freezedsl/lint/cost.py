"""FZ340: a few trainable tensors early in the forward order that cost most of a freeze's saving.

Runs where the cost estimate runs (``freezedsl plan RULES MODEL --input SHAPE``, and
``Plan.cost``): it needs the traced step's first use of every parameter, which only
exists once there is an input shape. The check finds the "islands": the trainable
tensors used before the point where the bulk (95%) of the trainable elements starts,
in forward order. When at least a quarter of the forward FLOPs run between the first
island and that point, backward runs through that frozen stretch only for the
islands; the step is then estimated again with the islands frozen, and the finding
says what they cost and where backward would stop without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from freezedsl.lint.registry import Diagnostic, Rule, Severity, diag, register

if TYPE_CHECKING:
    import torch

    from freezedsl.planning.cost import CostEstimate
    from freezedsl.planning.result import Plan

ISLAND_SHARE = 0.05  # islands hold at most this share of the trainable elements
SPAN_SHARE = 0.25  # ...and backward runs through at least this share of the forward FLOPs for them

EXPENSIVE_FREEZE = register(
    Rule(
        "FZ340",
        "expensive-freeze",
        Severity.WARNING,
        "A few trainable tensors early in the forward order make backward run through most of a frozen network.",
        what="""
With an input shape (``freezedsl plan RULES MODEL --input SHAPE``), traces one training
step on the meta device and orders the trainable parameters by their first use in the
forward. Flags trainable tensors that hold under 5% of the trainable elements but sit
before at least a quarter of the forward FLOPs that come ahead of the rest of the
trainable parameters, and reports the estimate again with them frozen.
""",
        why="""
Backward must run from the loss down to the earliest op that reads a trainable
parameter, and every activation that backward pass needs stays in memory. A LayerNorm
or bias left trainable in the first block of a frozen backbone forces the input
gradients of every frozen block after it: most of the compute and memory the freeze
was meant to save, for a tiny share of the parameters.
""",
        example="""
# ViT: the last two blocks train, but every LayerNorm too (also in the frozen blocks)
freeze all
unfreeze encoder.layers[-2:], encoder.ln, heads
unfreeze type=LayerNorm
""",
        use_instead="""
# keep the frozen blocks strictly frozen (or accept the cost, and say so in a comment)
freeze all
unfreeze encoder.layers[-2:], encoder.ln, heads
""",
    )
)


def check_expensive_freeze(
    plan: Plan, model: torch.nn.Module, estimate: CostEstimate, **kw: Any
) -> list[Diagnostic]:
    """FZ340 findings for ``estimate`` (of ``plan`` on ``model``); ``kw`` as for ``step_cost``."""
    from freezedsl.planning.cost import step_cost, trainable_map

    w = estimate.with_freeze
    if w.backward_stop_param is None or not w.first_use:
        return []
    size = {alias: p.numel for p in plan.params for alias in p.aliases}
    trainable = trainable_map(plan)
    rank = {
        name: i for i, name in enumerate(trainable)
    }  # one op reading several: the model's order
    order = [
        (use, n)
        for use, _, n in sorted(
            (w.first_use[n], rank[n], n) for n in w.first_use if trainable.get(n)
        )
    ]
    total = sum(size.get(n, 0) for _, n in order)
    if total == 0:
        return []
    islands: list[str] = []
    elements = 0
    cut: tuple[int, int] | None = None
    for use, name in order:
        if elements + size.get(name, 0) > ISLAND_SHARE * total:
            cut = use
            block = _block(name)
            while (
                islands and block and islands[-1].startswith(block)
            ):  # same block as the bulk: not an island
                cut = w.first_use[islands[-1]]
                elements -= size.get(islands.pop(), 0)
            break
        islands.append(name)
        elements += size.get(name, 0)
    if not islands or cut is None:
        return []
    first_flops = w.first_use[islands[0]][1]
    span = cut[1] - first_flops
    if w.forward_flops == 0 or span < SPAN_SHARE * w.forward_flops:
        return []
    fixed_map = dict(trainable)
    for name in islands:
        fixed_map[name] = False
    fixed = step_cost(model, fixed_map, estimate.inputs, **kw)
    full = estimate.without_freeze

    def pct(a: float, b: float) -> str:
        return f"{100.0 * (1 - a / b):.0f}%" if b else "0%"

    first = islands[0]
    stop = fixed.backward_stops_at or "(model)"
    message = (
        f"{len(islands)} trainable tensors ({elements:,} elements, {100.0 * elements / total:.1f}% of the trainable ones), "
        f"first {first}, make backward run through {100.0 * span / w.forward_flops:.0f}% of the forward FLOPs "
        f"for them: the freeze saves {pct(w.backward_flops, full.backward_flops)} of backward FLOPs and "
        f"{pct(w.peak_bytes, full.peak_bytes)} of peak training memory; without them it would save "
        f"{pct(fixed.backward_flops, full.backward_flops)} and {pct(fixed.peak_bytes, full.peak_bytes)} "
        f"(backward would stop at {stop})"
    )
    line, path = _decider(plan, first)
    return [
        diag(
            EXPENSIVE_FREEZE,
            message,
            path,
            line=line,
            obj=first,
            extra={
                "islands": islands,
                "island_elements": elements,
                "stop_without": fixed.backward_stops_at,
                "without_islands": fixed.to_dict(),
            },
        )
    ]


def _block(name: str) -> str:
    """``encoder.layers.encoder_layer_10.`` for a parameter of that numbered block ('' if none)."""
    parts = name.split(".")[:-1]
    for i in range(len(parts) - 1, -1, -1):
        if parts[i][-1:].isdigit():
            return ".".join(parts[: i + 1]) + "."
    return ""


def _decider(plan: Plan, name: str) -> tuple[int | None, str]:
    """Line of the statement that made ``name`` trainable, and the rule file's path."""
    path = plan.program.path or "<rules>"
    for p in plan.params:
        if name in p.aliases and p.decided_by:
            return plan.statements[p.decided_by - 1].line, path
    return None, path
