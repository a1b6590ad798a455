"""``lint`` inputs and outputs: ``-o`` never overwrites an input, reports are written
atomically, Python sources are decoded as Python decodes them (BOM, PEP 263)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from freezedsl.lint import runner
from freezedsl.lint.cli import lint_command


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def lint(*args: str) -> Result:
    return CliRunner().invoke(lint_command, list(args))


RULES = "freeze fc\n"


@pytest.mark.parametrize(
    ("setup", "args", "given"),
    [
        (lambda: None, ["-o", "keep.frz", "keep.frz"], "keep.frz"),
        (lambda: os.symlink("keep.frz", "link.frz"), ["-o", "link.frz", "keep.frz"], "keep.frz"),
        (lambda: os.symlink("keep.frz", "link.frz"), ["-o", "keep.frz", "link.frz"], "link.frz"),
        (lambda: os.link("keep.frz", "hard.frz"), ["-o", "hard.frz", "keep.frz"], "keep.frz"),
        (lambda: None, ["-o", "./keep.frz", "keep.frz"], "keep.frz"),
        (lambda: None, ["-o", "keep.frz", "."], "keep.frz"),  # found inside a linted folder
        (lambda: None, ["--no-run", "-o", "train.py", "train.py"], "train.py"),
    ],
)
def test_output_that_is_an_input_is_refused(setup, args: list[str], given: str) -> None:
    Path("keep.frz").write_text(RULES, encoding="utf-8")
    Path("train.py").write_text("x = 1\n", encoding="utf-8")
    setup()
    before = {p: Path(p).read_bytes() for p in ("keep.frz", "train.py")}
    result = lint(*args)
    assert result.exit_code == 2, result.output
    assert "is one of the inputs" in result.stderr and given in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert {p: Path(p).read_bytes() for p in before} == before
    assert not [p for p in os.listdir(".") if p.endswith(".tmp")]


def test_report_is_written_atomically_and_keeps_the_old_file_on_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Path("keep.frz").write_text(RULES, encoding="utf-8")
    Path("report.txt").write_text("old report\n", encoding="utf-8")
    assert lint("-o", "report.txt", "keep.frz").exit_code == 0
    assert Path("report.txt").read_text(encoding="utf-8") == "All checks passed.\n"

    def boom(*a: object, **k: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr("freezedsl.lint.cli.render", boom)
    Path("report.txt").write_text("old report\n", encoding="utf-8")
    result = lint("-o", "report.txt", "keep.frz")
    assert result.exit_code == 130
    assert result.stderr.startswith("freezedsl: interrupted")
    assert Path("report.txt").read_text(encoding="utf-8") == "old report\n"
    assert sorted(os.listdir(".")) == ["keep.frz", "report.txt"]


def test_report_folder_missing_is_one_line_before_any_work() -> None:
    Path("keep.frz").write_text(RULES, encoding="utf-8")
    result = lint("-o", "nodir/report.txt", "keep.frz")
    assert result.exit_code == 2
    assert result.stderr == (
        "freezedsl: cannot write nodir/report.txt: directory nodir does not exist; create it first\n"
    )


def test_sigint_during_lint_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    Path("keep.frz").write_text(RULES, encoding="utf-8")

    def interrupted(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "lint_paths", interrupted)
    result = lint("keep.frz")
    assert result.exit_code == 130
    assert result.stderr == (
        "freezedsl: interrupted (files are written atomically: each is complete or untouched)\n"
    )


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("bom.py", b"\xef\xbb\xbfimport torch\nx = 1\n"),
        ("latin1.py", b"# -*- coding: latin-1 -*-\ns = 'caf\xe9'\n"),
        ("cp1252.py", b"# vim: set fileencoding=cp1252 :\ns = '\x80'\n"),
        ("bom_cookie.py", b"\xef\xbb\xbf# coding: utf-8\ns = 'caf\xc3\xa9'\n"),
    ],
)
def test_python_reads_sources_like_python(name: str, data: bytes) -> None:
    """A file Python runs is linted, not flagged FZ002 nor refused as unreadable."""
    Path(name).write_bytes(data)
    compile(data, name, "exec")  # Python accepts it
    result = lint("--no-run", name)
    assert result.exit_code == 0, result.output
    assert result.stdout == "All checks passed.\n"


def test_read_source_decodes_like_python() -> None:
    Path("latin1.py").write_bytes(b"# -*- coding: latin-1 -*-\ns = 'caf\xe9'\n")
    Path("bom.frz").write_bytes(b"\xef\xbb\xbf" + RULES.encode())
    assert "café" in runner.read_source("latin1.py")
    assert runner.read_source("bom.frz") == RULES


def test_undecodable_python_is_one_line_exit_2() -> None:
    Path("bad.py").write_bytes(b"# coding: no-such-codec\nx = 1\n")
    Path("bad2.py").write_bytes(b"s = '\xff'\n")
    for name in ("bad.py", "bad2.py"):
        result = lint("--no-run", name)
        assert result.exit_code == 2
        assert result.stderr.startswith(f"freezedsl: {name}: cannot read file:")


def test_oversized_rule_file_is_one_located_line_in_lint() -> None:
    from freezedsl.syntax.parser import MAX_SOURCE_BYTES

    Path("big.frz").write_bytes(b"# padding\n" * (MAX_SOURCE_BYTES // 10 + 1))
    result = lint("big.frz")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"freezedsl: big.frz: rule file is {MAX_SOURCE_BYTES + 10 - MAX_SOURCE_BYTES % 10} bytes; "
        f"the limit is {MAX_SOURCE_BYTES} bytes (1 MiB)"
    )
    assert len(result.stderr.strip().splitlines()) == 1
