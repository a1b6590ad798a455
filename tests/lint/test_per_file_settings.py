"""One ``freezedsl lint`` run over two sub-projects with different ``pyproject.toml``.

Each file is checked with the settings of the nearest ``pyproject.toml`` with a
``[tool.freezedsl]`` table above it (settings files are not merged, as in ruff); globs
are relative to the folder of the file that states them; command-line codes are a layer
on top of every file's settings; ``--config`` fixes one settings file for all. The real
static checks run, and the report is pinned by ``tests/lint/golden/per_file_settings.txt``
(``UPDATE_GOLDEN=1`` rewrites it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from freezedsl.lint.cli import lint_command

GOLDEN = Path(__file__).parent / "golden" / "per_file_settings.txt"

#: FZ201 (line 4), FZ204 (line 5) and FZ206 (line 7) with the real static checks.
BUGGY = """\
import torch

model = torch.nn.Linear(2, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
model.requires_grad = False
for name, p in model.named_parameters():
    if "layer1" in name:
        p.requires_grad = False
"""

FILES = {
    "pyproject.toml": (
        "[tool.freezedsl.lint]\nignore = ['FZ206']\n"
        "[tool.freezedsl.lint.per-file-ignores]\n'legacy/*' = ['FZ2']\n"
    ),
    "train.py": BUGGY,
    "legacy/old.py": BUGGY,  # per-file-ignores of the top settings: nothing
    "gen/made.py": BUGGY,  # only vision/ excludes gen
    "plain/pyproject.toml": "[project]\nname = 'plain'\n",  # no table: top settings apply
    "plain/train.py": BUGGY,
    "vision/pyproject.toml": (
        "[tool.freezedsl]\nselect = ['FZ204', 'FZ206']\nexclude = ['gen']\n"
        "[tool.freezedsl.per-file-ignores]\n'scripts/*' = ['FZ206']\n"
    ),
    "vision/train.py": BUGGY,  # FZ204 + FZ206 (its own select; the top ignore is not merged)
    "vision/legacy/old.py": BUGGY,  # the top 'legacy/*' does not reach into vision/
    "vision/scripts/run.py": BUGGY,  # its own per-file-ignores, relative to vision/
    "vision/gen/made.py": BUGGY,  # excluded by vision's settings
}


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, text in FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _lint(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(lint_command, ["--no-run", "--quiet", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    lines = [line.replace(os.sep, "/") for line in result.stdout.splitlines()]
    return result.exit_code, lines


def _codes(lines: list[str]) -> list[str]:
    return [" ".join(line.split(" ")[:2]) for line in lines]


def test_each_file_gets_its_nearest_settings_golden(tree: Path) -> None:
    code, lines = _lint(".")
    text = "\n".join(lines) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert code == 1
    assert text == GOLDEN.read_text(encoding="utf-8"), "UPDATE_GOLDEN=1 rewrites the golden file"
    assert _codes(lines) == [
        "gen/made.py:4:7: FZ201",
        "gen/made.py:5:1: FZ204",
        "plain/train.py:4:7: FZ201",
        "plain/train.py:5:1: FZ204",
        "train.py:4:7: FZ201",
        "train.py:5:1: FZ204",
        "vision/legacy/old.py:5:1: FZ204",
        "vision/legacy/old.py:7:8: FZ206",
        "vision/scripts/run.py:5:1: FZ204",
        "vision/train.py:5:1: FZ204",
        "vision/train.py:7:8: FZ206",
    ]


def test_named_files_like_pre_commit(tree: Path) -> None:
    """pre-commit passes file names: the same settings apply to each, exclude included."""
    _, lines = _lint("vision/gen/made.py", "vision/train.py", "legacy/old.py")
    assert _codes(lines) == ["vision/train.py:5:1: FZ204", "vision/train.py:7:8: FZ206"]


def test_command_line_codes_on_top_of_every_file(tree: Path) -> None:
    # --ignore adds to each file's own selection
    _, lines = _lint(".", "--ignore", "FZ204")
    assert all("FZ204" not in line for line in lines)
    assert "vision/train.py:7:8: FZ206" in _codes(lines)
    # --select is a new basis everywhere: the files' select, ignore and extend-* step aside
    # (their per-file-ignores and exclude still apply)
    _, lines = _lint(".", "--select", "FZ206")
    assert _codes(lines) == [
        "gen/made.py:7:8: FZ206",
        "plain/train.py:7:8: FZ206",
        "train.py:7:8: FZ206",
        "vision/legacy/old.py:7:8: FZ206",
        "vision/train.py:7:8: FZ206",
    ]


def test_config_option_fixes_one_settings_file(tree: Path) -> None:
    _, lines = _lint(".", "--config", "vision/pyproject.toml")
    # vision's settings everywhere: its globs are relative to vision/, so 'gen' (any
    # component) excludes both gen folders and 'scripts/*' matches nothing outside it
    assert "gen/made.py" not in " ".join(lines)
    assert _codes(lines) == [
        "legacy/old.py:5:1: FZ204",
        "legacy/old.py:7:8: FZ206",
        "plain/train.py:5:1: FZ204",
        "plain/train.py:7:8: FZ206",
        "train.py:5:1: FZ204",
        "train.py:7:8: FZ206",
        "vision/legacy/old.py:5:1: FZ204",
        "vision/legacy/old.py:7:8: FZ206",
        "vision/scripts/run.py:5:1: FZ204",
        "vision/train.py:5:1: FZ204",
        "vision/train.py:7:8: FZ206",
    ]


def test_unknown_code_in_a_nested_settings_file(tree: Path) -> None:
    (tree / "vision" / "pyproject.toml").write_text(
        "[tool.freezedsl]\nignore = ['FZ2999']\n", encoding="utf-8"
    )
    result = CliRunner().invoke(lint_command, ["--no-run", "."])
    assert result.exit_code == 2
    assert "ignore: unknown rule code 'FZ2999'" in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""
