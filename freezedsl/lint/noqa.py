"""``# noqa`` comments: which findings of a file its author suppressed, and where.

Why a module of its own: the comment syntax (line-level ``# noqa[: CODES]`` and
file-level ``# freezedsl: noqa[: CODES]``) and its safety rules (a code list that does
not parse suppresses nothing; codes are case-insensitive) are read and tested apart
from the runner that applies them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from freezedsl.lint.registry import Diagnostic
from freezedsl.lint.selection import matches_any

__all__ = ["Noqa", "parse_noqa"]

_LINE_NOQA = re.compile(r"#\s*noqa\b(?P<colon>\s*:)?(?P<rest>.*)", re.IGNORECASE)
_FILE_NOQA = re.compile(
    r"^\s*#\s*freezedsl\s*:\s*noqa\b(?P<colon>\s*:)?(?P<rest>.*)$", re.IGNORECASE
)
_NOQA_CODE = re.compile(r"[A-Za-z]+[0-9]+")


def _noqa_codes(rest: str) -> tuple[str, ...]:
    """Leading codes of ``rest`` (separated by commas/spaces), upper-cased (``fz204`` is
    ``FZ204``: a case slip must not silently keep a finding); stops at other text."""
    codes: list[str] = []
    for token in re.split(r"[,\s]+", rest.strip()):
        if not _NOQA_CODE.fullmatch(token):
            break
        codes.append(token.upper())
    return tuple(codes)


@dataclass(frozen=True)
class Noqa:
    """Suppressions found in one file.

    ``lines`` maps a 1-based line to the code prefixes it suppresses (``None`` = all);
    ``file_all`` is a bare file-level directive; ``file_codes`` the file-level prefixes.
    """

    lines: Mapping[int, tuple[str, ...] | None] = field(default_factory=dict)
    file_all: bool = False
    file_codes: tuple[str, ...] = ()

    def suppresses(self, d: Diagnostic) -> bool:
        if self.file_all or matches_any(d.code, self.file_codes):
            return True
        if d.line is None or d.line not in self.lines:
            return False
        codes = self.lines[d.line]
        return codes is None or matches_any(d.code, codes)


def parse_noqa(text: str) -> Noqa:
    """Find ``# noqa`` / ``# noqa: CODES`` comments and ``# freezedsl: noqa[: CODES]`` lines.

    A code list that does not parse (``# noqa: FZ-204``) suppresses nothing rather than
    everything, so a typo cannot hide all findings of a line.
    """
    lines: dict[int, tuple[str, ...] | None] = {}
    file_all = False
    file_codes: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if "noqa" not in line.lower():
            continue
        m = _FILE_NOQA.match(line)
        if m:
            if not m.group("colon"):
                file_all = True
            else:
                file_codes.extend(_noqa_codes(m.group("rest")))
            continue
        m = _LINE_NOQA.search(line)
        if m:
            if not m.group("colon"):
                lines[number] = None
            elif codes := _noqa_codes(m.group("rest")):
                lines[number] = codes
    return Noqa(lines, file_all, tuple(file_codes))
