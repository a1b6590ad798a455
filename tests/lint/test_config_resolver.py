"""Per-file settings discovery (``ConfigResolver``): the nearest ``pyproject.toml`` with
``[tool.freezedsl]`` above each file, command-line overrides on top, as ruff does."""

from __future__ import annotations

from pathlib import Path

from freezedsl.lint.config import ConfigResolver, LintConfig, load_config


def _project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.freezedsl.lint]\nignore = ['FZ206']\n", encoding="utf-8"
    )
    sub = tmp_path / "libs" / "vision"
    sub.mkdir(parents=True)
    (sub / "pyproject.toml").write_text(
        "[tool.freezedsl.lint]\nignore = ['FZ204']\n", encoding="utf-8"
    )
    plain = tmp_path / "libs" / "plain"
    plain.mkdir()
    (plain / "pyproject.toml").write_text("[project]\nname = 'plain'\n", encoding="utf-8")
    return sub


def test_nearest_settings_per_file_with_overrides(tmp_path: Path) -> None:
    sub = _project(tmp_path)
    base = load_config(start=tmp_path).with_overrides(ignore=["FZ201"])
    resolver = ConfigResolver(base, overrides={"ignore": ["FZ201"]})
    top = resolver.for_path(tmp_path / "train.py")
    assert top is base and top.ignore == ("FZ206",) and top.cli.ignore == ("FZ201",)
    nested = resolver.for_path(sub / "deep" / "train.py")
    assert nested.ignore == ("FZ204",)  # the nested table,
    assert nested.cli.ignore == ("FZ201",)  # --ignore on top
    assert nested.root == sub.resolve()  # its globs are relative to its own folder
    # a pyproject.toml without [tool.freezedsl] is skipped, like ruff
    assert resolver.for_path(tmp_path / "libs" / "plain" / "x.py") is base
    assert resolver.for_path(sub / "other.py") is nested  # read once, cached


def test_fixed_config_applies_everywhere(tmp_path: Path) -> None:
    sub = _project(tmp_path)
    base = LintConfig(ignore=("FZ2",))
    resolver = ConfigResolver(base, fixed=True)
    assert resolver.for_path(sub / "train.py") is base
