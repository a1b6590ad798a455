"""Comments and blank lines: found beside the parse and attached to statements.

The grammar ignores comments (``%ignore COMMENT``), so the parser never sees them;
:func:`_scan_comments` finds them in the text and :func:`_attach_trivia` hangs each on
the statement it belongs to (leading, trailing, or the file's tail) together with the
blank lines, so that ``freezedsl fmt`` can keep them. :func:`_code_only` blanks comments
and strings out for the scans that must not look inside them.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import replace

from freezedsl.errors import source_lines
from freezedsl.syntax import ast

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lark import Token

_COMMENT_OR_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`\n]+`|#[^\n]*')


def _attach_trivia(
    statements: list[ast.Statement], comments: list[Token], source: str
) -> tuple[list[ast.Statement], tuple[str, ...]]:
    """Attach comments and blank lines to statements so the formatter can keep them."""
    lines = source_lines(source)
    leading: list[list[str]] = [[] for _ in statements]
    trailing: list[str | None] = [None] * len(statements)
    end_of: dict[int, int] = {}
    for i, st in enumerate(statements):
        assert st.span is not None
        end_of.setdefault(st.span.end_line, i)
        end_of[st.span.end_line] = max(end_of[st.span.end_line], i)
    program_tail: list[str] = []
    starts = [st.span.line for st in statements if st.span]  # ascending: statements are in order
    comment_first_line: dict[int, int] = {}
    for tok in comments:
        text = str(tok).rstrip()
        line = tok.line or 1
        if line in end_of and (statements[end_of[line]].span.end_col <= (tok.column or 0)):  # type: ignore[union-attr,unused-ignore]
            i = end_of[line]
            trailing[i] = text if trailing[i] is None else f"{trailing[i]} {text[1:].lstrip()}"
            continue
        after = bisect.bisect_right(starts, line)  # first statement starting below the comment
        inside: int | None = None
        if after > 0:
            span = statements[after - 1].span
            if span is not None and span.end_line >= line:
                inside = after - 1  # a comment inside a multi-line statement
        if inside is None and after < len(statements):
            inside = after
        if inside is None:
            program_tail.append(text)
        else:
            leading[inside].append(text)
            comment_first_line.setdefault(inside, line)

    def blank_between(a: int, b: int) -> bool:  # lines strictly between a and b (1-based)
        return any(not lines[k - 1].strip() for k in range(a + 1, b) if 0 < k <= len(lines))

    out: list[ast.Statement] = []
    prev_end = 0
    for i, st in enumerate(statements):
        assert st.span is not None
        top = comment_first_line.get(i, st.span.line)
        blank = i > 0 and blank_between(prev_end, top)
        trivia = ast.Trivia(tuple(leading[i]), trailing[i], blank)
        out.append(replace(st, trivia=trivia))
        prev_end = st.span.end_line
    return out, tuple(program_tail)

def _scan_comments(source: str) -> list[Token]:
    from lark import Token

    out: list[Token] = []
    line_starts = [0]
    for m in re.finditer(r"\n", source):
        line_starts.append(m.end())
    for m in _COMMENT_OR_STRING.finditer(source):
        if m.group(0).startswith("#"):
            pos = m.start()
            line = bisect.bisect_right(line_starts, pos)
            col = pos - line_starts[line - 1] + 1
            out.append(Token("COMMENT", m.group(0), pos, line, col))
    return out


def _code_only(source: str) -> str:
    """The text with comments and quoted strings blanked out (same length)."""
    return _COMMENT_OR_STRING.sub(lambda m: " " * len(m.group(0)), source)
