"""Parse rule text into the AST, with errors in the user's words.

The grammar lives in ``grammar/freeze.lark`` (shipped in the wheel as the package
``freezedsl.grammar``) and Lark parses it: LALR(1) with the contextual lexer, linear time
in the length of the text (benchmarks/results/parse.md has the measured figures). The
work is split by what a reader looks for:

* this module: the entry points (:func:`parse`, :func:`parse_file`, :func:`read_rules`),
  the size and nesting limits checked before parsing, and the Lark parser itself;
* :mod:`freezedsl.syntax.to_ast`: the handlers that turn Lark's tree into the AST and
  refuse what parses but is not valid;
* :mod:`freezedsl.syntax.diagnostics`: Lark's errors as one-line messages;
* :mod:`freezedsl.syntax.trivia`: comments and blank lines, kept for the formatter.

Any text either parses or raises :class:`~freezedsl.errors.RuleSyntaxError` with a 1-based
line and column; Lark's own exceptions never escape. Nothing here imports torch.
"""

from __future__ import annotations

import functools
import os
import re

from freezedsl.errors import RuleSyntaxError
from freezedsl.gcpause import gc_paused
from freezedsl.syntax import ast
from freezedsl.syntax.trivia import _code_only

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lark import Lark

#: Largest rule file (bytes) or rule text (characters). Real rule files are a few KiB;
#: parsing is linear but costs ~5 us and ~150 bytes of memory per byte of text, so a
#: 16 MiB file took over a minute and gigabytes. At 1 MiB the worst file checks in a few seconds.
MAX_SOURCE_BYTES = 1024 * 1024
_SIZE_HINT = "a rule file needs far less: select with globs, ** or name~ regexes instead of listing names"
MAX_NESTING = 200


def grammar_text() -> str:
    """The grammar, from the installed package or, in a source checkout, ``grammar/``.

    Read as a plain file next to the package's ``__init__``: every start needs it (Lark
    checks its cache against it), and importlib.resources would add its own imports to
    the start-up. importlib.resources remains the way for installs a file path cannot
    reach (a zip).
    """
    try:
        from freezedsl import grammar as package

        if package.__file__:
            with open(os.path.join(os.path.dirname(package.__file__), "freeze.lark"), encoding="utf-8") as fh:
                return fh.read()
    except (ImportError, OSError):  # pragma: no cover - odd installs
        pass
    from importlib import resources
    from pathlib import Path as FsPath

    try:
        return resources.files("freezedsl.grammar").joinpath("freeze.lark").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - odd installs
        here = FsPath(__file__).resolve().parents[2] / "grammar" / "freeze.lark"
        return here.read_text("utf-8")


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    """The parser (built once per process) from grammar/freeze.lark.

    What Lark computes from the grammar is cached in a directory only this user can
    write (:mod:`freezedsl.syntax.grammar_cache` says why a shared one would not do).
    """
    import lark

    from freezedsl.syntax.grammar_cache import cache_file

    grammar = grammar_text()
    return lark.Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        cache=cache_file(grammar, lark.__version__) or False,
    )


# --------------------------------------------------------------- entry points


def parse(source: str, path: str | None = None) -> ast.Program:
    """Parse rule text. Raises RuleSyntaxError (never a Lark exception)."""
    if not isinstance(source, str):
        raise TypeError("parse() takes rule text as str; use freezedsl.load(path) for files")
    if len(source) > MAX_SOURCE_BYTES:
        raise RuleSyntaxError(
            f"rule text is {len(source)} characters; the limit is {MAX_SOURCE_BYTES} (1 MiB); {_SIZE_HINT}",
            path=path,
            line=1,
            col=1,
        )
    bad = _first_bad_char(source)
    if bad is not None:
        line, col, ch = bad
        raise _error(
            source, path, f"unexpected control character U+{ord(ch):04X}; rule files are plain text", line, col
        )
    depth = _max_paren_depth(source)
    if depth > MAX_NESTING:
        line, col = depth_pos(source, MAX_NESTING + 1)
        raise _error(source, path, f"parentheses nested deeper than {MAX_NESTING} levels; simplify the selector", line, col)
    try:
        with gc_paused():  # the parse tree and AST are acyclic; collection passes only cost
            return _parse_checked(source, path)
    except RecursionError:
        raise _error(source, path, "rule text nests too deeply to parse; simplify it", 1, 1) from None


def _parse_checked(source: str, path: str | None) -> ast.Program:
    from lark.exceptions import UnexpectedInput

    from freezedsl.syntax.diagnostics import _translate
    from freezedsl.syntax.to_ast import _Located, build_ast
    from freezedsl.syntax.trivia import _attach_trivia, _scan_comments

    try:
        tree = _lark().parse(source)  # the whole text first: a syntax error anywhere is
        statements = build_ast(tree)  # reported before a semantic one
    except UnexpectedInput as exc:
        raise _translate(exc, source, path) from None
    except _Located as exc:
        raise _error(source, path, exc.message, exc.line, exc.col) from None
    statements, tail = _attach_trivia(statements, _scan_comments(source), source)
    units = [st for st in statements if isinstance(st, ast.Scheduled)]
    if units and any(st.unit != units[0].unit for st in units):
        other = next(st for st in units if st.unit != units[0].unit)
        line = other.span.line if other.span else 1
        col = other.span.col if other.span else 1
        raise _error(
            source,
            path,
            f"this file schedules by {units[0].unit} and here by {other.unit}; use one unit for every 'at'",
            line,
            col,
        )
    return ast.Program(tuple(statements), tail, path=path, source=source)


def _error(source: str, path: str | None, message: str, line: int, col: int) -> RuleSyntaxError:
    from freezedsl.syntax.diagnostics import _error as located_error

    return located_error(source, path, message, line, col)


def _first_bad_char(source: str) -> tuple[int, int, str] | None:
    m = re.search(r"[\x00-\x08\x0b\x0e-\x1f\x7f]", source)
    if m is None:
        return None
    before = source[: m.start()]
    line = before.count("\n") + 1
    col = m.start() - (before.rfind("\n") + 1) + 1
    return line, col, m.group(0)


def _max_paren_depth(source: str) -> int:
    depth = best = 0
    for ch in _code_only(source):
        if ch == "(":
            depth += 1
            best = max(best, depth)
        elif ch == ")":
            depth = max(depth - 1, 0)
    return best


def depth_pos(source: str, target: int) -> tuple[int, int]:
    depth, line, col = 0, 1, 0
    for ch in _code_only(source):
        col += 1
        if ch == "\n":
            line, col = line + 1, 0
        elif ch == "(":
            depth += 1
            if depth == target:
                return line, col
        elif ch == ")":
            depth = max(depth - 1, 0)
    return 1, 1


def read_rules(path: str | os.PathLike[str]) -> str:
    """Read a rule file as UTF-8 text with one-line errors for every way that fails."""
    from pathlib import Path as FsPath

    p = FsPath(path)
    shown = str(path)
    if not p.exists():
        raise RuleSyntaxError(f"rule file not found: {shown}; pass the path of a .frz file", path=shown)
    if p.is_dir():
        raise RuleSyntaxError(f"{shown} is a directory; pass the path of a .frz rule file", path=shown)
    from freezedsl.fsutil import unreadable_reason

    reason = unreadable_reason(p)  # also a symlink into /proc, /sys or /dev
    if reason or not p.is_file():
        raise RuleSyntaxError(
            f"{shown} {reason or 'is not a regular file'}; pass the path of a .frz rule file",
            path=shown,
        )
    try:
        with open(p, "rb") as fh:
            data = fh.read(MAX_SOURCE_BYTES + 1)
    except OSError as exc:
        raise RuleSyntaxError(f"cannot read rule file: {exc.strerror or exc}", path=shown) from None
    if len(data) > MAX_SOURCE_BYTES:
        try:
            size = f"{p.stat().st_size} bytes"
        except OSError:
            size = f"over {MAX_SOURCE_BYTES} bytes"
        raise RuleSyntaxError(
            f"rule file is {size}; the limit is {MAX_SOURCE_BYTES} bytes (1 MiB); {_SIZE_HINT}", path=shown
        )
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise RuleSyntaxError(
            f"rule file is not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8",
            path=shown,
            line=line,
            col=col,
        ) from None


def parse_file(path: str | os.PathLike[str]) -> ast.Program:
    return parse(read_rules(path), path=str(path))