"""FZ340 expensive-freeze: flagged cases and their correct twins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import freezedsl
from freezedsl.lint.cost import check_expensive_freeze
from freezedsl.planning.cost import estimate_cost

from .models import ConvNet, tiny_vit

GOLDEN = Path(__file__).parent / "golden"
IMAGES = [(4, 3, 32, 32)]
CHECKS = (check_expensive_freeze,)  # what the CLI and Plan.cost run
TOP = "freeze all\nunfreeze encoder.layers[-2:], encoder.ln, heads\n"


@pytest.fixture(scope="module")
def vit():
    return tiny_vit(layers=8)


def findings(model, text: str, inputs=IMAGES):
    program = freezedsl.compile(text, path="rules.frz")
    return estimate_cost(program.plan(model), model, inputs, checks=CHECKS).findings


def test_layernorm_islands_in_frozen_blocks_are_flagged(vit) -> None:
    [d] = findings(vit, TOP + "unfreeze type=LayerNorm\n")
    assert d.code == "FZ340" and d.line == 3 and d.path == "rules.frz"
    assert d.obj == "encoder.layers.encoder_layer_0.ln_1.weight"
    assert d.extra["stop_without"] == "encoder.layers.encoder_layer_6.ln_1"
    assert len(d.extra["islands"]) == 6 * 4  # ln_1 and ln_2 (weight, bias) of the 6 frozen blocks
    expected = GOLDEN / "fz340_vit.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        expected.write_text(d.format() + "\n")
    assert d.format() + "\n" == expected.read_text()


def test_flagged_figures_are_the_estimate_without_the_islands(vit) -> None:
    [d] = findings(vit, TOP + "unfreeze type=LayerNorm\n")
    strict = estimate_cost(freezedsl.compile(TOP).plan(vit), vit, IMAGES, checks=CHECKS)
    assert d.extra["without_islands"]["backward_flops"] == strict.with_freeze.backward_flops
    assert d.extra["without_islands"]["peak_bytes"] == strict.with_freeze.peak_bytes


def test_strictly_frozen_backbone_is_not_flagged(vit) -> None:
    assert findings(vit, TOP) == []


def test_islands_next_to_the_trained_blocks_are_not_flagged(vit) -> None:
    # one LayerNorm in the block just before the trained ones: backward goes one block further, cheap
    assert findings(vit, TOP + "unfreeze encoder.layers[5].ln_2\n") == []


def test_full_fine_tuning_and_linear_probe_are_not_flagged(vit) -> None:
    assert findings(vit, "unfreeze all\n") == []
    assert findings(vit, "freeze all\nunfreeze heads\n") == []


def test_bias_island_in_a_cnn_is_flagged_and_its_twin_is_not() -> None:
    model = ConvNet()
    base = "freeze all\nunfreeze block, head\n"
    [d] = findings(model, base + "unfreeze stem.0.bias\n", [(4, 3, 32, 32)])
    assert d.obj == "stem.0.bias" and d.extra["stop_without"] == "block.0"
    assert findings(model, base, [(4, 3, 32, 32)]) == []


def test_check_needs_a_traced_step(vit) -> None:
    plan = freezedsl.compile("freeze all\n").plan(vit)
    est = estimate_cost(plan, vit, IMAGES)
    assert check_expensive_freeze(plan, vit, est) == []  # nothing trains: no backward to blame


def test_plan_cost_and_freezedsl_cost_run_fz340_and_bare_estimate_does_not(vit) -> None:
    # planning never imports the linter: the API wires FZ340 into Plan.cost and freezedsl.cost
    text = TOP + "unfreeze type=LayerNorm\n"
    plan = freezedsl.plan(vit, text)
    assert [d.code for d in plan.cost(IMAGES).findings] == ["FZ340"]
    assert [d.code for d in freezedsl.cost(vit, text, IMAGES).findings] == ["FZ340"]
    assert estimate_cost(plan, vit, IMAGES).findings == []
