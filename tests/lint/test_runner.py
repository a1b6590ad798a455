"""The lint runner as a library: selection, noqa, file collection, settings, script runs.

The check providers are replaced by fakes that flag ``!FZnnn`` markers in the source, so
these tests pin the runner's behaviour independently of the real checks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from freezedsl.errors import FreezeError, UsageError
from freezedsl.lint import runner
from freezedsl.lint.config import ConfigError, LintConfig, load_config, path_matches
from freezedsl.lint.registry import Diagnostic, Rule, Severity, diag

REPO = Path(__file__).resolve().parents[2]


def _rule(code: str, name: str, severity: Severity = Severity.WARNING) -> Rule:
    return Rule(code, name, severity, f"Summary of {name}.", "what", "why", "ex", "use")


FAKE_RULES = {
    r.code: r
    for r in (
        _rule("FZ001", "rule-syntax-error", Severity.ERROR),
        _rule("FZ101", "fake-rule-file"),
        _rule("FZ201", "fake-import", Severity.ERROR),
        _rule("FZ204", "fake-optimizer"),
        _rule("FZ206", "fake-other"),
        _rule("FZ301", "fake-runtime", Severity.ERROR),
    )
}

MARK = re.compile(r"!(FZ\d{3})")


def fake_check(path: str, text: str, model: object | None = None) -> list[Diagnostic]:
    """One finding per ``!FZnnn`` marker, at the marker."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        for m in MARK.finditer(line):
            out.append(
                diag(
                    FAKE_RULES[m.group(1)],
                    f"marker {m.group(1)}",
                    path,
                    line=number,
                    col=m.start() + 1,
                )
            )
    return out


@dataclass
class FakeRun:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    exit_code: int | None = 0
    stopped_at_step: bool = False
    crashed: str | None = None
    models: list[str] = field(default_factory=lambda: ["model"])
    optimizers: list[str] = field(default_factory=lambda: ["optimizer"])


@dataclass
class Fakes:
    run: FakeRun = field(default_factory=FakeRun)
    calls: list[tuple[str, list[str], dict[str, Any]]] = field(default_factory=list)
    models: list[tuple[str, str | None, bool]] = field(default_factory=list)
    seen_model: list[object] = field(default_factory=list)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Fakes:
    f = Fakes()

    def run_script(script: str, args: list[str], **kw: Any) -> FakeRun:
        f.calls.append((script, list(args), kw))
        return f.run

    def rule_check(path: str, text: str, model: object | None = None) -> list[Diagnostic]:
        f.seen_model.append(model)
        return fake_check(path, text)

    def load_model(spec: str, arch: str | None, trust: bool) -> object:
        f.models.append((spec, arch, trust))
        return "MODULE"

    monkeypatch.setattr(runner, "load_rules", lambda **kw: FAKE_RULES)
    monkeypatch.setattr(runner, "_python_checker", lambda: fake_check)
    monkeypatch.setattr(runner, "_rule_checker", lambda: rule_check)
    monkeypatch.setattr(runner, "_script_runner", lambda: run_script)
    monkeypatch.setattr(runner, "_load_model", load_model)
    monkeypatch.chdir(tmp_path)
    return f


def write(path: str, text: str) -> str:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return path


def codes(report: runner.LintReport) -> list[str]:
    return [d.code for d in report.diagnostics]


# --------------------------------------------------------------------------- selection


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        (LintConfig(), {"FZ001", "FZ101", "FZ201", "FZ204", "FZ206", "FZ301"}),
        (LintConfig(select=("FZ2",)), {"FZ201", "FZ204", "FZ206"}),
        (LintConfig(select=("FZ2",), ignore=("FZ204",)), {"FZ201", "FZ206"}),
        (
            LintConfig(ignore=("FZ2",), extend_select=("FZ204",)),
            {"FZ001", "FZ101", "FZ204", "FZ301"},
        ),
        (LintConfig(select=("FZ204",), ignore=("FZ204",)), set()),  # tie: ignore wins
        (
            LintConfig(select=("ALL",), extend_ignore=("FZ0", "FZ1")),
            {"FZ201", "FZ204", "FZ206", "FZ301"},
        ),
        (LintConfig(select=("FZ1",), extend_select=("FZ301",)), {"FZ101", "FZ301"}),
        (LintConfig(select=()), set()),
    ],
)
def test_selection_longest_prefix_wins(cfg: LintConfig, expected: set[str]) -> None:
    assert runner.resolve_selection(cfg, FAKE_RULES) == expected


def test_selection_is_order_independent() -> None:
    a = LintConfig(select=("FZ2", "FZ1"), ignore=("FZ206", "FZ101"))
    b = LintConfig(select=("FZ1", "FZ2"), ignore=("FZ101", "FZ206"))
    assert runner.resolve_selection(a, FAKE_RULES) == runner.resolve_selection(b, FAKE_RULES)


def test_unknown_prefix_is_an_error_with_a_suggestion() -> None:
    with pytest.raises(UsageError, match=r"unknown rule code 'FZ3011'; did you mean FZ301\?"):
        runner.check_codes(["FZ2", "FZ3011"], FAKE_RULES, "--select")
    with pytest.raises(UsageError, match="ignore: unknown rule code 'FZ9'"):
        runner.resolve_selection(LintConfig(ignore=("FZ9",)), FAKE_RULES)


# --------------------------------------------------------------------------- noqa


def test_parse_noqa_forms() -> None:
    # 1 file-level codes; 2 all codes; 3 codes then prose; 4 no spaces, upper-case
    # keyword; 5 lower-case code (case-insensitive); 6 another tool's code;
    # 7 file-level form not on its own line: not file-level
    text = """# freezedsl: noqa: FZ3, FZ101
a = 1  # noqa
b = 2  # noqa: FZ204,FZ206 reason
c = 3  #NOQA:FZ201
d = 4  # noqa: fz204
e = 5  # noqa: E501
f = 6  # freezedsl: noqa
"""
    noqa = runner.parse_noqa(text)
    assert not noqa.file_all
    assert noqa.file_codes == ("FZ3", "FZ101")
    assert noqa.lines == {
        2: None,
        3: ("FZ204", "FZ206"),
        4: ("FZ201",),
        5: ("FZ204",),
        6: ("E501",),
    }

    def hit(code: str, line: int | None) -> bool:
        return noqa.suppresses(Diagnostic(code, "m", "x.py", line=line))

    assert hit("FZ204", 2) and hit("FZ206", 3) and not hit("FZ201", 3)
    assert hit("FZ201", 4) and hit("FZ204", 5) and not hit("FZ206", 5) and not hit("FZ204", 6)
    # a code list that does not parse suppresses nothing
    assert runner.parse_noqa("x = 1  # noqa: FZ-204\n").lines == {}
    assert hit("FZ301", None) and hit("FZ101", 9) and not hit("FZ204", None)


def test_file_level_noqa_all() -> None:
    noqa = runner.parse_noqa('"""doc"""\n\n    # freezedsl: noqa\nx = 1\n')
    assert noqa.file_all
    assert noqa.suppresses(Diagnostic("FZ204", "m", "x.py", line=4))


def test_noqa_applies_to_python_and_rule_files(fakes: Fakes) -> None:
    write(
        "a.py", "x = 1  # !FZ204 noqa: FZ204\ny = 2  # !FZ201 !FZ206 # noqa: FZ2\nz = 3  # !FZ206\n"
    )
    write("r.frz", "freeze all  # !FZ101 # noqa\nunfreeze head  # !FZ101\n")
    report = runner.lint_paths(["."], LintConfig())
    assert [d.format() for d in report.diagnostics] == [
        "a.py:1:10: FZ204 marker FZ204",  # "noqa" without "#" is not a comment directive
        "a.py:3:10: FZ206 marker FZ206",
        "r.frz:2:18: FZ101 marker FZ101",
    ]
    assert report.suppressed == 3


# --------------------------------------------------------------------------- files


def test_collect_files_recurses_and_skips(fakes: Fakes) -> None:
    for name in [
        "pkg/a.py",
        "pkg/sub/b.frz",
        "pkg/notes.txt",
        "pkg/.hidden/c.py",
        "pkg/__pycache__/d.py",
        "venv/e.py",
        ".venv/f.py",
        "build/g.py",
        "dist/h.py",
        "node_modules/i.py",
        "top.py",
        "migrations/m.py",
        "pkg/gen_x.py",
    ]:
        write(name, "")
    cfg = LintConfig(exclude=("migrations", "pkg/gen_*.py"), root=Path.cwd())
    assert runner.collect_files(["."], cfg) == [
        os.path.join("pkg", "a.py"),
        os.path.join("pkg", "sub", "b.frz"),
        "top.py",
    ]
    # named files: exclude still applies (pre-commit names files), duplicates collapse
    assert runner.collect_files(["top.py", "./top.py", "migrations/m.py", "pkg"], cfg) == [
        "top.py",
        os.path.join("pkg", "a.py"),
        os.path.join("pkg", "sub", "b.frz"),
    ]
    # a hidden directory named explicitly is walked
    assert runner.collect_files([os.path.join("pkg", ".hidden")], cfg) == [
        os.path.join("pkg", ".hidden", "c.py")
    ]


def test_collect_files_errors(fakes: Fakes) -> None:
    write("notes.txt", "")
    with pytest.raises(UsageError, match="notes.txt: unsupported file type"):
        runner.collect_files(["notes.txt"], LintConfig())
    with pytest.raises(UsageError, match="missing.py: no such file or directory"):
        runner.collect_files(["missing.py"], LintConfig())


@pytest.mark.parametrize(
    ("pattern", "path", "hit"),
    [
        ("tests", "tests/test_a.py", True),
        ("tests", "src/tests/test_a.py", True),
        ("test_*.py", "src/tests/test_a.py", True),
        ("tests/", "tests/x.py", True),
        ("src/gen", "src/gen/x.py", True),
        ("src/gen", "other/src/gen/x.py", False),
        ("src/*.py", "src/a/b.py", True),
        ("./src/a.py", "src/a.py", True),
        ("*.frz", "rules/a.frz", True),
        ("*.frz", "rules/a.py", False),
    ],
)
def test_path_matches(pattern: str, path: str, hit: bool) -> None:
    assert path_matches(pattern, path) is hit


def test_unreadable_file_is_reported_and_others_still_checked(fakes: Fakes) -> None:
    Path("bad.py").write_bytes(b"\xff\xfe\x00bad")
    write("good.py", "x = 1  # !FZ204\n")
    report = runner.lint_paths(["bad.py", "good.py"], LintConfig())
    assert codes(report) == ["FZ204"]
    assert len(report.errors) == 1 and report.errors[0].startswith("bad.py: cannot read file")
    assert report.exit_code() == 2


def test_provider_bug_names_the_file(fakes: Fakes, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(path: str, text: str) -> list[Diagnostic]:
        raise KeyError("oops")

    monkeypatch.setattr(runner, "_python_checker", lambda: boom)
    write("a.py", "")
    with pytest.raises(RuntimeError, match="checking a.py failed: KeyError"):
        runner.lint_paths(["a.py"], LintConfig())

    def user_error(path: str, text: str) -> list[Diagnostic]:
        raise FreezeError("bad input", path=path)

    monkeypatch.setattr(runner, "_python_checker", lambda: user_error)
    with pytest.raises(FreezeError, match="bad input"):
        runner.lint_paths(["a.py"], LintConfig())


def test_model_loaded_only_for_rule_files(fakes: Fakes) -> None:
    write("a.py", "")
    runner.lint_paths(["a.py"], LintConfig(), model="pkg:make")
    assert fakes.models == []
    write("r.frz", "")
    write("s.frz", "")
    runner.lint_paths(["."], LintConfig(), model="ckpt.pt", arch="pkg:make", trust_pickle=True)
    assert fakes.models == [("ckpt.pt", "pkg:make", True)]
    assert fakes.seen_model == ["MODULE", "MODULE"]


# --------------------------------------------------------------------------- settings


def test_load_config_reads_both_tables(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.freezedsl]\nselect = ['FZ2']\n"
        "[tool.freezedsl.lint]\nignore = 'FZ204, FZ206'\nsteps = 3\nexclude = ['gen']\n"
        "[tool.freezedsl.lint.per-file-ignores]\n'tests/*' = ['FZ201']\n"
    )
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    (tmp_path / "a" / "pyproject.toml").write_text(
        "[project]\nname = 'nested'\n"
    )  # no table: skipped
    cfg = load_config(start=sub)
    assert cfg.select == ("FZ2",)
    assert cfg.ignore == ("FZ204", "FZ206")
    assert cfg.steps == 3 and cfg.exclude == ("gen",)
    assert cfg.per_file_ignores == (("tests/*", ("FZ201",)),)
    assert cfg.root == tmp_path.resolve()
    assert cfg.ignored_for(tmp_path / "tests" / "t.py") == ("FZ201",)
    assert cfg.ignored_for(tmp_path / "src" / "t.py") == ()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "[tool.freezedsl.lint]\nselekt = ['FZ2']\n",
            "unknown key 'selekt' in [tool.freezedsl.lint]",
        ),
        ("[tool.freezedsl]\nbogus = 1\n", "unknown key 'bogus' in [tool.freezedsl]"),
        ("[tool.freezedsl]\nselect=['FZ2']\n[tool.freezedsl.lint]\nselect=['FZ1']\n", "both"),
        ("[tool.freezedsl.lint]\nselect = [1]\n", "select: expected rule codes as strings"),
        ("[tool.freezedsl.lint]\nselect = ['FZ-2']\n", "malformed rule code 'FZ-2'"),
        ("[tool.freezedsl.lint]\nsteps = -1\n", "steps must be a non-negative integer"),
        ("[tool.freezedsl.lint]\nexclude = 3\n", "exclude must be a list"),
        ("[tool.freezedsl.lint]\nper-file-ignores = ['x']\n", "per-file-ignores must be a table"),
        ("[tool.freezedsl.lint\n", "invalid TOML"),
    ],
)
def test_bad_settings_are_one_line_errors(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_config(start=tmp_path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_code_in_settings_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.freezedsl.lint.per-file-ignores]\n'tests/*' = ['FZ999']\n"
    )
    cfg = load_config(start=tmp_path)
    with pytest.raises(UsageError, match=r"per-file-ignores 'tests/\*': unknown rule code 'FZ999'"):
        runner.resolve_selection(cfg, FAKE_RULES)


def test_explicit_config_path(tmp_path: Path) -> None:
    cfg_file = tmp_path / "conf" / "lint.toml"
    cfg_file.parent.mkdir()
    cfg_file.write_text("[tool.freezedsl.lint]\nselect = ['FZ1']\n")
    cfg = load_config(cfg_file, start=tmp_path)
    assert cfg.select == ("FZ1",) and cfg.root == cfg_file.parent.resolve()
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_no_settings_file_means_defaults(tmp_path: Path) -> None:
    cfg = load_config(start=tmp_path)
    assert cfg == LintConfig(root=tmp_path.resolve())


def test_cli_overrides_are_a_layer_of_their_own() -> None:
    cfg = LintConfig(
        select=("FZ1",), extend_select=("FZ3",), ignore=("FZ101",), extend_ignore=("FZ2",)
    )
    assert cfg.with_overrides(select=["FZ2"]).select == ("FZ1",)  # the file's layer stays
    assert cfg.with_overrides(select=["FZ2"]).cli.select == ("FZ2",)
    # --ignore and --extend-ignore are one option, as in ruff
    both = cfg.with_overrides(ignore=["FZ3"], extend_ignore=["FZ0"])
    assert both.cli.ignore == ("FZ3", "FZ0") and both.ignore == ("FZ101",)
    assert cfg.with_overrides(extend_exclude=["x"], steps=4).exclude == ("x",)
    assert cfg.with_overrides(steps=4).steps == 4


@pytest.mark.parametrize(
    ("file", "cli", "expected"),
    [
        # ruff's documented example: select E,F / ignore F401; `--select F401` is F401 only
        (LintConfig(select=("FZ2",), ignore=("FZ204",)), {"select": ["FZ204"]}, {"FZ204"}),
        # ... and `--extend-select B` keeps the file's ignore
        (
            LintConfig(select=("FZ2",), ignore=("FZ204",)),
            {"extend_select": ["FZ3"]},
            {"FZ201", "FZ206", "FZ301"},
        ),
        # --ignore adds to the file's ignores: a project's disabled code stays disabled
        (
            LintConfig(ignore=("FZ206",)),
            {"ignore": ["FZ201"]},
            {"FZ001", "FZ101", "FZ204", "FZ301"},
        ),
        # a command-line adjustment beats a longer prefix of the file
        (LintConfig(ignore=("FZ204",)), {"extend_select": ["FZ2"]}, set(FAKE_RULES)),
        (
            LintConfig(extend_select=("FZ204",), ignore=("FZ2",)),
            {"ignore": ["FZ2"]},
            {"FZ001", "FZ101", "FZ301"},
        ),
        # within the command-line layer the longest prefix wins, ignore on a tie
        (
            LintConfig(),
            {"ignore": ["FZ2"], "extend_select": ["FZ204"]},
            {"FZ001", "FZ101", "FZ204", "FZ301"},
        ),
        (LintConfig(), {"select": ["FZ2"], "ignore": ["FZ2"]}, set()),
    ],
)
def test_command_line_layer_like_ruff(
    file: LintConfig, cli: dict[str, list[str]], expected: set[str]
) -> None:
    assert runner.resolve_selection(file.with_overrides(**cli), FAKE_RULES) == expected


def test_per_file_ignores_filter(fakes: Fakes) -> None:
    write("tests/t.py", "x  # !FZ201 !FZ204\n")
    write("src/s.py", "x  # !FZ201\n")
    cfg = LintConfig(per_file_ignores=(("tests", ("FZ2",)),), root=Path.cwd())
    report = runner.lint_paths(["."], cfg)
    assert [d.path for d in report.diagnostics] == [os.path.join("src", "s.py")]
    assert report.suppressed == 2


# --------------------------------------------------------------------------- script runs


def test_lint_script_merges_runtime_findings(fakes: Fakes) -> None:
    write("train.py", "# freezedsl: noqa: FZ206\nmodel = 1  # !FZ204\n")
    fakes.run.diagnostics = [
        diag(FAKE_RULES["FZ301"], "frozen param changed", "train.py", obj="fc.weight"),
        diag(
            FAKE_RULES["FZ204"], "in optimizer", "train.py", line=2, col=1
        ),  # same line as the static one
        diag(FAKE_RULES["FZ206"], "suppressed file-wide", "train.py"),
        diag(FAKE_RULES["FZ301"], "frozen param changed", "train.py", obj="fc.weight"),  # dup
    ]
    report = runner.lint_script("train.py", ["cfg.yaml"], LintConfig(steps=2), timeout=9.0)
    assert fakes.calls == [("train.py", ["cfg.yaml"], {"steps": 2, "timeout": 9.0})]
    assert [(d.code, d.line) for d in report.diagnostics] == [
        ("FZ204", 2),
        ("FZ204", 2),
        ("FZ301", None),
    ]
    assert report.suppressed == 1
    assert report.run is not None and report.run.failure() is None
    assert report.exit_code() == 1 and report.exit_code(exit_zero=True) == 0


def test_runtime_paths_under_cwd_become_relative(fakes: Fakes) -> None:
    write("train.py", "")
    outside = str(Path("/nonexistent/elsewhere.py"))
    fakes.run.diagnostics = [
        diag(FAKE_RULES["FZ301"], "changed", str(Path("train.py").resolve()), obj="w"),
        diag(FAKE_RULES["FZ301"], "changed", outside, obj="w"),
    ]
    report = runner.lint_script("train.py", [], LintConfig())
    assert [d.path for d in report.diagnostics] == [outside, "train.py"]


@pytest.mark.parametrize(
    ("run", "failure"),
    [
        (FakeRun(exit_code=3), "train.py exited with code 3"),
        (
            FakeRun(exit_code=1, crashed="ValueError: bad (train.py:12)"),
            "train.py crashed: ValueError: bad (train.py:12)",
        ),
        (FakeRun(exit_code=None), None),  # stopped at the timeout: the checks report it
        (FakeRun(exit_code=None, stopped_at_step=True), None),
        (FakeRun(exit_code=-9, stopped_at_step=True), None),
    ],
)
def test_script_failure(fakes: Fakes, run: FakeRun, failure: str | None) -> None:
    write("train.py", "")
    fakes.run = run
    report = runner.lint_script("train.py", [], LintConfig())
    assert report.run is not None and report.run.failure() == failure
    expected = 1 if failure else 0
    assert report.exit_code() == expected and report.exit_code(exit_zero=True) == expected


def test_lint_script_missing(fakes: Fakes) -> None:
    with pytest.raises(UsageError, match="nope.py: no such file"):
        runner.lint_script("nope.py", [], LintConfig())
    assert fakes.calls == []


# --------------------------------------------------------------------------- import cost


def test_importing_the_lint_machinery_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import freezedsl.lint.runner, freezedsl.lint.output, freezedsl.lint.config, freezedsl.lint.cli\n"
        "import freezedsl.lint\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
