"""An ``except`` part that removes nothing from its base is an error, unless marked ``?``.

``except`` paths start at the model's root like every path, so on a ResNet ``freeze
layer4 except bn*`` names only the top-level ``bn1`` and used to freeze all of layer4
without a word. The error suggests the base-relative form when that form would remove
something.
"""

from __future__ import annotations

import pytest

import freezedsl
from freezedsl import SelectionError

from .models import SmallNet, flags, resnet18_meta


def test_issue_example_names_the_base_relative_form() -> None:
    model = resnet18_meta()
    with pytest.raises(SelectionError) as info:
        freezedsl.plan(model, "freeze layer4 except bn*")
    err = info.value
    assert (err.line, err.col) == (1, 22)
    assert err.message == (
        "'except bn*' removes nothing from layer4: it selects nothing inside layer4 "
        "(a path after 'except' starts at the model's root, like every path)"
    )
    assert err.hint == "did you mean layer4.**.bn*? (or write bn*? if it may remove nothing)"


def test_the_suggested_form_works_and_keeps_the_norm_layers_trainable() -> None:
    model = resnet18_meta()
    plan = freezedsl.plan(model, "freeze layer4 except layer4.**.bn*")
    trainable = [n for n in plan.trainable if n.startswith("layer4.")]
    assert trainable and all(".bn" in n for n in trainable)


@pytest.mark.parametrize(
    "text",
    [
        "freeze layer4 except bn*?",  # `?` on the except part
        "freeze layer4 except (bn*, fc)?",
        "freeze layer4 except layer4.0.bn1, bn1?",
        "freeze layer4\nexpect frozen layer4 except fc?",
    ],
)
def test_optional_except_part_may_remove_nothing(text: str) -> None:
    plan = freezedsl.plan(resnet18_meta(), text)
    assert "layer4.1.conv1.weight" in plan.frozen


def test_expect_except_removing_nothing_is_an_error_too() -> None:
    with pytest.raises(SelectionError, match="'except fc' removes nothing from layer4") as info:
        freezedsl.plan(resnet18_meta(), "freeze layer4\nexpect frozen layer4 except fc")
    assert info.value.line == 2
    assert info.value.hint == "write fc? if it may remove nothing"  # layer4.**.fc does not exist


def test_regex_and_type_parts_are_checked_without_the_path_note() -> None:
    with pytest.raises(SelectionError) as info:
        freezedsl.plan(SmallNet(), 'freeze layer1 except name~"^fc"')
    assert info.value.message == "'except name~\"^fc\"' removes nothing from layer1: it selects nothing inside layer1"
    freezedsl.plan(SmallNet(), "freeze layer1 except type=BatchNorm2d")  # removes the bn layers: fine


def test_error_changes_nothing() -> None:
    model = SmallNet()
    before = flags(model)
    with pytest.raises(SelectionError):
        freezedsl.apply(model, "freeze all\nunfreeze layer1 except stem")
    assert flags(model) == before


def test_stats_statement_except_is_checked_on_modules() -> None:
    with pytest.raises(SelectionError, match="'except fc' removes nothing from layer4"):
        freezedsl.plan(resnet18_meta(), "freeze stats layer4 except fc")
    freezedsl.plan(resnet18_meta(), "freeze stats layer4 except layer4.0")
