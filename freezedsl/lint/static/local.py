"""Local checks that report during the walk: FZ205 (misspelling), FZ206 (substring name
match) and FZ209 (deprecated ``pretrained=``). FZ204 is reported by the walk itself, which
knows the loop bindings."""

from __future__ import annotations

import ast

from freezedsl.lint.static.astutil import _attr_pos, _bool_const, _kwarg
from freezedsl.lint.static.decides import can_collide
from freezedsl.lint.static.facts import _Bind, _File
from freezedsl.lint.static.rules import MISSPELLED_GRAD, PRETRAINED_DEPRECATED, SUBSTRING_NAME
from freezedsl.lint.static.tables import _TV_STEMS


def typo(ctx: _File, node: ast.Attribute, how: str) -> None:
    """FZ205: ``node.attr`` is a misspelling of ``requires_grad``; ``how`` is set/call."""
    attr = node.attr
    right = "requires_grad_" if attr.endswith("_") or how == "call" else "requires_grad"
    effect = (
        "silently creates a new attribute and freezes nothing"
        if how == "set"
        else "raises AttributeError when it runs"
    )
    ctx.report(
        MISSPELLED_GRAD,
        _attr_pos(node),
        f"`.{attr}` is a misspelling of `.{right}`; this {effect}",
        obj=attr,
    )


def substring(
    ctx: _File, binds: dict[str, _Bind], where: ast.AST, lit: ast.expr, name: str, how: str
) -> None:
    """Report digit-final literals used as substring/prefix tests on ``name`` when the
    test (the node ``where``) decides training and the literal is an index with possible siblings."""
    if not ctx.deciding(where):
        return
    lits: list[ast.Constant] = []
    if isinstance(lit, ast.Constant) and isinstance(lit.value, str):
        lits.append(lit)
    elif isinstance(lit, ast.Tuple) and how == "startswith":
        lits += [e for e in lit.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    elif isinstance(lit, ast.Name):
        b = binds.get(lit.id)
        if b is not None and b.kind == "lit":
            lits += b.values
    for c in lits:
        text = str(c.value)
        if not can_collide(text):
            continue
        sibling = f'"{text}0"'
        if how == "startswith":
            test = f'`{name}.startswith("{text}")`'
            fix = f'`{name}.startswith("{text}.")` (or `{name} == "{text}"`)'
            selector = text
        else:
            test = f'`"{text}" in {name}`' if how == "in" else f'`{name}.{how}("{text}")`'
            fix = (
                f'`"{text}" in {name}.split(".")`'
                if "." not in text
                else f'`".{text}." in f".{{{name}}}."`'
            )
            selector = "**." + text
        ctx.report(
            SUBSTRING_NAME,
            c,
            f"{test} also matches sibling names such as {sibling}; test whole name "
            f"segments with {fix} or use the freezedsl selector `{selector}`",
            obj=text,
        )


def pretrained(ctx: _File, node: ast.Call, kw: ast.keyword, parts: list[str]) -> None:
    """FZ209: a torchvision builder called with ``pretrained=``/``pretrained_backbone=``."""
    builder = parts[-1]
    stem = _TV_STEMS.get(builder)
    quantized = "quantization" in parts
    if kw.arg == "pretrained_backbone":
        backbone = max((k for k in _TV_STEMS if k in builder and k != builder), key=len, default="")
        enum = f"{_TV_STEMS[backbone]}_Weights" if backbone else None
        new_kw = "weights_backbone"
    else:
        enum = None
        if stem is not None:
            q = quantized and _bool_const(_kwarg(node, "quantize")) is True
            enum = f"{stem}_QuantizedWeights" if q else f"{stem}_Weights"
        new_kw = "weights"
    enum_text = f"{enum}.DEFAULT" if enum else "the builder's *_Weights enum (.DEFAULT)"
    flag = _bool_const(kw.value)
    if flag is True:
        fix = f"{new_kw}={enum_text}"
    elif flag is False:
        fix = f"{new_kw}=None"
    else:
        fix = f"{new_kw}={enum_text} if {ast.unparse(kw.value)} else None"
    ctx.report(
        PRETRAINED_DEPRECATED,
        kw,
        f"`{kw.arg}=` of torchvision's {builder}() is deprecated since torchvision 0.13; "
        f"pass {fix}",
        obj=builder,
    )
