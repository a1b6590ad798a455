"""Fast start of ``freezedsl check`` / ``fmt`` and what it must not change.

benchmarks/bench_startup.py measures the start-up; these tests pin what makes it fast
without changing any behaviour:

* the CLI runs plain ``check``/``fmt`` invocations without importing click (nor torch),
  and starts in under 5x ``python -c pass``; for every such invocation -- files that parse, fail, are missing, stdin,
  diffs, rewrites, odd bytes, a closed pipe -- stdout, stderr, the exit code and the
  files left behind are byte-identical to the click command group's;
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
FREEZEDSL = Path(sys.executable).with_name("freezedsl")


# ------------------------------------------------------------------ what start-up imports


def _imported(args: list[str], cwd: Path = REPO, stdin: str | None = None) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "freezedsl", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
    )
    return {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not (k.startswith("_") and k.endswith("_COMPLETE"))}
    env.pop("FREEZEDSL_DEBUG", None)
    return env


def _heavy(modules: set[str], *names: str) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in names)


@pytest.mark.parametrize(
    "args",
    [["check", "rules/resnet.frz"], ["fmt", "--check", "rules/resnet.frz"], ["fmt", "--diff", "rules/vit.frz"]],
)
def test_check_and_fmt_import_neither_click_nor_torch(args: list[str]) -> None:
    modules = _imported(args)
    assert "freezedsl.syntax.parser" in modules and "lark" in modules  # the run did parse
    assert _heavy(modules, "click", "torch") == []


def test_other_invocations_still_go_through_click() -> None:
    assert "click" in _imported(["check", "--help"])
    assert "click" in _imported(["fmt", "--bogus", "rules/resnet.frz"])


# ------------------------------------------------------------------ how long start-up takes

#: check/fmt start in under this many times ``python -c pass`` (issue 15; measured with
#: wall time in benchmarks/bench_startup.py, results in benchmarks/results/startup.md)
STARTUP_GOAL = 5.0


def _cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    """CPU time (user + system) one run of ``argv`` took. CPU time, not wall time: on a
    loaded machine the wall time of a longer run grows with every other process's share
    of the cores, while its CPU time stays what the run itself needs."""
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        pid = os.posix_spawn(
            argv[0],
            argv,
            env,
            file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)],
        )
    finally:
        os.close(devnull)
    _pid, status, usage = os.wait4(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, argv
    return usage.ru_utime + usage.ru_stime


@pytest.mark.skipif(not hasattr(os, "wait4"), reason="needs os.wait4 for a child's CPU time")
@pytest.mark.parametrize("args", [["check", "rules/resnet.frz"], ["fmt", "--check", "rules/resnet.frz"]])
def test_check_and_fmt_start_in_under_5x_a_bare_interpreter(args: list[str], tmp_path: Path) -> None:
    """Best of 7 interleaved runs each, against ``python -c pass`` measured alongside.
    The first run fills the bytecode and grammar caches, as any earlier run would: the
    bytecode goes to a private ``PYTHONPYCACHEPREFIX`` (as in bench_startup.py), since
    with ``PYTHONDONTWRITEBYTECODE=1`` an editable checkout would compile freezedsl's
    sources at every start, which no installed copy does."""
    env = _env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    bare = [sys.executable, "-c", "pass"]
    command = [sys.executable, "-m", "freezedsl", *args]
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        _cpu_seconds(command, env)
        best_bare = best_command = float("inf")
        for _ in range(7):
            best_bare = min(best_bare, _cpu_seconds(bare, env))
            best_command = min(best_command, _cpu_seconds(command, env))
    finally:
        os.chdir(cwd)
    ratio = best_command / best_bare
    assert ratio < STARTUP_GOAL, f"{' '.join(args)}: {best_command * 1000:.0f} ms of CPU, {ratio:.2f}x python -c pass ({best_bare * 1000:.0f} ms)"


# ------------------------------------------------------------------ the same behaviour as click

#: (id, files, argv, stdin). Every check/fmt shape the fast path takes, and a few it
#: leaves to click (to pin where the line runs).
SCENARIOS: list[tuple[str, dict[str, bytes], list[str], str | None]] = [
    ("check-ok", {"a.frz": b"freeze fc\n"}, ["check", "a.frz"], None),
    ("check-ok-many", {"a.frz": b"freeze fc\n", "b.frz": b"unfreeze x; freeze y\n"}, ["check", "a.frz", "b.frz"], None),
    ("check-missing", {"a.frz": b"freeze fc\n"}, ["check", "a.frz", "missing.frz"], None),
    ("check-syntax-caret", {"bad.frz": b"freeze features\nfreeze features[::0]\n"}, ["check", "bad.frz"], None),
    ("check-syntax-token", {"bad.frz": b"freeze fc unfreeze x\n"}, ["check", "bad.frz"], None),
    ("check-syntax-char", {"bad.frz": b"freeze f$c\n"}, ["check", "bad.frz"], None),
    ("check-findings", {"r.frz": b'freeze name~"layer1"\nunfreeze fc\n'}, ["check", "r.frz"], None),
    ("check-stdin", {}, ["check", "-"], "freeze fc\nexpect trainable 1%..10%\n"),
    ("check-stdin-error", {}, ["check", "-"], "freeze (fc\n"),
    ("check-directory", {"d/x.frz": b"freeze fc\n"}, ["check", "d"], None),
    ("check-empty-arg", {}, ["check", ""], None),
    ("check-not-utf8", {"b.frz": b"freeze fc\xff\n"}, ["check", "b.frz"], None),
    ("check-empty", {"e.frz": b""}, ["check", "e.frz"], None),
    ("check-escape-codes", {"c.frz": b"freeze fc\x1b[31m red\n"}, ["check", "c.frz"], None),
    ("check-unicode-name", {"\u00fcber.frz": "freeze \u00e9\n".encode()}, ["check", "\u00fcber.frz"], None),
    ("check-huge-index", {"s.frz": b"freeze children[" + b"9" * 5000 + b"]\n"}, ["check", "s.frz"], None),
    ("fmt-check-clean", {"f.frz": b"freeze fc\n"}, ["fmt", "--check", "f.frz"], None),
    ("fmt-check-dirty", {"u.frz": b"freeze   fc;unfreeze x\n", "f.frz": b"freeze fc\n"}, ["fmt", "--check", "u.frz", "f.frz"], None),
    ("fmt-diff", {"u.frz": b"freeze   fc;unfreeze x # c\n"}, ["fmt", "--diff", "u.frz"], None),
    ("fmt-check-diff", {"u.frz": b"freeze (a,b)\n"}, ["fmt", "u.frz", "--diff", "--check"], None),
    ("fmt-rewrite", {"u.frz": b"freeze   fc\n\n\n# end\n", "f.frz": b"freeze fc\n"}, ["fmt", "u.frz", "f.frz"], None),
    ("fmt-stdin", {}, ["fmt", "-"], "unfreeze   a ,b\n"),
    ("fmt-error-second", {"u.frz": b"freeze   fc\n", "bad.frz": b"freeze [\n"}, ["fmt", "u.frz", "bad.frz"], None),
    ("fmt-missing", {}, ["fmt", "missing.frz"], None),
    ("fmt-repeated-flag", {"u.frz": b"freeze  fc\n"}, ["fmt", "--check", "--check", "u.frz"], None),
    # left to click
    ("click-no-files", {}, ["check"], None),
    ("click-help", {}, ["fmt", "--help"], None),
    ("click-unknown-option", {"a.frz": b"freeze fc\n"}, ["check", "--check", "a.frz"], None),
    ("click-dash-dash", {"a.frz": b"freeze fc\n"}, ["check", "--", "a.frz"], None),
    ("click-dash-file", {"-x.frz": b"freeze fc\n"}, ["check", "-x.frz"], None),
    ("click-flag-value", {"a.frz": b"freeze fc\n"}, ["fmt", "--check=1", "a.frz"], None),
]

CLICK_ONLY = (
    "import sys\n"
    "from freezedsl.cli import main\n"
    "main.main(sys.argv[1:], prog_name='freezedsl')\n"
)


def _materialize(root: Path, files: dict[str, bytes]) -> None:
    root.mkdir()
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _tree_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _run(argv: list[str], cwd: Path, stdin: str | None, **kw: Any) -> tuple[int, bytes, bytes]:
    done = subprocess.run(argv, cwd=cwd, input=None if stdin is None else stdin.encode(), capture_output=True, env=_env(), check=False, **kw)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(("name", "files", "argv", "stdin"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_fast_path_output_is_clicks(tmp_path: Path, name: str, files: dict[str, bytes], argv: list[str], stdin: str | None) -> None:
    _materialize(tmp_path / "click", files)
    _materialize(tmp_path / "fast", files)
    expected = _run([sys.executable, "-c", CLICK_ONLY, *argv], tmp_path / "click", stdin)
    got = _run([sys.executable, "-m", "freezedsl", *argv], tmp_path / "fast", stdin)
    assert got == expected
    assert _tree_of(tmp_path / "fast") == _tree_of(tmp_path / "click")
    if FREEZEDSL.exists() and name in ("check-ok", "check-syntax-caret", "fmt-check-dirty", "fmt-rewrite", "click-help"):
        _materialize(tmp_path / "script", files)
        assert _run([str(FREEZEDSL), *argv], tmp_path / "script", stdin) == expected
        assert _tree_of(tmp_path / "script") == _tree_of(tmp_path / "click")


@pytest.mark.skipif(sys.platform == "win32" or sys.platform == "darwin", reason="needs a filesystem taking any bytes")
def test_fast_path_matches_click_on_undecodable_file_names(tmp_path: Path) -> None:
    name = os.fsdecode(b"r\xff.frz")
    for sub in ("click", "fast"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / name).write_bytes(b"freeze fc\n")
    expected = _run([sys.executable, "-c", CLICK_ONLY, "check", name], tmp_path / "click", None)
    assert _run([sys.executable, "-m", "freezedsl", "check", name], tmp_path / "fast", None) == expected


def test_fast_path_matches_click_on_a_closed_pipe(tmp_path: Path) -> None:
    (tmp_path / "a.frz").write_text("freeze fc\n")
    results = []
    for argv in ([sys.executable, "-c", CLICK_ONLY, "check", "a.frz"], [sys.executable, "-m", "freezedsl", "check", "a.frz"]):
        read, write = os.pipe()
        os.close(read)  # nobody reads: the first write fails with EPIPE
        try:
            done = subprocess.run(argv, cwd=tmp_path, stdout=write, stderr=subprocess.PIPE, env=_env(), check=False)
        finally:
            os.close(write)
        results.append((done.returncode, done.stderr))
    assert results[1] == results[0]


def test_fast_path_leaves_debug_runs_to_click(tmp_path: Path) -> None:
    (tmp_path / "a.frz").write_text("freeze fc\n")
    env = dict(_env(), FREEZEDSL_DEBUG="1")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "freezedsl", "check", "a.frz"],
        cwd=tmp_path, capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout == "a.frz: ok (1 statements)\n"
    assert re.search(r"\|\s+click$", done.stderr, re.MULTILINE)


def test_main_is_the_click_group_for_everything_else() -> None:
    from click.testing import CliRunner

    from freezedsl.cli import main
    from freezedsl.commands import main as group

    assert main.name == group.name and main.commands is group.commands
    result = CliRunner().invoke(main, ["check", "-"], input="freeze fc\n")
    assert (result.exit_code, result.stdout) == (0, "<stdin>: ok (1 statements)\n")
