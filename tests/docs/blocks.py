"""Fenced code blocks of README.md and docs/*.md, and how each kind is checked.

Why a parser of our own: the harness must find every block any page has (pages are
edited by many people, blocks are added all the time), know the line it starts on for
the failure message, the heading it sits under (lint rule examples) and an explicit
``<!-- doc-test: ... -->`` marker right before it. The rules (also stated in
README.md, section Tests):

* ```` ```python ```` blocks run, top to bottom, in one namespace per page, in a
  temporary directory where ``rules/`` and ``examples/`` are reachable.
* ```` ```console ````/```` ```sh ```` blocks, and any block whose lines start with
  ``$ ``, are terminal transcripts: every ``$ freezedsl ...``, ``$ .venv/bin/freezedsl
  ...``, ``$ python ...``, ``$ echo ...``/``$ printf ...`` command runs in the same directory, and
  the lines after a command (if any) must equal what it prints (stdout and stderr
  together). A line ``...`` stands for any number of lines, and ``...`` inside a line
  for any text. A command shown without output must exit with 0 or 1 (never 2, a
  usage or input error).
* ```` ```frz ```` blocks and untagged blocks that start with a statement keyword are
  rule files and must pass ``freezedsl check``; ```` ```toml ````, ```` ```json ````
  and ```` ```yaml ```` blocks must parse.
* ``<!-- doc-test: skip (reason) -->`` right before a block skips it (for what cannot
  run here, e.g. several GPUs); ``<!-- doc-test: parse-only (reason) -->`` before a
  transcript checks each freezedsl command's options with click instead of running it
  (for commands over placeholder files such as ``train.py``).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: First words of a rule-file statement (grammar/freeze.lark); an untagged block that
#: starts with one of them is a rule file.
RULE_KEYWORDS = frozenset({"freeze", "unfreeze", "expect", "convert", "lr", "weight_decay", "at"})
SHELL_LANGS = frozenset({"console", "sh", "shell", "bash", "shell-session"})
#: Programs a transcript may run; anything else (make, torchrun, pip) is shown, not run.
RUNNABLE = frozenset({"freezedsl", "python", "python3", "echo", "printf", "cat"})

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_MARKER = re.compile(r"^\s*<!--\s*doc-test:\s*(?P<kind>[a-z-]+)\s*(?:\((?P<reason>[^)]*)\))?\s*-->\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LABEL = re.compile(r"^\*\*(?P<label>[^*]+)\*\*\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str  # first word of the info string, lower-case ("" when untagged)
    text: str  # the body, with the fence's indentation removed
    marker: str | None  # "skip", "parse-only" or None
    heading: str  # text of the nearest heading above
    label: str | None  # a bold paragraph such as **Example** right above, if any

    @property
    def where(self) -> str:
        try:
            page = self.page.relative_to(REPO)
        except ValueError:
            page = self.page
        return f"{page}:{self.line}"

    @property
    def rule_code(self) -> str | None:
        """The lint code whose **Example**/**Use instead** this block is (docs/lint.md)."""
        if self.page.name != "lint.md" or self.label not in ("Example", "Use instead"):
            return None
        code = self.heading.split()[0] if self.heading else ""
        return code if code.startswith("FZ") else None

    @property
    def kind(self) -> str:
        """``python``, ``shell``, ``frz``, ``toml``, ``json``, ``yaml`` or ``text``."""
        if self.lang in ("python", "py"):
            return "python"
        if self.lang in SHELL_LANGS or (self.lang in ("", "text") and _has_prompt(self.text)):
            return "shell"
        if self.lang == "frz" or (self.lang == "" and _looks_like_rules(self.text)):
            return "frz"
        if self.lang in ("toml", "json", "yaml", "yml"):
            return "yaml" if self.lang == "yml" else self.lang
        return "text"


def _has_prompt(text: str) -> bool:
    return any(line.startswith("$ ") for line in text.splitlines())


def _looks_like_rules(text: str) -> bool:
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        return stripped.split()[0] in RULE_KEYWORDS
    return False


def pages() -> list[Path]:
    """README.md and every docs/*.md, found afresh so new pages are tested too."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def extract(page: Path, text: str | None = None) -> list[Block]:
    lines = (page.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks: list[Block] = []
    heading = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        head = _HEADING.match(line)
        if head:
            heading = head.group(2)
        fence = _FENCE.match(line)
        if not fence:
            i += 1
            continue
        indent, mark = fence.group("indent"), fence.group("fence")
        closing = re.compile(rf"^ *{re.escape(mark[0])}{{{len(mark)},}}\s*$")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not closing.match(lines[j]):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        if j == len(lines):
            raise ValueError(f"{page}:{i + 1}: code fence is never closed")
        marker, label = _preceding(lines, i)
        info = fence.group("info").strip().split()
        blocks.append(
            Block(
                page=page,
                line=i + 1,
                lang=info[0].lower() if info else "",
                text="\n".join(body) + ("\n" if body else ""),
                marker=marker,
                heading=heading,
                label=label,
            )
        )
        i = j + 1
    return blocks


def _preceding(lines: list[str], i: int) -> tuple[str | None, str | None]:
    """The doc-test marker and bold label on the nearest non-blank lines above line i."""
    marker = label = None
    k = i - 1
    while k >= 0 and not lines[k].strip():
        k -= 1
    if k >= 0:
        m = _MARKER.match(lines[k])
        if m:
            marker = m.group("kind")
            if marker not in ("skip", "parse-only"):
                raise ValueError(f"unknown doc-test marker {marker!r} (use skip or parse-only)")
            if not (m.group("reason") or "").strip():
                raise ValueError(f"doc-test marker {marker!r} needs a reason in parentheses")
            k -= 1
            while k >= 0 and not lines[k].strip():
                k -= 1
        if k >= 0:
            lab = _LABEL.match(lines[k].strip())
            if lab:
                label = lab.group("label").strip()
    return marker, label


# ------------------------------------------------------------------ transcripts


@dataclass(frozen=True)
class Command:
    line: str  # as shown, without "$ "
    expected: list[str]  # the lines shown after it (may be empty)

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.line, comments=True)

    @property
    def program(self) -> str:
        argv = self.argv
        return Path(argv[0]).name if argv else ""

    @property
    def runnable(self) -> bool:
        return self.program in RUNNABLE


def commands(block: Block) -> list[Command]:
    """Split a transcript into commands, each with the output shown after it."""
    found: list[Command] = []
    current: list[str] | None = None
    pending = ""
    for raw in block.text.splitlines():
        if pending:  # a continuation of a command ending in "\"
            pending = pending[:-1] + raw.strip()
            if not pending.endswith("\\"):
                current = []
                found[-1] = Command(pending, current)
                pending = ""
            continue
        if raw.startswith("$ "):
            cmd = raw[2:].strip()
            current = []
            found.append(Command(cmd, current))
            if cmd.endswith("\\"):
                pending = cmd
        elif current is not None:
            current.append(raw)
        elif raw.strip():  # text before the first prompt is output of nothing: not allowed
            raise ValueError(f"{block.where}: line {raw!r} comes before any '$ ' command")
    return [Command(c.line, _trim(c.expected)) for c in found]


def _trim(lines: list[str]) -> list[str]:
    out = [line.rstrip() for line in lines]
    while out and not out[-1]:
        out.pop()
    return out


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def normalise(output: str, sandbox: Path) -> list[str]:
    """Lines as a reader compares them: no colour, no sandbox path, no trailing spaces."""
    text = _ANSI.sub("", output).replace(str(sandbox) + "/", "").replace(str(sandbox), ".")
    return _trim(text.splitlines())


def matches(expected: list[str], actual: list[str]) -> bool:
    """``expected`` equals ``actual``, where a line ``...`` stands for any lines (also
    none) and ``...`` inside a line for any text on that line."""
    pats = [None if e.strip() == "..." else _line_pattern(e) for e in expected]

    def go(i: int, j: int) -> bool:
        if i == len(pats):
            return j == len(actual)
        pat = pats[i]
        if pat is None:
            return any(go(i + 1, k) for k in range(j, len(actual) + 1))
        return j < len(actual) and pat.fullmatch(actual[j]) is not None and go(i + 1, j + 1)

    return go(0, 0)


def _line_pattern(line: str) -> re.Pattern[str]:
    return re.compile(".*?".join(re.escape(part) for part in line.split("...")))
