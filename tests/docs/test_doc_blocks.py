"""Every fenced code block of README.md and docs/*.md is checked (rules: tests/docs/blocks.py).

Pages and blocks are discovered when the tests are collected, so a block someone adds
to any page is run by the next test session without touching this file.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .blocks import REPO, Block, Command, commands, extract, matches, normalise, pages

PAGES = pages()
TIMEOUT = 300  # seconds per command; a CLI command here takes a few seconds


def _id(page: Path) -> str:
    return str(page.relative_to(REPO))


def _sandbox(tmp: Path) -> Path:
    """A working directory where the docs' relative paths (rules/, examples/) resolve;
    copies, so that a block writing there cannot change the repository."""
    import shutil

    for name in ("rules", "examples", "grammar"):
        shutil.copytree(REPO / name, tmp / name, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp


# ------------------------------------------------------------------ running a page


def _shell_env() -> dict[str, str]:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.pop("FREEZEDSL_DEBUG", None)
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "100"
    return env


def _rewrite(cmd: Command) -> str:
    """The command line with ``.venv/bin/X`` and ``python`` pointing at this interpreter."""
    line = cmd.line
    bindir = Path(sys.executable).parent
    for prefix in (".venv/bin/", "./.venv/bin/"):
        if line.startswith(prefix):
            return str(bindir / line[len(prefix):])
    if cmd.program in ("python", "python3"):
        return sys.executable + line[len(cmd.argv[0]):] if line.startswith(cmd.argv[0]) else line
    return line


_SHELL_SYNTAX = re.compile(r"[|&;<>()$`*?~]")


def _in_process(cmd: Command) -> bool:
    """A plain ``freezedsl ARGS`` line (no redirection, pipe or expansion) runs through
    click's CliRunner in this process: the same command code and output, without paying
    for a fresh interpreter importing torch for each of the docs' commands (seconds each;
    the console script itself is tested in tests/core/test_startup.py)."""
    code = cmd.line.split(" #", 1)[0]
    return cmd.program == "freezedsl" and not _SHELL_SYNTAX.search(code.replace("'", "").replace('"', ""))


def _invoke(cmd: Command, cwd: Path) -> tuple[int, str]:
    if _in_process(cmd):
        from click.testing import CliRunner

        from freezedsl.commands import main

        assert Path.cwd() == cwd, "in-process commands run in the page's sandbox"
        result = CliRunner().invoke(main, cmd.argv[1:], prog_name="freezedsl", color=False)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.output
    proc = subprocess.run(
        ["bash", "-c", _rewrite(cmd) + " 2>&1"],
        check=False,
        cwd=cwd,
        env=_shell_env(),
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=TIMEOUT,
    )
    return proc.returncode, proc.stdout


def _run_command(cmd: Command, cwd: Path) -> str | None:
    """Run one transcript command; the problem as text, or None when it is as shown."""
    returncode, output = _invoke(cmd, cwd)
    actual = normalise(output, cwd)
    if cmd.expected:
        if matches(cmd.expected, actual):
            return None
        shown = "\n".join(cmd.expected)
        got = "\n".join(actual)
        return f"$ {cmd.line}\n--- shown in the docs:\n{shown}\n--- printed (exit {returncode}):\n{got}"
    if returncode not in (0, 1):
        return f"$ {cmd.line}\nexited with {returncode}:\n" + "\n".join(actual[-20:])
    return None


def _parse_only(cmd: Command) -> str | None:
    """Check a ``freezedsl`` command's options with click, without running it."""
    import click

    from freezedsl.commands import main

    argv = cmd.argv
    if cmd.program != "freezedsl":
        return None
    args = argv[1:]
    ctx = click.Context(main, info_name="freezedsl")
    sub = main.get_command(ctx, args[0]) if args else None
    if sub is None:
        return f"$ {cmd.line}\nno such freezedsl command"
    try:
        sub.make_context(args[0], args[1:], parent=ctx)
    except click.exceptions.Exit:
        return None
    except click.ClickException as e:
        return f"$ {cmd.line}\ndoes not parse: {e.format_message()}"
    return None


def _exec_python(block: Block, namespace: dict[str, object]) -> str | None:
    try:
        exec(compile(block.text, block.where, "exec"), namespace)  # noqa: S102 - our own docs
    except Exception as e:  # noqa: BLE001 - report every failing block of the page, not just the first
        import traceback

        tb = traceback.format_exception(e)
        return f"python block raised:\n{''.join(tb[-6:])}"
    return None


def run_page(page: Path, sandbox: Path) -> list[str]:
    """Run the python and shell blocks of one page in order; the problems found."""
    problems: list[str] = []
    namespace: dict[str, object] = {"__name__": "__doc_block__"}
    for block in extract(page):
        if block.marker == "skip" or block.rule_code is not None:
            continue
        if block.kind == "python":
            problem = _exec_python(block, namespace)
            if problem:
                problems.append(f"{block.where}: {problem}")
        elif block.kind == "shell":
            for cmd in commands(block):
                if not cmd.runnable:
                    continue
                problem = _parse_only(cmd) if block.marker == "parse-only" else _run_command(cmd, sandbox)
                if problem:
                    problems.append(f"{block.where}: {problem}")
    return problems


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_page_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = _sandbox(tmp_path)
    monkeypatch.chdir(sandbox)
    monkeypatch.syspath_prepend(str(sandbox))
    problems = run_page(page, sandbox)
    assert not problems, "\n\n".join(problems)


# ------------------------------------------------------------------ blocks that only parse


def _data_blocks() -> list[Block]:
    return [
        b
        for page in PAGES
        for b in extract(page)
        if b.kind in ("frz", "toml", "json", "yaml") and b.marker != "skip" and b.rule_code is None
    ]


@pytest.mark.parametrize("block", _data_blocks(), ids=lambda b: b.where)
def test_data_block_parses(block: Block) -> None:
    if block.kind == "frz":
        from freezedsl.syntax.parser import parse

        parse(block.text, path=block.where)
        copied = re.fullmatch(r"#\s*(\S+\.frz)", block.text.splitlines()[0].strip())
        if copied and (REPO / copied.group(1)).is_file():  # "# rules/resnet.frz": a copy of that file
            file_text = (REPO / copied.group(1)).read_text(encoding="utf-8")
            assert _statements(block.text) == _statements(file_text), f"{block.where} differs from {copied.group(1)}"
    elif block.kind == "toml":
        tomllib = pytest.importorskip("tomllib")  # Python 3.11+
        tomllib.loads(block.text)
    elif block.kind == "json":
        json.loads(block.text)
    else:
        yaml = pytest.importorskip("yaml")
        yaml.safe_load(block.text)


def _statements(text: str) -> list[str]:
    """The statements of rule text, comments and spacing aside."""
    return [" ".join(line.split("#", 1)[0].split()) for line in text.splitlines() if line.split("#", 1)[0].strip()]


def test_make_demo_runs_commands_the_readme_shows() -> None:
    """``make demo``'s commands are transcripts in README.md, so their output is checked there."""
    lines = (REPO / "Makefile").read_text(encoding="utf-8").splitlines()
    start = lines.index("demo: $(STAMP)") + 1
    recipe = []
    for line in lines[start:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip().replace("$(BIN)/", ".venv/bin/"))
    shown = [c.line for b in extract(REPO / "README.md") if b.kind == "shell" for c in commands(b) if c.expected]
    assert recipe, "no demo recipe found"
    for cmd in recipe:
        assert cmd in shown, f"make demo runs {cmd!r}, which README.md does not show with its output"


# ------------------------------------------------------------------ lint rule examples


def _rule_examples() -> list[Block]:
    """Rule examples that can be checked: code and commands, and rule text of FZ001 and
    FZ1xx. A ```text example of another code (an excerpt, not a rule file) has nothing to run."""
    return [
        b
        for page in PAGES
        for b in extract(page)
        if b.rule_code is not None
        and (b.kind in ("python", "shell") or b.rule_code == "FZ001" or b.rule_code.startswith("FZ1"))
    ]


@pytest.mark.parametrize("block", _rule_examples(), ids=lambda b: f"{b.where}-{b.rule_code}-{b.label}")
def test_lint_rule_example(block: Block) -> None:
    """Each rule's Example shows the mistake and its Use instead is clean: static codes
    (FZ0xx for Python, FZ2xx) are linted and must fire exactly on the Example; rule-file
    examples (FZ1xx) are linted against a model with their names (FZ001's Example must
    not parse); the runtime examples in RUNTIME_RUN run on a small model and optimizer and
    are checked with ``freezedsl.lint.check``; the rest must be valid Python or commands."""
    code = block.rule_code
    assert code is not None
    bad = block.label == "Example"
    if block.kind == "python" and (code.startswith("FZ2") or code == "FZ002"):
        from freezedsl.lint.static import check_source

        codes = {d.code for d in check_source("example.py", block.text)}
        assert (code in codes) == bad, f"{block.where}: {code} {'not ' if bad else ''}reported: {codes}"
    elif block.kind == "python" and code in RUNTIME_RUN:
        namespace = _runtime_namespace()
        exec(compile(block.text, block.where, "exec"), namespace)  # noqa: S102 - our own docs
        import freezedsl.lint

        codes = {d.code for d in freezedsl.lint.check(namespace["model"], namespace["opt"])}
        assert (code in codes) == bad, f"{block.where}: {code} {'not ' if bad else ''}reported: {codes}"
    elif block.kind == "python":
        compile(block.text, block.where, "exec")
    elif block.kind == "shell":
        for cmd in commands(block):
            assert _parse_only(cmd) is None
    elif block.kind == "frz" and code.startswith("FZ3"):
        # runtime findings on a rule file (FZ340 needs an input shape): the text must parse
        from freezedsl.syntax.parser import parse

        parse(block.text, path=block.where)
    elif code == "FZ001":
        from freezedsl.errors import RuleSyntaxError
        from freezedsl.syntax.parser import parse

        if bad:
            with pytest.raises(RuleSyntaxError):
                parse(block.text, path=block.where)
        else:
            parse(block.text, path=block.where)
    else:  # FZ1xx rule text: rule-file checks, with a model that has the names the examples use
        from freezedsl.lint.rulefiles import check_source as check_rules

        found = {d.code: d.message for d in check_rules("example.frz", block.text, model=_example_model())}
        assert (code in found) == bad, f"{block.where}: {code} {'not ' if bad else ''}reported: {found}"
        # a Use instead is clean; an Example may show related mistakes, but names that exist
        others = {c: m for c, m in found.items() if c != code and (not bad or c == "FZ110")}
        assert not others, f"{block.where}: other findings {others}"


#: Runtime rules whose examples run here, on :func:`_runtime_namespace`'s small model and
#: optimizer, followed by ``freezedsl.lint.check(model, opt)``. The others need a process
#: group (FZ308 DDP, FZ309 FSDP) or observed training steps (FZ311) and only compile.
RUNTIME_RUN = frozenset({"FZ301", "FZ302", "FZ303", "FZ304", "FZ305", "FZ306", "FZ307", "FZ310"})


def _runtime_namespace() -> dict[str, object]:
    """What the FZ3xx examples assume: ``model`` (``embed``, ``blocks``, ``backbone``
    with a BatchNorm, ``layer4``, head ``fc``), ``opt`` (SGD with momentum over all of
    it), ``loss`` from one forward pass, and the names they use."""
    torch = pytest.importorskip("torch")
    from torch import nn
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        CheckpointImpl,
        checkpoint_wrapper,
    )

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Conv2d(3, 3, 1)
            self.blocks = nn.ModuleList([nn.Conv2d(3, 3, 1)])
            self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
            self.layer4 = nn.Linear(8, 512)
            self.fc = nn.Linear(512, 10)

        def forward(self, x: Any) -> Any:
            x = self.blocks[0](self.embed(x))
            return self.fc(self.layer4(self.backbone(x).flatten(1)))

    torch.manual_seed(0)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = model(torch.randn(2, 3, 8, 8)).sum()
    return {
        "torch": torch,
        "nn": nn,
        "model": model,
        "opt": opt,
        "loss": loss,
        "checkpoint_wrapper": checkpoint_wrapper,
        "CheckpointImpl": CheckpointImpl,
    }


@functools.cache
def _example_model() -> object:
    """A ResNet-18 (conv1 ... layer4, fc) plus the names the FZ1xx examples use: a GPT-style
    ``transformer.wte`` tied to ``lm_head``, ``blocks.0`` ... ``blocks.11``, a
    torchvision ``Conv2dNormActivation`` ``stem`` and an initially frozen ``pos``."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):
        model = torchvision.models.resnet18()
        model.transformer = torch.nn.Module()
        model.transformer.wte = torch.nn.Embedding(10, 4)
        model.lm_head = torch.nn.Linear(4, 10, bias=False)
        model.lm_head.weight = model.transformer.wte.weight
        model.blocks = torch.nn.Sequential(*(torch.nn.Linear(4, 4) for _ in range(12)))
        model.stem = torchvision.ops.Conv2dNormActivation(3, 4)  # a container of conv + norm (FZ116)
        model.pos = torch.nn.Embedding(4, 4).requires_grad_(False)  # frozen by its "library" (FZ117)
    return model


# ------------------------------------------------------------------ the harness itself


def test_every_page_has_blocks_found() -> None:
    assert (REPO / "README.md") in PAGES
    assert sum(len(extract(p)) for p in PAGES) > 50


def test_extract_finds_indented_fences_and_markers(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    text = (
        "# T\n\n* item\n\n  ```console\n  $ freezedsl --version\n  ```\n\n"
        "<!-- doc-test: skip (needs GPUs) -->\n```python\nraise SystemExit\n```\n"
        "#### FZ201 x\n\n**Example**\n\n```python\nx = 1\n```\n"
    )
    found = extract(page, text)
    assert [(b.line, b.kind, b.marker) for b in found] == [(5, "shell", None), (10, "python", "skip"), (17, "python", None)]
    assert found[0].text == "$ freezedsl --version\n"
    assert (found[2].heading, found[2].label) == ("FZ201 x", "Example")


def test_markers_need_a_reason(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reason"):
        extract(tmp_path / "p.md", "<!-- doc-test: skip -->\n```python\n```\n")
    with pytest.raises(ValueError, match="unknown"):
        extract(tmp_path / "p.md", "<!-- doc-test: maybe (x) -->\n```python\n```\n")


def test_untagged_blocks_are_classified(tmp_path: Path) -> None:
    text = "```\n# a.frz\nfreeze fc\n```\n```\n$ make demo\n```\n```\ngrammar/  the syntax\n```\n"
    assert [b.kind for b in extract(tmp_path / "p.md", text)] == ["frz", "shell", "text"]


def test_transcript_commands_and_elision() -> None:
    block = Block(Path("p.md"), 1, "console", "$ a \\\n  b\nout\n\n$ c\n", None, "", None)
    assert [(c.line, c.expected) for c in commands(block)] == [("a b", ["out"]), ("c", [])]
    assert matches(["x", "...", "z"], ["x", "y1", "y2", "z"])
    assert matches(["x", "...", "z"], ["x", "z"])
    assert not matches(["x", "...", "z"], ["x", "y"])
    assert matches(["did you mean 'a', ...?"], ["did you mean 'a', 'b' or 'c'?"])
    assert not matches(["a"], ["a", "b"])
    assert normalise("\x1b[1m/tmp/s/x.frz\x1b[0m  \n\n", Path("/tmp/s")) == ["x.frz"]


def test_a_wrong_transcript_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cmd = Command("echo hello", ["goodbye"])
    problem = _run_command(cmd, tmp_path)
    assert problem is not None and "goodbye" in problem and "hello" in problem
    assert _run_command(Command("echo hello", ["hello"]), tmp_path) is None
    assert _in_process(Command("freezedsl rule FZ204  # explain", []))
    assert not _in_process(Command("freezedsl check s.frz > out.txt", []))
    bad = _run_command(Command("freezedsl rule FZ999", ["FZ999 (no-such-rule)"]), tmp_path)
    assert bad is not None and "exit 2" in bad
    assert _parse_only(Command("freezedsl show --no-such-flag m", [])) is not None
    assert _parse_only(Command("freezedsl show torchvision.models:resnet18 --depth 1", [])) is None


_LINES = st.lists(st.text(alphabet="ab .", max_size=6).map(str.strip), max_size=6)


@settings(deadline=None)  # timing varies on a loaded machine; the sizes are tiny
@given(actual=_LINES, data=st.data())
def test_elision_matches_what_it_elides(actual: list[str], data: st.DataObject) -> None:
    """Replacing any slice of the printed lines by one ``...`` line still matches; an
    extra line that is not printed never does."""
    actual = [line for line in actual if "..." not in line]
    assert matches(actual, actual)
    i = data.draw(st.integers(0, len(actual)))
    j = data.draw(st.integers(i, len(actual)))
    assert matches([*actual[:i], "...", *actual[j:]], actual)
    assert not matches([*actual, "not printed"], actual)
