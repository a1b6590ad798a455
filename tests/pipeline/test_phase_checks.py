"""Scheduled statements are checked up front: every `at` phase is planned once.

``Schedule(...)``, ``freezedsl plan`` and ``freezedsl lint --model`` plan the rules in
force at each distinct ``at`` time, so a typo in ``at epoch 5: unfreeze layr4`` fails
before training starts (naming line and column) instead of at epoch 5. ``plan --epoch``
/ ``--step`` show the state at a phase.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import freezedsl
from freezedsl.cli import main

from .models import make_net

TYPO = "freeze all\nunfreeze fc\nat epoch 1: unfreeze layer2\nat epoch 5: unfreeze layr4\n"
CNN = "freezedsl.testing:small_cnn"


def test_schedule_fails_at_construction_on_a_later_phase_typo() -> None:
    model = make_net()
    before = [p.requires_grad for p in model.parameters()]
    with pytest.raises(freezedsl.SelectionError) as info:
        freezedsl.Schedule(TYPO, model)
    assert info.value.line == 4 and info.value.col == 22
    assert "layr4 matches nothing" in str(info.value)
    assert [p.requires_grad for p in model.parameters()] == before  # nor was time 0 applied
    assert all(before)


def test_schedule_checks_step_phases_and_whole_selector_errors() -> None:
    rules = "freeze all\nat step 100: unfreeze fc\nat step 900: unfreeze layer1 except all\n"
    with pytest.raises(freezedsl.SelectionError, match="'except' removes everything") as info:
        freezedsl.Schedule(rules, make_net())
    assert info.value.line == 3


def test_schedule_with_correct_phases_still_starts_at_time_zero() -> None:
    model = make_net()
    sched = freezedsl.Schedule(TYPO.replace("layr4", "layer1"), model)
    assert sched.time == 0
    assert model.fc.weight.requires_grad and not model.layer2.weight.requires_grad


def _cli(tmp: Path, text: str, *args: str) -> tuple[int, str, str]:
    (tmp / "s.frz").write_text(text, encoding="utf-8")
    res = CliRunner().invoke(main, [*args[:1], str(tmp / "s.frz"), *args[1:]])
    return res.exit_code, res.stdout, res.stderr


def test_plan_reports_a_later_phase_typo(tmp_path: Path) -> None:
    code, _out, err = _cli(tmp_path, "freeze all\nat epoch 5: unfreeze featurs\n", "plan", CNN)
    assert code == 2
    assert err.splitlines()[0].endswith(
        "s.frz:2:22: featurs matches nothing in SmallCNN; did you mean 'features'? "
        "(or write featurs? if it may match nothing)"
    )
    assert "Traceback" not in err


def test_plan_epoch_shows_the_state_at_that_phase(tmp_path: Path) -> None:
    text = "freeze all\nunfreeze classifier\nat epoch 2: unfreeze features.3\n"
    trainable = {}
    for epoch in ("0", "1", "2", "7"):
        code, out, err = _cli(tmp_path, text, "plan", CNN, "--epoch", epoch, "--json")
        assert code == 0, err
        data = json.loads(out)
        trainable[epoch] = sorted(p["name"] for p in data["parameters"] if p["after"] == "trainable")
    assert trainable["0"] == trainable["1"] == ["classifier.bias", "classifier.weight"]
    assert trainable["2"] == trainable["7"]
    assert set(trainable["2"]) > set(trainable["0"]) and any(n.startswith("features.3") for n in trainable["2"])


def test_plan_step_option(tmp_path: Path) -> None:
    text = "freeze all\nat step 10: unfreeze classifier\n"
    code, out, _ = _cli(tmp_path, text, "plan", CNN, "--step", "9")
    assert code == 0 and "unfreeze classifier" not in out
    code, out, _ = _cli(tmp_path, text, "plan", CNN, "--step", "10")
    assert code == 0 and "unfreeze classifier" in out


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ("freeze all\nat epoch 2: unfreeze classifier\n", ("--step", "2"), "schedules by epoch (`at epoch N`); pass --epoch, not --step"),
        ("freeze all\nat step 2: unfreeze classifier\n", ("--epoch", "2"), "schedules by step (`at step N`); pass --step, not --epoch"),
        ("freeze all\n", ("--epoch", "2"), "has no `at` statements; drop --epoch"),
        ("freeze all\nat epoch 2: unfreeze classifier\n", ("--epoch", "1", "--step", "1"), "give --epoch or --step, not both"),
    ],
)
def test_plan_time_option_errors(tmp_path: Path, text: str, args: tuple[str, ...], message: str) -> None:
    code, _out, err = _cli(tmp_path, text, "plan", CNN, *args)
    assert code == 2
    assert message in err.splitlines()[0]


def test_lint_model_reports_a_later_phase_typo(tmp_path: Path) -> None:
    code, out, _err = _cli(tmp_path, "freeze all\nat epoch 5: unfreeze featurs\n", "lint", "--model", CNN)
    assert code == 1
    assert "s.frz:2:22: FZ110 featurs matches nothing" in out


def test_lint_model_reports_a_phase_only_planning_error(tmp_path: Path) -> None:
    text = "freeze all\nat epoch 3: unfreeze features except all\n"
    code, out, _err = _cli(tmp_path, text, "lint", "--model", CNN)
    assert code == 1
    assert "s.frz:2:22: FZ110 features except all selects no parameters" in out
    code, out, _err = _cli(tmp_path, text.replace(" except all", ""), "lint", "--model", CNN)
    assert code == 0, out
