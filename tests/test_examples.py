"""The training-loop examples run as documented: exit 0, ending with their verification line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
# The training-loop examples, each run with no arguments. Other scripts in examples/
# (with their own arguments and outputs) are tested by their own test files: a test
# here must never run a script that writes into the repository.
SCRIPTS = [
    EXAMPLES / name
    for name in (
        "finetune_loop.py",
        "inline_rules.py",
        "finetune_bert.py",
        "finetune_gpt.py",
        "finetune_hf_trainer.py",
        "finetune_peft.py",
    )
]

pytest.importorskip("torchvision")


_RESULTS: dict[str, subprocess.CompletedProcess[str]] = {}


def run(script: Path, tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """Run ``script`` once per session with the running interpreter (the venv's python).

    The working directory is an empty temporary one: the scripts find rules/ relative
    to their own location, not to the current directory.
    """
    if script.name not in _RESULTS:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "2"}
        _RESULTS[script.name] = subprocess.run(
            [sys.executable, str(script)],
            check=False,
            cwd=tmp_path_factory.mktemp("cwd"),
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    return _RESULTS[script.name]


def test_examples_exist() -> None:
    assert all(script.is_file() for script in SCRIPTS)
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for script in SCRIPTS:
        assert script.name in readme, f"examples/README.md does not describe {script.name}"


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_example_runs(script: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    result = run(script, tmp_path_factory)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines and lines[-1].startswith("verified: "), result.stdout[-2000:]
    assert "FAILED" not in result.stdout


@pytest.mark.slow
def test_finetune_loop_applies_the_rule_file(tmp_path_factory: pytest.TempPathFactory) -> None:
    result = run(EXAMPLES / "finetune_loop.py", tmp_path_factory)
    assert "rules/resnet.frz" in result.stdout
    assert "ok    line 11: expect trainable 50%..100%" in result.stdout
    assert "frozen BatchNorm layers are unchanged; the head trained" in result.stdout


@pytest.mark.slow
def test_inline_example_shows_the_typo_error(tmp_path_factory: pytest.TempPathFactory) -> None:
    result = run(EXAMPLES / "inline_rules.py", tmp_path_factory)
    assert "did you mean 'classifier'?" in result.stdout
    assert "the model is unchanged after the failed apply" in result.stdout


def test_examples_pass_the_linter() -> None:
    """freezedsl's own static checks (optimizer after freeze, train()/eval() order...)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "freezedsl",
            "lint",
            "--no-run",
            *map(str, SCRIPTS),
            str(REPO / "rules"),
        ],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
