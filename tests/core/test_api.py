"""The public API: compile / load / plan / apply / format, Rules reuse, Plan fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from torch import nn

import freezedsl
from freezedsl import ExpectationError, FreezeError, RuleSyntaxError, SelectionError, UsageError
from freezedsl.application import apply_plan
from freezedsl.syntax.parser import parse

from .models import SmallNet, flags, frozen_names, resnet18_meta, snapshot

TEXT = "# head only\nfreeze all\nunfreeze fc\nexpect trainable fc\nexpect trainable < 50%\n"


@pytest.fixture
def rule_file(tmp_path: Path) -> Path:
    path = tmp_path / "head.frz"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_apply_file_equals_apply_text(rule_file: Path) -> None:
    results = []
    for rules in (
        TEXT,
        str(rule_file),
        rule_file,
        freezedsl.load(rule_file),
        freezedsl.compile(TEXT),
    ):
        model = SmallNet()
        plan = freezedsl.apply(model, rules)
        results.append(
            (frozen_names(model), [(p.name, p.after, p.decided_by) for p in plan.params])
        )
    assert all(r == results[0] for r in results)
    assert results[0][0] == {n for n, _ in SmallNet().named_parameters()} - {"fc.weight", "fc.bias"}


def test_loaded_rules_remember_their_file(rule_file: Path) -> None:
    rules = freezedsl.load(rule_file)
    assert rules.path == str(rule_file)
    assert rules.text == TEXT
    assert rules.sha256 == freezedsl.compile(TEXT).sha256
    assert str(rule_file) in repr(rules)
    plan = freezedsl.plan(SmallNet(), str(rule_file))
    assert plan.program.path == str(rule_file)
    assert plan.render().startswith(f"Plan: {rule_file} on SmallNet")
    assert plan.to_dict()["rules"] == str(rule_file)


def test_errors_from_a_file_carry_its_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.frz"
    path.write_text("freeze all\nunfreeze head\n", encoding="utf-8")
    with pytest.raises(SelectionError) as info:
        freezedsl.apply(SmallNet(), path)
    assert (info.value.path, info.value.line, info.value.col) == (str(path), 2, 10)
    assert str(info.value).startswith(f"{path}:2:10: ")
    path.write_text("freeze all\nunfreeze (fc\n", encoding="utf-8")
    with pytest.raises(RuleSyntaxError) as info2:
        freezedsl.load(path)
    assert info2.value.path == str(path) and info2.value.line == 2


def test_compile_with_a_path_names_it_in_errors() -> None:
    with pytest.raises(SelectionError) as info:
        freezedsl.compile("freeze nothere", path="cfg/x.frz").plan(SmallNet())
    assert str(info.value).startswith("cfg/x.frz:1:8: ")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "not found"),
        (b"freeze fc\nfreeze \xff\n", "not UTF-8"),
    ],
)
def test_load_errors(tmp_path: Path, content: bytes | None, fragment: str) -> None:
    path = tmp_path / "r.frz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(RuleSyntaxError) as info:
        freezedsl.load(path)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_load_directory_and_bom(tmp_path: Path) -> None:
    with pytest.raises(RuleSyntaxError, match="directory"):
        freezedsl.load(tmp_path)
    path = tmp_path / "bom.frz"
    path.write_bytes(b"\xef\xbb\xbffreeze fc\r\n")
    model = SmallNet()
    freezedsl.apply(model, path)
    assert frozen_names(model) == {"fc.weight", "fc.bias"}


def test_rules_compiled_once_apply_to_many_models() -> None:
    rules = freezedsl.compile("freeze all\nunfreeze fc\nexpect trainable fc")
    program = rules.program
    small, resnet, small2 = SmallNet(), resnet18_meta(), SmallNet()
    plans = [rules.apply(m) for m in (small, resnet, small2)]
    assert rules.program is program and rules.program == parse(rules.text)
    assert [p.model_class for p in plans] == ["SmallNet", "ResNet", "SmallNet"]
    for model in (small, resnet, small2):
        assert {n for n, p in model.named_parameters() if p.requires_grad} == {
            "fc.weight",
            "fc.bias",
        }
    assert plans[0].to_dict() == plans[2].to_dict()
    for p in plans[1].params:
        assert p.before != p.after or p.name.startswith("fc.")


def test_plan_does_not_mutate(rule_file: Path) -> None:
    model = SmallNet()
    model.get_submodule("layer1.0.bn1").eval()
    model.fc.bias.requires_grad_(False)
    snap, before = snapshot(model), flags(model)
    first = freezedsl.plan(model, rule_file)
    second = freezedsl.plan(model, rule_file)
    assert flags(model) == before
    assert snapshot(model) == snap
    assert first.to_dict() == second.to_dict()
    assert [p.before for p in first.params] == [before[p.name] for p in first.params]


def test_plan_fields_and_renderings() -> None:
    model = nn.Sequential(nn.Linear(9, 9), nn.Linear(9, 1))  # 90 + 10 elements
    plan = freezedsl.plan(model, "freeze 0\nexpect trainable 10%\n")
    assert plan.trainable == ["1.weight", "1.bias"]
    assert plan.frozen == ["0.weight", "0.bias"]
    assert plan.trainable_percent == pytest.approx(10.0)
    assert plan.ok and plan.warnings == []
    p = plan.params[0]
    assert (p.name, p.aliases, p.shape, p.numel, p.dtype, p.before, p.after, p.decided_by) == (
        "0.weight", ("0.weight",), (9, 9), 81, "float32", True, False, 1,
    )  # fmt: skip
    assert [s.number for s in plan.statements] == [1, 2]
    assert plan.statements[0].action == "freeze"
    assert plan.statements[0].matched_tensors == 2 and plan.statements[0].decided_elements == 90
    assert [(e.number, e.line, e.ok) for e in plan.expectations] == [(2, 2, True)]
    data = plan.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["totals"]["trainable_elements"] == 10
    assert data["diff"]["trainable_to_frozen"] == ["0.weight", "0.bias"]
    assert str(plan) == plan.render()
    explained = plan.render(explain=True)
    assert "0.weight" in explained and "line 1: freeze 0" in explained
    assert "\x1b[" in plan.render(color=True)
    assert "\x1b[" not in plan.render()


def test_apply_returns_the_plan_it_applied() -> None:
    model = SmallNet()
    plan = freezedsl.apply(model, "freeze layer1; unfreeze layer1.0")
    assert {p.name: p.after for p in plan.params} == {
        n: p.requires_grad for n, p in model.named_parameters()
    }


def test_stale_plan_is_refused() -> None:
    model = SmallNet()
    plan = freezedsl.plan(model, "freeze all")
    model.fc.weight.requires_grad_(False)
    before = flags(model)
    with pytest.raises(UsageError):
        apply_plan(plan)
    assert flags(model) == before


def test_failed_expectation_lists_every_failure_and_changes_nothing() -> None:
    model = SmallNet()
    before = flags(model)
    with pytest.raises(ExpectationError) as info:
        freezedsl.apply(model, "freeze all\nexpect trainable fc\nexpect trainable > 50%\n")
    assert info.value.exit_code == 1
    assert len(info.value.failures) == 2  # type: ignore[attr-defined]
    assert flags(model) == before


def test_format() -> None:
    assert (
        freezedsl.format("freeze   a ,b;unfreeze(c)  #x\n\n\n#tail")
        == "freeze a, b\nunfreeze c  # x\n\n# tail\n"
    )
    assert freezedsl.format("") == ""
    assert freezedsl.compile("freeze a,b").format() == "freeze a, b\n"
    with pytest.raises(RuleSyntaxError):
        freezedsl.format("freeze (")


@pytest.mark.parametrize("bad", [b"freeze all", 3, None, ["freeze all"]])
def test_rules_of_the_wrong_type(bad: object) -> None:
    with pytest.raises(TypeError):
        freezedsl.plan(SmallNet(), bad)  # type: ignore[arg-type]


def test_rules_from_accepts_programs() -> None:
    program = parse("freeze fc")
    model = SmallNet()
    freezedsl.apply(model, freezedsl.rules_from(program))  # type: ignore[arg-type]
    assert frozen_names(model) == {"fc.weight", "fc.bias"}
    rules = freezedsl.compile("freeze fc")
    assert freezedsl.rules_from(rules) is rules


def test_every_user_error_is_a_freeze_error() -> None:
    for cls in (RuleSyntaxError, SelectionError, ExpectationError, UsageError):
        assert issubclass(cls, FreezeError)


def test_long_one_line_rule_text() -> None:
    model = SmallNet()
    text = "freeze " + ", ".join(["fc"] * 100)  # 400 characters, no ';' or newline
    freezedsl.apply(model, text)
    assert frozen_names(model) == {"fc.weight", "fc.bias"}


@pytest.mark.parametrize(
    "model", [None, object(), {"fc.weight": torch.zeros(2)}], ids=["None", "object", "state_dict"]
)
def test_non_modules_are_refused(model: object) -> None:
    with pytest.raises((TypeError, FreezeError)):
        freezedsl.plan(model, "freeze all?")


class _Tracked(nn.Parameter):
    """A parameter class with its own requires_grad_ (as some tensor subclasses have)."""

    calls: ClassVar[list[bool]] = []

    def requires_grad_(self, requires_grad: bool = True) -> _Tracked:
        if getattr(self, "explode", False):
            raise RuntimeError("injected by the test")
        _Tracked.calls.append(requires_grad)
        return super().requires_grad_(requires_grad)


def test_an_overridden_requires_grad_is_honoured() -> None:
    """apply maps torch's own method in C only when no tensor class overrides it."""
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model[0].weight = _Tracked(model[0].weight.detach())
    _Tracked.calls.clear()
    freezedsl.apply(model, "freeze all\nunfreeze 1.bias")
    assert _Tracked.calls == [False]
    assert [p.requires_grad for p in model.parameters()] == [False, False, False, True]


def test_a_setter_failing_mid_apply_restores_every_flag() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2))
    model[1].weight = _Tracked(model[1].weight.detach())
    model[0].bias.requires_grad_(False)
    before = [p.requires_grad for p in model.parameters()]
    model[1].weight.explode = True  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="injected"):
        freezedsl.apply(model, "freeze all\nunfreeze 0")
    model[1].weight.explode = False  # type: ignore[attr-defined]
    assert [p.requires_grad for p in model.parameters()] == before
