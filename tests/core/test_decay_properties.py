"""Hypothesis properties of ``lr decay`` layers on generated module trees (issue 13.5).

* ``{S}`` makes everything ``S`` selects one layer: every parameter gets the same scale,
  ``F`` (it is the only, hence the last, layer).
* Braces change grouping, never the selection: ``lr decay F over S`` and ``... over {S}``
  set the same parameters, and ``min``/``freeze below`` keep every scale in bounds.
* Printing and parsing a decay statement gives it back.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import freezedsl
from freezedsl.errors import SelectionError
from freezedsl.syntax import ast
from freezedsl.syntax.parser import parse
from freezedsl.syntax.printer import format_program

from .strategies import ModelFacts, build, selectors, tree_specs

CFG = settings(max_examples=60, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
FACTORS = st.sampled_from([Decimal("0.5"), Decimal("0.75"), Decimal("0.9"), Decimal(1)])
BOUNDS = st.one_of(st.none(), st.sampled_from([Decimal(0), Decimal("0.1"), Decimal("0.3")]))


def _plan(model: Any, st_: ast.HyperDecay) -> Any:
    text = format_program(ast.Program((st_,)))
    try:
        return freezedsl.plan(model, text)
    except SelectionError:
        return None


@CFG
@given(spec=tree_specs(), data=st.data(), factor=FACTORS, low=BOUNDS, below=BOUNDS)
def test_braces_group_into_one_layer_and_scales_stay_in_bounds(
    spec: Any, data: Any, factor: Decimal, low: Decimal | None, below: Decimal | None
) -> None:
    model = build(spec)
    facts = ModelFacts.of(model)
    sel = data.draw(selectors(facts, keep_empty=0.0))
    plain = _plan(model, ast.HyperDecay("lr", factor, sel, low, below))
    grouped = _plan(model, ast.HyperDecay("lr", factor, ast.Layer(sel), low, below))
    assume(plain is not None and grouped is not None)
    set_plain = {p.name for p in plain.params if p.lr is not None}
    set_grouped = {p.name for p in grouped.params if p.lr is not None}
    assert set_plain == set_grouped
    expected = max(factor, low) if low is not None else factor
    assert {p.lr.value for p in grouped.params if p.lr is not None} <= {expected}
    for p in plain.params:
        if p.lr is None:
            continue
        assert p.lr.relative and p.lr.value <= 1
        if low is not None:
            assert p.lr.value >= low
        if below is not None and p.lr.value < below:
            assert not p.after  # `freeze below` froze it
    # one scale per layer, strictly growing toward the last layer when F < 1
    by_first = sorted({p.lr.value for p in plain.params if p.lr is not None})
    if by_first and factor < 1 and low is None:
        assert by_first[-1] == factor


@CFG
@given(spec=tree_specs(), data=st.data(), factor=FACTORS, low=BOUNDS, below=BOUNDS, braces=st.booleans())
def test_decay_statements_print_and_parse_back(
    spec: Any, data: Any, factor: Decimal, low: Decimal | None, below: Decimal | None, braces: bool
) -> None:
    facts = ModelFacts.of(build(spec))
    sel = data.draw(selectors(facts))
    if braces:
        sel = ast.Union_((ast.Layer(sel), ast.Path((ast.Word("head"),))))
    program = ast.Program((ast.HyperDecay("lr", factor, sel, low, below),))
    assert parse(format_program(program)) == program
