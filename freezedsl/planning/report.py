"""Text and JSON renderings of a Plan (``freezedsl plan`` / ``apply``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from freezedsl.safetext import printable

if TYPE_CHECKING:
    from freezedsl.planning.result import Plan

JSON_FORMAT = "freezedsl-plan/1"


def _style(text: str, color: bool, **kw: Any) -> str:
    if not color:
        return text
    import click

    return click.style(text, **kw)


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def render_text(plan: Plan, *, explain: bool = False, color: bool = False) -> str:
    prog = plan.program
    out: list[str] = []
    total = plan.total_elements
    header = f"Plan: {printable(prog.path or '<rules>')} on {printable(plan.model_class)} ({len(plan.params):,} tensors, {total:,} parameters)"
    out.append(_style(header, color, bold=True))
    for w in plan.warnings:
        out.append(_style(f"warning: {printable(w)}", color, fg="yellow"))
    out.append("")
    rows = [r for r in plan.statements if r.action != "expect"]
    if rows:
        width = min(max(len(r.text) for r in rows), 60)
        out.append(f"  {'#':>3}  {'line':>4}  {'statement':<{width}}  {'matched':>24}  {'decides':>24}")
        for r in rows:
            text = printable(r.text if len(r.text) <= width else r.text[: width - 3] + "...")
            matched = f"{r.matched_tensors:,} t / {r.matched_elements:,} p"
            decides = f"{r.decided_tensors:,} t / {r.decided_elements:,} p"
            if r.action in ("convert", "freeze stats", "unfreeze stats"):
                matched, decides = f"{r.matched_tensors:,} norm layers", "-"
            elif r.action in ("lr", "weight_decay"):
                decides = "-"
            elif r.action == "scheduled":
                matched, decides = "later", "-"
            line = "" if r.line is None else str(r.line)
            out.append(f"  {r.number:>3}  {line:>4}  {text:<{width}}  {matched:>24}  {decides:>24}")
        out.append("  (t = tensors, p = parameter elements; a statement decides what no later one matches)")
        out.append("")
    if explain:
        out.extend(_explain(plan, color))
        out.append("")
    train = plan.trainable_elements
    n_train = sum(1 for p in plan.params if p.after)
    out.append(
        f"trainable params: {train:,} || all params: {total:,} || trainable%: {plan.trainable_percent:.4f}"
    )
    out.append(
        f"trainable: {n_train:,} tensors, {train:,} parameters | "
        f"frozen: {len(plan.params) - n_train:,} tensors, {total - train:,} parameters"
    )
    to_frozen = [p for p in plan.params if p.before and not p.after]
    to_train = [p for p in plan.params if not p.before and p.after]
    out.append(
        f"changes: {len(to_frozen):,} tensors ({sum(p.numel for p in to_frozen):,} parameters) "
        f"trainable -> frozen, {len(to_train):,} tensors ({sum(p.numel for p in to_train):,} parameters) "
        "frozen -> trainable"
    )
    if plan.norm_stats:
        frozen = [d for d in plan.norm_stats if d.frozen]
        out.append(
            f"norm statistics: {len(frozen)} layers frozen (kept in eval mode across model.train()), "
            f"{len(plan.norm_stats) - len(frozen)} released"
        )
    if plan.conversions:
        counts: dict[str, int] = {}
        for d in plan.conversions:
            counts[d.cls] = counts.get(d.cls, 0) + 1
        parts = [f"{n} {cls} -> Frozen{cls}" + (" (timm)" if cls == "BatchNormAct2d" else "") for cls, n in counts.items()]
        out.append("conversions: " + ", ".join(parts))
    if plan.scheduled:
        out.append(f"schedule: {plan.scheduled} statements wait for their epoch/step (freezedsl.Schedule)")
    if plan.expectations:
        out.append("")
        out.append("expectations:")
        for e in plan.expectations:
            mark = _style("ok  ", color, fg="green") if e.ok else _style("FAIL", color, fg="red", bold=True)
            out.append(f"  {mark}  line {e.line}: {printable(e.text)} -- {printable(e.detail)}")
    return "\n".join(out)


def _explain(plan: Plan, color: bool) -> list[str]:
    by_number = {r.number: r for r in plan.statements}
    name_w = min(max((len(p.name) for p in plan.params), default=4), 60)
    hyper = plan.has_hyper
    what = "shape, elements, lr and weight decay (x: times the base value; -: frozen)" if hyper else "shape, elements"
    lines = [f"parameters (state, name, {what}, deciding statement; * = changed):"]
    for p in plan.params:
        state = "trainable" if p.after else "frozen"
        state_txt = _style(f"{state:<9}", color, fg="green" if p.after else "blue")
        mark = "*" if p.changed else " "
        if p.decided_by is None:
            why = "kept (no statement matches)"
        else:
            r = by_number[p.decided_by]
            why = printable(f"line {r.line}: {r.text}")
        name = p.name
        if len(p.aliases) > 1:
            name += " (= " + ", ".join(p.aliases[1:]) + ")"
        name = printable(name)
        settings = ""
        if hyper:  # a frozen tensor is in no optimizer group (freezedsl.param_groups)
            lr, wd = (_setting(p.lr), _setting(p.weight_decay)) if p.after else ("-", "-")
            settings = f"  lr {lr:<10} wd {wd:<8}"
        lines.append(f"  {mark} {state_txt}  {name:<{name_w}}  {_shape(p.shape):<16} {p.numel:>12,}{settings}  {why}")
    return lines


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    total = plan.total_elements
    train = plan.trainable_elements
    n_train = sum(1 for p in plan.params if p.after)
    return {
        "format": JSON_FORMAT,
        "rules": plan.program.path,
        "model": plan.model_class,
        "wrapper": plan.wrapper,
        "ok": plan.ok,
        "statements": [
            {
                "number": r.number,
                "line": r.line,
                "text": r.text,
                "action": r.action,
                "matched_tensors": r.matched_tensors,
                "matched_elements": r.matched_elements,
                "decided_tensors": r.decided_tensors,
                "decided_elements": r.decided_elements,
            }
            for r in plan.statements
        ],
        "parameters": [
            {
                "name": p.name,
                "aliases": list(p.aliases),
                "shape": list(p.shape),
                "numel": p.numel,
                "dtype": p.dtype,
                "before": "trainable" if p.before else "frozen",
                "after": "trainable" if p.after else "frozen",
                "changed": p.changed,
                "decided_by": p.decided_by,
                "lr": _factor(p.lr),
                "weight_decay": _factor(p.weight_decay),
            }
            for p in plan.params
        ],
        "totals": {
            "tensors": len(plan.params),
            "elements": total,
            "trainable_tensors": n_train,
            "trainable_elements": train,
            "frozen_tensors": len(plan.params) - n_train,
            "frozen_elements": total - train,
            "trainable_percent": round(plan.trainable_percent, 6),
        },
        "diff": {
            "trainable_to_frozen": [p.name for p in plan.params if p.before and not p.after],
            "frozen_to_trainable": [p.name for p in plan.params if not p.before and p.after],
        },
        "expectations": [
            {"number": e.number, "line": e.line, "text": e.text, "ok": e.ok, "detail": e.detail}
            for e in plan.expectations
        ],
        "norm_stats": [
            {"module": d.path, "class": d.cls, "frozen": d.frozen, "decided_by": d.decided_by}
            for d in plan.norm_stats
        ],
        "conversions": [{"module": d.path, "class": d.cls, "decided_by": d.decided_by} for d in plan.conversions],
        "warnings": list(plan.warnings),
    }


def _setting(f: Any) -> str:
    """An lr / weight decay as --explain shows it: ``1x`` when no statement sets it."""
    if f is None:
        return "1x"
    from freezedsl.syntax.printer import format_factor

    text = format_factor(f)
    return text if len(text) <= 10 else f"{float(f.value):.4g}" + ("x" if f.relative else "")


def _factor(f: Any) -> str | None:
    if f is None:
        return None
    from freezedsl.syntax.printer import format_factor

    return format_factor(f)
