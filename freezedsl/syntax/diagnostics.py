"""Lark's parse errors in the user's words.

Lark reports where the text stops parsing (``UnexpectedToken``: the token found and the
terminals the LALR table allows there; ``UnexpectedCharacters``: no terminal the
contextual lexer allows matches). :func:`_translate` turns either into one line --
``expected <what, in words>, found <what>`` -- at Lark's line and column, trimming the
expected terminals with what the statement written so far allows (LALR merges states,
so its sets are wider than the language) and naming an unclosed bracket.
"""

from __future__ import annotations

import re

from freezedsl.errors import RuleSyntaxError, source_lines
from freezedsl.syntax.trivia import _code_only

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lark import Token
    from lark.exceptions import UnexpectedInput

_SELECTOR_START = {
    "ALL", "CHILDREN", "WORD", "GLOB", "QUOTED", "NAME_MATCH", "TYPE_EQ", "TYPE_MATCH", "LPAR",
    "TENSOR_CMP", "DTYPE_EQ", "SHAPE_EQ", "INITIALLY", "LBRACE",
}
_STATEMENT_START = {"FREEZE", "UNFREEZE", "EXPECT", "CONVERT", "HYPER", "AT"}
_END_OF_SELECTOR = {"SEMICOLON", "_NL", "$END", "COMMA", "EXCEPT", "QMARK"}

_FOUND = {
    "_NL": "the end of the line",
    "$END": "the end of the file",
}


def _describe_expected(expected: set[str]) -> str:
    parts: list[str] = []
    exp = set(expected)
    if exp & _STATEMENT_START and "AT" not in exp:
        return "a statement after 'at ...:' (freeze, unfreeze, expect, convert, lr or weight_decay; 'at' does not nest)"
    if exp & _STATEMENT_START and exp <= _STATEMENT_START | {"SEMICOLON", "_NL", "$END"}:
        return "a statement: freeze, unfreeze, expect, convert, lr, weight_decay or at"
    if "STATE" in exp:
        return "'trainable' or 'frozen' after 'expect'"
    if "UNIT" in exp:
        return "'epoch' or 'step' after 'at'"
    if "FACTOR" in exp:
        extra = " or 'decay'" if "DECAY" in exp else ""
        return f"a factor such as 0.1x (times the base value) or 3e-4 (absolute){extra}"
    if exp & _SELECTOR_START:
        if "PERCENT" in exp:
            parts.append("a selector or a share such as 1%..10% or <= 5%")
        else:
            parts.append(
                'a selector (a path such as fc or layer4.1.conv2, all, children[0:6], '
                'name~"regex" or type=BatchNorm2d)'
            )
        exp -= _SELECTOR_START | {"PERCENT", "COMPARE", "_NL"}
    if exp == {"INT"}:
        return "a whole number"
    if "STAR" in exp:  # inside shape=[...]
        parts.append("a size such as 768 or * (any size)")
        exp -= {"INT", "STAR", "RSQB"}
    if exp & {"INT", "COLON"}:
        parts.append("an index or slice such as [0], [-1] or [0:6]")
        exp -= {"INT", "COLON", "RSQB"}
    if "STRING" in exp:
        parts.append('a quoted regular expression such as "layer[12]"')
        exp.discard("STRING")
    if "DOTTED" in exp:
        parts.append("a class name such as BatchNorm2d")
        exp.discard("DOTTED")
    if "PERCENT" in exp and not parts:
        parts.append("a percentage such as 5%")
        exp.discard("PERCENT")
    if exp & _END_OF_SELECTOR:
        parts.append("';' or a new line to end the statement")
        exp -= _END_OF_SELECTOR | {"DOT", "LSQB", "RPAR", "RBRACE"}
    simple = {
        "RSQB": "']'",
        "RPAR": "')'",
        "RBRACE": "'}'",
        "DOT": "'.'",
        "LSQB": "'['",
        "__ANON_0": "'..'",
        "COLON": "':'",
        "TO": "'to'",
        "OVER": "'over'",
        "DECAY_CLAUSE": "'min SCALE' or 'freeze below SCALE'",
        "BELOW": "'below'",
    }
    for name in sorted(exp):
        if name in simple and simple[name] not in parts:
            parts.append(simple[name])
    if not parts:
        return "something else"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _found_token(tok: Token) -> str:
    if tok.type in _FOUND:
        return _FOUND[tok.type]
    return f"'{tok!s}'"


def _last_line(source: str) -> int:
    """The line of the end of the text (a final newline opens no line of its own)."""
    return max(source.rstrip("\n").count("\n") + 1, 1)


def _source_line(source: str, line: int) -> str | None:
    lines = source_lines(source)
    return lines[line - 1] if 0 < line <= len(lines) else None


def _error(source: str, path: str | None, message: str, line: int, col: int) -> RuleSyntaxError:
    return RuleSyntaxError(message, path=path, line=line, col=col, source_line=_source_line(source, line))


def _in_context(expected: set[str], source: str, pos: int) -> tuple[set[str], str | None]:
    """Trim LALR's merged expectation sets with what the statement so far allows.

    Returns the trimmed set and, for an unclosed bracket, a phrase naming the closer.
    """
    code = _code_only(source[:pos])
    stmt_start = max(code.rfind(";"), code.rfind("\n")) + 1
    line_text = code[stmt_start:].strip()
    head = re.sub(r"^at\s+\w+\s+\S+\s*:\s*", "", line_text)
    exp = set(expected)
    if not head.startswith("convert"):
        exp.discard("TO")
    if "decay" not in head:
        exp.discard("OVER")
    if head and exp & {"SEMICOLON", "_NL", "$END"} and exp & {"FREEZE", "MIN"}:
        # after a selector, `freeze` / `min` can only be `lr decay`'s clauses
        exp -= {"FREEZE", "MIN"}
        if "decay" in head and " over " in f" {head} ":
            exp.add("DECAY_CLAUSE")
    since_semicolon = code[code.rfind(";") + 1 :]
    depth, opened = 0, -1
    for i, ch in enumerate(since_semicolon):
        if ch == "(":
            depth, opened = depth + 1, i
        elif ch == ")":
            depth = max(depth - 1, 0)
    closer = None
    tail = code.rstrip()
    needs_selector = tail.endswith(("(", ",")) or re.search(r"\bexcept\Z", tail) is not None
    if depth > 0 and not needs_selector:
        abs_pos = code.rfind(";") + 1 + opened
        line = code.count("\n", 0, abs_pos) + 1
        col = abs_pos - (code.rfind("\n", 0, abs_pos) + 1) + 1
        closer = f"')' to close the '(' at line {line}, column {col}"
        exp -= _SELECTOR_START | {"_NL"}  # after a complete selector none can follow
    exp.discard("RPAR")  # named by `closer` when it may follow
    if line_text.count("{") > line_text.count("}") and "RBRACE" in exp:
        closer = closer or "'}' to close the '{'"
        exp.discard("RBRACE")
    if line_text.count("[") > line_text.count("]") and "RSQB" in exp:
        closer = closer or "']' to close the '['"
        exp.discard("RSQB")
    return exp, closer


def _translate(exc: UnexpectedInput, source: str, path: str | None) -> RuleSyntaxError:
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken

    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        pos = len(source) if tok.type == "$END" or tok.start_pos is None else tok.start_pos
        exp, closer = _in_context(set(exc.expected), source, pos)
        expected = _describe_expected(exp)
        if closer:
            expected = closer if expected in ("something else", "';' or a new line to end the statement") else f"{closer}, or {expected}"
        line = tok.line if tok.type != "$END" else _last_line(source)
        col = tok.column if tok.type != "$END" else len(_source_line(source, line or 1) or "") + 1
        if tok.type == "_NL":  # point at the end of the line, not the next one
            line, col = tok.line or 1, tok.column or 1
        hint = ""
        if tok.type == "STRING":
            hint = " (a quoted string only follows name~ or type~; quote module names with backticks: `my-name`)"
        return _error(source, path, f"expected {expected}, found {_found_token(tok)}{hint}", line or 1, col or 1)
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        ch = source[pos] if pos < len(source) else ""
        exp, closer = _in_context(set(exc.allowed or ()), source, pos)
        expected = _describe_expected(exp)
        if closer:
            expected = closer if expected in ("something else", "';' or a new line to end the statement") else f"{closer}, or {expected}"
        shown = repr(ch)[1:-1] if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"U+{ord(ch):04X}"
        hint = ""
        if ch == '"':
            hint = ' (a quoted string only follows name~ or type~; quote module names with backticks: `my-name`)'
        elif ch == "=" :
            hint = " (did you mean type=Class or name~\"regex\"?)"
        return _error(source, path, f"unexpected character '{shown}'; expected {expected}{hint}", exc.line, exc.column)
    return _error(source, path, str(exc).splitlines()[0], getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1)