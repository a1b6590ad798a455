"""Print a Program in the one canonical form (``freezedsl fmt``).

Canonical form: one statement per line, single spaces, ``, `` between alternatives,
parentheses only where precedence needs them, ``"`` strings, minimal slices, comments
and single blank lines kept. ``parse(format_program(p)) == p`` for every program.
"""

from __future__ import annotations

import re

from freezedsl.syntax import ast

TYPE_CHECKING = False
if TYPE_CHECKING:
    from decimal import Decimal

_PLAIN_WORD = re.compile(r"[A-Za-z0-9_]+\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # the parser refuses these anywhere
_START_KEYWORDS = {"all"}


def format_program(program: ast.Program) -> str:
    lines: list[str] = []
    for i, st in enumerate(program.statements):
        trivia = getattr(st, "trivia", ast.Trivia())
        if i > 0 and trivia.blank_before:
            lines.append("")
        lines.extend(_comment(c) for c in trivia.comments)
        text = format_statement(st)
        if trivia.trailing:
            text += "  " + _comment(trivia.trailing)
        lines.append(text)
    if program.trailing_comments:
        if lines:
            lines.append("")
        lines.extend(_comment(c) for c in program.trailing_comments)
    return "\n".join(lines) + ("\n" if lines else "")


def _comment(text: str) -> str:
    body = text[1:].rstrip() if text.startswith("#") else text.rstrip()
    return "#" + (" " + body.lstrip() if body.strip() and not body.startswith(" ") else body)


def format_statement(st: ast.Statement) -> str:
    if isinstance(st, ast.Rule):
        return f"{st.action} {format_selector(st.selector)}"
    if isinstance(st, ast.ExpectSelector):
        return f"expect {st.state} {format_selector(st.selector)}"
    if isinstance(st, ast.ExpectShare):
        return f"expect {st.state} {format_share(st)}"
    if isinstance(st, ast.StatsRule):
        return f"{st.action} stats {format_selector(st.selector)}"
    if isinstance(st, ast.Convert):
        return f"convert {format_selector(st.selector)} to {st.target}"
    if isinstance(st, ast.Hyper):
        return f"{st.name} {format_factor(st.factor)} {format_selector(st.selector)}"
    if isinstance(st, ast.HyperDecay):
        text = f"{st.name} decay {_num(st.factor)} over {format_selector(st.selector)}"
        if st.min_scale is not None:
            text += f" min {_num(st.min_scale)}"
        if st.freeze_below is not None:
            text += f" freeze below {_num(st.freeze_below)}"
        return text
    if isinstance(st, ast.Scheduled):
        return f"at {st.unit} {st.at}: {format_statement(st.statement)}"
    raise TypeError(f"not a statement: {st!r}")


def format_share(st: ast.ExpectShare) -> str:
    if st.op == "between":
        assert st.high is not None
        return f"{_num(st.low)}%..{_num(st.high)}%"
    if st.op == "==":
        return f"{_num(st.low)}%"
    return f"{st.op} {_num(st.low)}%"


def format_factor(factor: ast.Factor) -> str:
    return _num(factor.value) + ("x" if factor.relative else "")


def _num(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    if text.startswith("-"):
        raise ValueError(f"a share cannot be negative: {value}")
    return text


def format_selector(sel: ast.Selector) -> str:
    if isinstance(sel, ast.Except):
        left = format_selector(sel.base)
        right = sel.excluded
        right_text = format_selector(right)
        if isinstance(right, ast.Except):
            right_text = f"({right_text})"
        return f"{left} except {right_text}"
    if isinstance(sel, ast.Union_):
        parts = []
        for item in sel.items:
            text = format_selector(item)
            if isinstance(item, (ast.Union_, ast.Except)):
                text = f"({text})"
            parts.append(text)
        return ", ".join(parts)
    if isinstance(sel, ast.Layer):
        return "{" + format_selector(sel.inner) + "}"
    if isinstance(sel, ast.Maybe):
        inner = format_selector(sel.inner)
        if isinstance(sel.inner, (ast.Union_, ast.Except, ast.Maybe)):
            inner = f"({inner})"
        return inner + "?"
    return format_atom(sel)


def format_atom(atom: ast.Selector) -> str:
    if isinstance(atom, ast.All):
        return "all"
    if isinstance(atom, ast.NameRegex):
        return f"name~{quote(atom.pattern)}"
    if isinstance(atom, ast.TypeRegex):
        return f"type~{quote(atom.pattern)}"
    if isinstance(atom, ast.TypeName):
        return f"type={atom.name}"
    if isinstance(atom, ast.TensorCompare):
        return f"{atom.prop}{'=' if atom.op == '==' else atom.op}{atom.value}"
    if isinstance(atom, ast.DtypeIs):
        return f"dtype={atom.dtype}"
    if isinstance(atom, ast.ShapeIs):
        return "shape=[" + ", ".join("*" if d is None else str(d) for d in atom.dims) + "]"
    if isinstance(atom, ast.Initially):
        return f"initially {atom.state}"
    if isinstance(atom, ast.Path):
        return format_path(atom)
    raise TypeError(f"not a selector: {atom!r}")


def format_path(path: ast.Path) -> str:
    out: list[str] = []
    for i, part in enumerate(path.parts):
        if isinstance(part, ast.Children):
            out.append("children")
        elif isinstance(part, (ast.Index, ast.Slice)):
            out.append(f"[{format_index(part)}]")
        else:
            if i > 0:
                out.append(".")
            out.append(
                format_segment(
                    part,
                    first=(i == 0),
                    followed_by_index=_next_is_index(path, i),
                    alone=len(path.parts) == 1,
                )
            )
    return "".join(out)


def _next_is_index(path: ast.Path, i: int) -> bool:
    return i + 1 < len(path.parts) and isinstance(path.parts[i + 1], (ast.Index, ast.Slice))


def format_segment(
    part: ast.PathPart, *, first: bool = False, followed_by_index: bool = False, alone: bool = False
) -> str:
    if isinstance(part, ast.AnySegments):
        return "**"
    if isinstance(part, ast.Glob):
        return part.pattern
    if isinstance(part, ast.Word):
        name = part.name
        needs_quote = not _PLAIN_WORD.match(name)
        if first and (name in _START_KEYWORDS or (name == "children" and followed_by_index)):
            needs_quote = True
        if first and name == "stats" and alone:
            needs_quote = True  # `freeze stats except x` would read as a stats statement
        if first and name in ("name", "type"):
            needs_quote = False  # `name~` / `type=` only lex as keywords with their operator
        if needs_quote:
            if "`" in name or not name or _CONTROL.search(name):
                raise ValueError(f"module name {name!r} cannot be written in a rule file")
            return f"`{name}`"
        return name
    raise TypeError(f"not a path segment: {part!r}")


def format_index(part: ast.Index | ast.Slice) -> str:
    if isinstance(part, ast.Index):
        return str(part.index)
    start = "" if part.start is None else str(part.start)
    stop = "" if part.stop is None else str(part.stop)
    if part.step is None:
        return f"{start}:{stop}"
    return f"{start}:{stop}:{part.step}"


def quote(value: str) -> str:
    """Inverse of the parser's raw-string decoding (only ``\\"`` is an escape)."""
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\n":
            raise ValueError("a string in a rule file cannot hold a line break; write \\n")
        if ch == '"':
            out.append('\\"')
            i += 1
        elif ch == "\\":
            if i + 1 >= len(value) or value[i + 1] in '"\n':
                raise ValueError(f"string {value!r} cannot be written: a lone backslash before a quote or its end")
            out.append(value[i : i + 2])
            i += 2
        else:
            out.append(ch)
            i += 1
    return '"' + "".join(out) + '"'
