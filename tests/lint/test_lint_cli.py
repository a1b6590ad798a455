"""``freezedsl lint`` and ``freezedsl rule`` through click's CliRunner.

Checks are faked (a finding per ``!FZnnn`` marker) so these tests pin the command line,
settings and exit codes, not the checks. One end-to-end test uses the real static
checks when they exist.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from freezedsl.lint import runner
from freezedsl.lint.cli import lint_command, rule_command, split_script_args
from freezedsl.lint.registry import Diagnostic, Rule, Severity, diag

REPO = Path(__file__).resolve().parents[2]


def _rule(code: str, name: str, severity: Severity = Severity.WARNING) -> Rule:
    return Rule(code, name, severity, f"Summary of {name}.", "What.", "Why.", "bad()", "good()")


FAKE_RULES = {
    r.code: r
    for r in (
        _rule("FZ001", "rule-syntax-error", Severity.ERROR),
        _rule("FZ101", "fake-rule-file"),
        _rule("FZ201", "fake-import", Severity.ERROR),
        _rule("FZ204", "frozen-param-in-optimizer"),
        _rule("FZ206", "fake-other"),
        _rule("FZ301", "fake-runtime", Severity.ERROR),
    )
}
MARK = re.compile(r"!(FZ\d{3})")


def fake_check(path: str, text: str, model: object | None = None) -> list[Diagnostic]:
    return [
        diag(FAKE_RULES[m.group(1)], f"marker {m.group(1)}", path, line=n, col=m.start() + 1)
        for n, line in enumerate(text.splitlines(), start=1)
        for m in MARK.finditer(line)
    ]


@dataclass
class FakeRun:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    exit_code: int | None = 0
    stopped_at_step: bool = False
    crashed: str | None = None
    models: list[str] = field(default_factory=lambda: ["model"])
    optimizers: list[str] = field(default_factory=lambda: ["opt"])
    timed_out: bool = False


@dataclass
class Fakes:
    run: FakeRun = field(default_factory=FakeRun)
    calls: list[tuple[str, list[str], dict[str, Any]]] = field(default_factory=list)
    load_rules: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Fakes:
    f = Fakes()

    def run_script(script: str, args: list[str], **kw: Any) -> FakeRun:
        f.calls.append((script, list(args), kw))
        return f.run

    def load_rules(**kw: Any) -> dict[str, Rule]:
        f.load_rules.append(kw)
        return FAKE_RULES

    monkeypatch.setattr(runner, "load_rules", load_rules)
    monkeypatch.setattr(runner, "_python_checker", lambda: fake_check)
    monkeypatch.setattr(runner, "_rule_checker", lambda: fake_check)
    monkeypatch.setattr(runner, "_script_runner", lambda: run_script)
    monkeypatch.chdir(tmp_path)
    return f


def write(path: str, text: str = "") -> str:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return path


def lint(*args: str) -> Result:
    return CliRunner().invoke(lint_command, list(args))


def found(result: Result) -> list[str]:
    """``path:line CODE`` of every finding line in text output."""
    out = []
    for line in result.stdout.splitlines():
        m = re.match(r"^(\S+?):(\d+):\d+: (FZ\d+) ", line)
        if m:
            out.append(f"{m.group(1)}:{m.group(2)} {m.group(3)}")
    return out


@pytest.fixture
def project(fakes: Fakes) -> Fakes:
    write("src/model.py", "a  # !FZ201\nb  # !FZ204\nc  # !FZ206\n")
    write("rules/freeze.frz", "freeze x  # !FZ101\n")
    return fakes


SRC = os.path.join("src", "model.py")
FRZ = os.path.join("rules", "freeze.frz")


# --------------------------------------------------------------------------- basics


def test_text_output_and_exit_code(project: Fakes) -> None:
    result = lint("--no-run", ".")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{FRZ}:1:13: FZ101 marker FZ101",
        f"{SRC}:1:6: FZ201 marker FZ201",
        f"{SRC}:2:6: FZ204 marker FZ204",
        f"{SRC}:3:6: FZ206 marker FZ206",
        "Found 4 problems (1 error, 3 warnings).",
    ]
    assert result.stderr == ""


def test_clean_run_and_default_path(fakes: Fakes) -> None:
    write("ok.py", "x = 1\n")
    for args in ([], ["."], ["--no-run"]):
        result = lint(*args)
        assert (result.exit_code, result.stdout) == (0, "All checks passed.\n")


def test_exit_zero_and_quiet(project: Fakes) -> None:
    result = lint("--exit-zero", "-q", "src")
    assert result.exit_code == 0
    assert result.stdout.count("\n") == 3 and "Found" not in result.stdout


def test_options_after_paths(project: Fakes) -> None:
    """Without a script, options may stand anywhere (pre-commit appends file names)."""
    assert found(lint("src", "--select", "FZ204")) == [f"{SRC}:2 FZ204"]
    assert found(lint("--no-run", SRC, "--select=FZ204", FRZ)) == [f"{SRC}:2 FZ204"]


# --------------------------------------------------------------------------- selection


@pytest.mark.parametrize(
    ("args", "codes"),
    [
        (["--select", "FZ2"], ["FZ201", "FZ204", "FZ206"]),
        (["--select", "FZ2", "--ignore", "FZ204"], ["FZ201", "FZ206"]),
        (["--select", "fz201,FZ101"], ["FZ101", "FZ201"]),
        (["--select", "FZ201", "--select", "FZ101"], ["FZ101", "FZ201"]),
        (["--ignore", "FZ2", "--extend-select", "FZ204"], ["FZ101", "FZ204"]),
        (["--extend-ignore", "FZ1,FZ201 FZ204"], ["FZ206"]),
        (["--select", "ALL", "--ignore", "FZ1"], ["FZ201", "FZ204", "FZ206"]),
    ],
)
def test_select_ignore(project: Fakes, args: list[str], codes: list[str]) -> None:
    result = lint("--no-run", ".", *args)
    assert sorted(f.split()[1] for f in found(result)) == codes


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--select", "FZ9"], "freezedsl: --select: unknown rule code 'FZ9'\n"),
        (
            ["--ignore", "FZ2045"],
            "freezedsl: --ignore: unknown rule code 'FZ2045'; did you mean FZ204?\n",
        ),
        (["--extend-select", "F-1"], "freezedsl: --extend-select: malformed rule code 'F-1'\n"),
        (["--format", "xml"], None),
        (["--bogus"], "freezedsl lint: No such option"),
        (["--steps", "x", "--no-run"], None),
        (
            ["--statistics", "--format", "sarif"],
            "freezedsl: --statistics works with --format text, grouped or json\n",
        ),
        (["missing.py", "--no-run"], "freezedsl: missing.py: no such file or directory\n"),
        (["notes.txt"], "freezedsl: notes.txt: unsupported file type (expected .py or .frz)\n"),
    ],
)
def test_usage_errors_are_one_line(project: Fakes, args: list[str], message: str | None) -> None:
    write("notes.txt")
    result = lint(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    if message is not None:
        assert message in result.stderr


# --------------------------------------------------------------------------- noqa


def test_noqa_forms(fakes: Fakes) -> None:
    write(
        "a.py",
        "x  # !FZ201 # noqa\n"
        "y  # !FZ201 !FZ204 # noqa: FZ204\n"
        "z  # !FZ204 !FZ206 # noqa: FZ204, FZ206\n"
        "w  # !FZ204 # noqa: E501\n"
        "v  # !FZ204 # NOQA:FZ2\n",
    )
    write("b.py", "# freezedsl: noqa\nx  # !FZ201\n")
    write("c.py", '"""Doc."""\n# freezedsl: noqa: FZ204, FZ206\nx  # !FZ201 !FZ204 !FZ206\n')
    write(
        "d.frz",
        "# freezedsl: noqa: FZ1\nfreeze x  # !FZ101\nfreeze y  # !FZ001 # noqa\nfreeze z  # !FZ001\n",
    )
    assert found(lint("--no-run", ".")) == [
        "a.py:2 FZ201",
        "a.py:4 FZ204",
        "c.py:3 FZ201",
        "d.frz:4 FZ001",
    ]


# --------------------------------------------------------------------------- settings


def test_config_from_pyproject(project: Fakes) -> None:
    write("pyproject.toml", "[tool.freezedsl.lint]\nselect = ['FZ2']\nignore = ['FZ206']\n")
    assert found(lint(".")) == [f"{SRC}:1 FZ201", f"{SRC}:2 FZ204"]
    # CLI options override settings
    assert found(lint(".", "--select", "FZ1")) == [f"{FRZ}:1 FZ101"]
    # as in ruff, --ignore adds to the file's ignore: FZ206 stays off
    assert found(lint(".", "--ignore", "FZ201")) == [f"{SRC}:2 FZ204"]
    assert found(lint(".", "--extend-ignore", "FZ201")) == [f"{SRC}:2 FZ204"]
    assert found(lint(".", "--extend-select", "FZ101")) == [
        f"{FRZ}:1 FZ101",
        f"{SRC}:1 FZ201",
        f"{SRC}:2 FZ204",
    ]


def test_config_found_upward_and_globs_relative_to_it(project: Fakes) -> None:
    write(
        "pyproject.toml",
        "[tool.freezedsl]\nexclude = ['rules']\n"
        "[tool.freezedsl.lint.per-file-ignores]\n'src/*.py' = ['FZ201', 'FZ206']\n",
    )
    os.chdir("src")
    result = lint(".", "..")
    assert found(result) == ["model.py:2 FZ204"]


def test_explicit_config_option(project: Fakes) -> None:
    write("cfg/lint.toml", "[tool.freezedsl.lint]\nselect = ['FZ101']\n")
    write("pyproject.toml", "[tool.freezedsl.lint]\nselect = ['FZ201']\n")
    assert found(lint("--config", "cfg/lint.toml", ".")) == [f"{FRZ}:1 FZ101"]
    assert found(lint(".", "--config", "cfg/lint.toml")) == [f"{FRZ}:1 FZ101"]


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        (
            "[tool.freezedsl.lint]\nselct = ['FZ2']\n",
            "unknown key 'selct' in [tool.freezedsl.lint]",
        ),
        ("[tool.freezedsl.lint]\nignore = ['FZ999']\n", "ignore: unknown rule code 'FZ999'"),
        (
            "[tool.freezedsl.lint.per-file-ignores]\n'x' = ['FZ7']\n",
            "per-file-ignores 'x': unknown rule code 'FZ7'",
        ),
        ("[tool.freezedsl.lint]\nsteps = 'many'\n", "steps must be a non-negative integer"),
    ],
)
def test_config_errors(project: Fakes, toml: str, needle: str) -> None:
    write("pyproject.toml", toml)
    result = lint(".")
    assert result.exit_code == 2
    assert result.stderr.startswith("freezedsl: ") and needle in result.stderr
    assert result.stderr.count("\n") == 1


def test_settings_do_not_depend_on_argument_order(project: Fakes) -> None:
    write("pyproject.toml", "[tool.freezedsl.lint]\nextend-ignore = ['FZ206']\n")
    a = lint("--no-run", "--ignore", "FZ204", SRC, FRZ)
    b = lint(FRZ, SRC, "--no-run", "--ignore", "FZ204")
    assert a.stdout == b.stdout and found(a) == [f"{FRZ}:1 FZ101", f"{SRC}:1 FZ201"]
    # as in ruff, --select is a new basis: the file's extend-ignore no longer applies
    c = lint("--no-run", "--select", "FZ2", SRC, FRZ)
    assert found(c) == [f"{SRC}:1 FZ201", f"{SRC}:2 FZ204", f"{SRC}:3 FZ206"]


# --------------------------------------------------------------------------- formats


def test_statistics(project: Fakes) -> None:
    write("more.py", "x  # !FZ204\n")
    result = lint("--statistics", "--no-run", ".")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "    2  FZ204  [warning] frozen-param-in-optimizer",
        "    1  FZ101  [warning] fake-rule-file",
        "    1  FZ201  [error] fake-import",
        "    1  FZ206  [warning] fake-other",
        "Found 5 problems (1 error, 4 warnings).",
    ]
    data = json.loads(lint("--statistics", "--format", "json", ".").stdout)
    assert data[0] == {"code": "FZ204", "name": "frozen-param-in-optimizer", "count": 2}


def test_formats(project: Fakes) -> None:
    data = json.loads(lint("--format", "json", ".").stdout)
    assert [d["code"] for d in data] == ["FZ101", "FZ201", "FZ204", "FZ206"]
    github = lint("--format", "github", ".").stdout.splitlines()
    assert github[1] == f"::error file={SRC},line=1,col=6,title=FZ201::marker FZ201"
    sarif = json.loads(lint("--format=sarif", ".").stdout)
    assert sarif["version"] == "2.1.0" and len(sarif["runs"][0]["results"]) == 4
    grouped = lint("--format", "grouped", "--show-source", ".").stdout
    assert f"{SRC}:\n  1:6 FZ201 marker FZ201\n    a  # !FZ201\n         ^\n" in grouped
    text = lint("--show-source", ".").stdout
    assert f"{SRC}:1:6: FZ201 marker FZ201\n  a  # !FZ201\n       ^\n" in text


def test_output_file(project: Fakes) -> None:
    result = lint("--format", "sarif", "-o", "report.sarif", ".")
    assert result.exit_code == 1 and result.stdout == ""
    assert json.loads(Path("report.sarif").read_text())["version"] == "2.1.0"


# --------------------------------------------------------------------------- directories


def test_directory_recursion_and_exclusion(fakes: Fakes) -> None:
    for name in ["pkg/a.py", "pkg/deep/b.frz", "pkg/.cache/c.py", "pkg/__pycache__/d.py", "venv/e.py",
                 ".venv/f.py", "build/g.py", "dist/h.py", "node_modules/i.py", ".git/j.py", "gen/k.py",
                 "pkg/readme.md"]:  # fmt: skip
        write(name, "x  # !FZ204\n" if name.endswith(".py") else "x  # !FZ101\n")
    result = lint("--extend-exclude", "gen", ".")
    assert found(result) == [
        f"{os.path.join('pkg', 'a.py')}:1 FZ204",
        f"{os.path.join('pkg', 'deep', 'b.frz')}:1 FZ101",
    ]
    assert sorted(found(lint("."))) == sorted(
        [*found(result), f"{os.path.join('gen', 'k.py')}:1 FZ204"]
    )
    # exclude applies to named files too, as pre-commit names them one by one
    write("pyproject.toml", "[tool.freezedsl]\nexclude = ['pkg/deep']\n")
    result = lint("--no-run", "pkg/a.py", "pkg/deep/b.frz")
    assert found(result) == ["pkg/a.py:1 FZ204"]


# --------------------------------------------------------------------------- script runs


def test_script_form_passes_the_rest_to_the_script(fakes: Fakes) -> None:
    write("train.py", "x  # !FZ204\n")
    write("config")
    fakes.run.diagnostics = [
        diag(FAKE_RULES["FZ301"], "frozen param changed", "train.py", obj="fc.weight")
    ]
    result = lint("--steps", "3", "train.py", "config", "--lr", "0.1", "--steps", "9")
    assert fakes.calls == [
        ("train.py", ["config", "--lr", "0.1", "--steps", "9"], {"steps": 3, "timeout": 600.0})
    ]
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "train.py:1:6: FZ204 marker FZ204",
        "train.py: FZ301 frozen param changed [fc.weight]",
        "Found 2 problems (1 error, 1 warning).",
    ]
    assert (
        result.stderr
        == "freezedsl: ran train.py: finished; saw 1 model (model), 1 optimizer (opt)\n"
    )
    assert fakes.load_rules[-1]["runtime"] is True


@pytest.mark.parametrize(
    ("args", "script_args"),
    [
        (["train.py"], []),
        (["train.py", "--", "--lr", "1"], ["--lr", "1"]),
        (["--timeout", "5", "--", "train.py", "a"], ["a"]),
        (["train.py", "a", "--", "b"], ["a", "--", "b"]),
        (["train.py", "--", "--no-run"], ["--no-run"]),
        (["train.py", "--help"], ["--help"]),
    ],
)
def test_script_args(fakes: Fakes, args: list[str], script_args: list[str]) -> None:
    write("train.py")
    result = lint(*args)
    assert result.exit_code == 0, result.output
    assert [c[1] for c in fakes.calls] == [script_args]


def test_steps_and_timeout(fakes: Fakes) -> None:
    write("train.py")
    write("pyproject.toml", "[tool.freezedsl.lint]\nsteps = 4\n")
    lint("train.py")
    lint("--timeout", "2.5", "--steps", "0", "train.py")
    assert [c[2] for c in fakes.calls] == [
        {"steps": 4, "timeout": 600.0},
        {"steps": 0, "timeout": 2.5},
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["--no-run", "train.py", "cfg.py"],
        ["train.py", "cfg.py", "--no-run"],  # a --no-run anywhere before "--" never executes
        ["src", "train.py"],  # the first positional is not a script
    ],
)
def test_no_run(fakes: Fakes, args: list[str]) -> None:
    write("train.py", "x  # !FZ204\n")
    write("cfg.py")
    write("src/a.py")
    result = lint(*args)
    assert fakes.calls == []
    assert found(result) == ["train.py:1 FZ204"]
    assert fakes.load_rules[-1]["runtime"] is False


@pytest.mark.parametrize(
    ("run", "stderr", "exit_code"),
    [
        (FakeRun(exit_code=3), "train.py exited with code 3\n", 1),
        (
            FakeRun(exit_code=1, crashed="ValueError: bad lr (train.py:12)"),
            "train.py crashed: ValueError: bad lr (train.py:12)\n",
            1,
        ),
        (
            FakeRun(exit_code=None, stopped_at_step=True),
            "stopped at its first optimizer.step() (no --steps)",
            0,
        ),
    ],
)
def test_script_failures(fakes: Fakes, run: FakeRun, stderr: str, exit_code: int) -> None:
    write("train.py")
    fakes.run = run
    result = lint("--exit-zero", "train.py")
    assert result.exit_code == exit_code
    assert stderr in result.stderr and result.stderr.count("\n") == 1
    assert result.stdout == "All checks passed.\n"


@pytest.mark.parametrize(
    ("args", "run", "says", "never"),
    [
        (["--steps", "3"], FakeRun(exit_code=None, stopped_at_step=True), "after the requested 3 steps", "first"),
        ([], FakeRun(exit_code=None, stopped_at_step=True), "first optimizer.step()", "requested"),
        ([], FakeRun(exit_code=None, timed_out=True), "stopped at the timeout", "finished;"),
        (["--steps", "3"], FakeRun(exit_code=None, stopped_at_step=True, timed_out=True), "timeout", "requested"),
    ],
)
def test_run_description_matches_the_run(
    fakes: Fakes, args: list[str], run: FakeRun, says: str, never: str
) -> None:
    """Without --steps it never claims "the requested steps"; a timeout never "finished"."""
    write("train.py")
    fakes.run = run
    result = lint("--exit-zero", *args, "train.py")
    assert says in result.stderr and never not in result.stderr


def test_missing_script(fakes: Fakes) -> None:
    result = lint("train.py", "x")
    assert (result.exit_code, result.stderr) == (2, "freezedsl: train.py: no such file\n")


def test_split_script_args() -> None:
    opts = frozenset({"--steps", "--select", "-o"})
    assert split_script_args(["--steps", "2", "t.py", "a"], opts) == (
        ["--steps", "2"],
        "t.py",
        ["a"],
    )
    assert split_script_args(["--steps=2", "t.py"], opts) == (["--steps=2"], "t.py", [])
    assert split_script_args(["-o", "x.py", "t.py"], opts) == (["-o", "x.py"], "t.py", [])
    assert split_script_args(["-q", "t.py", "-q"], opts) == (["-q"], "t.py", ["-q"])
    assert split_script_args(["src", "t.py"], opts) == (["src", "t.py"], None, [])
    assert split_script_args(["t.py", "--no-run"], opts) == (["t.py", "--no-run"], None, [])
    assert split_script_args(["--"], opts) == (["--"], None, [])


# --------------------------------------------------------------------------- errors


def test_internal_error_is_one_line(fakes: Fakes, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(path: str, text: str) -> list[Diagnostic]:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(runner, "_python_checker", lambda: boom)
    write("a.py")
    result = lint("a.py")
    assert result.exit_code == 2
    assert result.stderr == (
        "freezedsl: internal error: RuntimeError: checking a.py failed: ZeroDivisionError: division by zero\n"
    )


def test_unreadable_file_exit_2_but_others_reported(fakes: Fakes) -> None:
    Path("bad.py").write_bytes(b"\xff\xfe\xfa")
    write("good.py", "x  # !FZ204\n")
    result = lint(".")
    assert result.exit_code == 2
    assert found(result) == ["good.py:1 FZ204"]
    assert result.stderr.startswith("freezedsl: bad.py: cannot read file")


# --------------------------------------------------------------------------- rule


def test_rule_command(fakes: Fakes) -> None:
    result = CliRunner().invoke(rule_command, ["fz204"])
    assert result.exit_code == 0 and result.stdout == FAKE_RULES["FZ204"].doc()
    assert (
        CliRunner().invoke(rule_command, ["frozen-param-in-optimizer"]).stdout
        == FAKE_RULES["FZ204"].doc()
    )
    listing = CliRunner().invoke(rule_command, ["--all"]).stdout.splitlines()
    assert len(listing) == len(FAKE_RULES)
    assert listing[3].split() == [
        "FZ204",
        "frozen-param-in-optimizer",
        "warning",
        "Summary",
        "of",
        "frozen-param-in-optimizer.",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["FZ2044"], "freezedsl: unknown rule code 'FZ2044'; did you mean FZ204?\n"),
        (["frozen-param-in-optimiser"], "did you mean frozen-param-in-optimizer?"),
        ([], "give a rule CODE"),
        (["FZ2"], "'FZ2' is a prefix of several codes (FZ201, FZ204, FZ206); give one code"),
        (["FZ204", "--all"], "not both"),
    ],
)
def test_rule_command_errors(fakes: Fakes, args: list[str], message: str) -> None:
    result = CliRunner().invoke(rule_command, args)
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1


# --------------------------------------------------------------------------- real checks


@pytest.mark.skipif(
    importlib.util.find_spec("freezedsl.lint.static") is None,
    reason="static checks not written yet",
)
def test_end_to_end_with_real_static_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real static family through a subprocess: FZ002 for a syntax error, no torch."""
    monkeypatch.chdir(tmp_path)
    write("broken.py", "def f(:\n")
    write("fine.py", "x = 1\n")
    code = (
        "import atexit, os, sys\n"
        "from freezedsl.lint.cli import lint_command\n"
        "def check():\n"
        "    if 'torch' in sys.modules:\n"
        "        sys.stderr.write('static linting imported torch')\n"
        "        os._exit(3)\n"
        "atexit.register(check)\n"
        "lint_command.main(sys.argv[1:])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-c", code, "--no-run", "--format", "json", "."]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert [(d["code"], d["path"], d["line"]) for d in data] == [("FZ002", "broken.py", 1)]


def test_docs_are_in_sync() -> None:
    """docs/lint.md is generated from the registry: ``python tools/gen_lint_docs.py > docs/lint.md``."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "gen_lint_docs.py"), "--check"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout


def test_pre_commit_hooks() -> None:
    text = (REPO / ".pre-commit-hooks.yaml").read_text()
    assert "id: freezedsl-lint" in text and "entry: freezedsl lint --no-run" in text
    assert "id: freezedsl-fmt" in text and "entry: freezedsl fmt --check" in text
    assert r"files: \.(py|frz)$" in text and r"files: \.frz$" in text


def test_runtime_findings_grouped_unless_verbose_or_json(fakes: Fakes) -> None:
    """One finding per mistake in text; --verbose and JSON list every tensor (issue 12)."""
    write("train.py")
    names = [f"layer1.{i}.conv.weight" for i in range(5)]
    fakes.run = FakeRun(
        diagnostics=[Diagnostic("FZ301", f"frozen parameter {n} is in SGD", "train.py", obj=n) for n in names],
        exit_code=None,
        stopped_at_step=True,
    )
    grouped = lint("train.py")
    lines = [ln for ln in grouped.stdout.splitlines() if "FZ301" in ln]
    assert len(lines) == 1 and "layer1 (5 tensors): frozen parameter layer1.0.conv.weight" in lines[0]
    assert grouped.exit_code == 1
    verbose = lint("--verbose", "train.py")
    assert sum("FZ301" in ln for ln in verbose.stdout.splitlines()) == 5
    data = json.loads(lint("--format", "json", "train.py").stdout)
    assert sorted(item["object"] for item in data if item["code"] == "FZ301") == names
