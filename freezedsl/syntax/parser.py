"""Parse rule text into the AST, with errors in the user's words.

The grammar lives in ``grammar/freeze.lark`` (shipped in the wheel as the package
``freezedsl.grammar``). Parsing is LALR(1): linear time in the length of the text
(benchmarks/results/parse.md has the measured figures). The parse tables are generated
from the grammar with Lark (``tools/gen_parser.py``) and run by
:mod:`freezedsl.syntax._lalr`, which parses exactly as Lark does without importing it
(importing Lark took longer than a bare interpreter's whole start-up; see
benchmarks/bench_startup.py). The AST is built during the parse: the loop calls a
``_ToAst`` handler at each reduction (no parse tree in between). Any text either parses or raises
:class:`~freezedsl.errors.RuleSyntaxError` with a 1-based line and column; the parser's
own exceptions never escape. Nothing here imports torch.
"""

from __future__ import annotations

import bisect
import functools
import os
import re
import warnings

from freezedsl.errors import RuleSyntaxError, Span, source_lines
from freezedsl.syntax import _lalr, ast
from freezedsl.syntax._lalr import Token, UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from freezedsl.util import gc_paused, replace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from decimal import Decimal
    from typing import Any

#: Largest rule file (bytes) or rule text (characters). Real rule files are a few KiB;
#: parsing is linear but costs ~5 us and ~150 bytes of memory per byte of text, so a
#: 16 MiB file took over a minute and gigabytes. At 1 MiB the worst file checks in a few seconds.
MAX_SOURCE_BYTES = 1024 * 1024
_SIZE_HINT = "a rule file needs far less: select with globs, ** or name~ regexes instead of listing names"
MAX_NESTING = 200
#: deepest selector nesting (except chains, ',' lists, '?') parse accepts
MAX_SELECTOR_DEPTH = 300


def grammar_text() -> str:
    """The grammar, from the installed package or, in a source checkout, ``grammar/``."""
    from importlib import resources
    from pathlib import Path as FsPath

    try:
        return resources.files("freezedsl.grammar").joinpath("freeze.lark").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - odd installs
        here = FsPath(__file__).resolve().parents[2] / "grammar" / "freeze.lark"
        return here.read_text("utf-8")


@functools.lru_cache(maxsize=1)
def _lark() -> _lalr.Parser:
    """The parser (once per process): the generated tables of grammar/freeze.lark.

    ``_lark().parse(text)`` returns the tree ``Lark(grammar_text(), parser="lalr",
    lexer="contextual", propagate_positions=True, maybe_placeholders=True).parse(text)``
    would, without importing Lark (the name is kept from when it was Lark).
    """
    return _lalr.Parser()


#: torch dtype names ``dtype=`` accepts (str(torch.X) without ``torch.``), as of torch 2.x;
#: listed here so that parsing never imports torch.
DTYPES = frozenset(
    ["bfloat16", "bool", "complex128", "complex32", "complex64", "float16", "float32", "float64", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "qint8", "qint32", "quint8", "quint4x2", "quint2x4"]
)
#: torch's other names for the same dtypes (torch.half is torch.float16)
DTYPE_ALIASES = {
    "half": "float16", "float": "float32", "double": "float64", "cfloat": "complex64",
    "cdouble": "complex128", "chalf": "complex32", "short": "int16", "int": "int32", "long": "int64",
}
_COMMON_DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "bool")


# --------------------------------------------------------------- AST handlers


def _span_of(place: tuple[Any, ...] | None) -> Span | None:
    """A reduction's place ``(line, column, start, end_line, end_column, end)`` as a Span."""
    if place is None:
        return None
    return Span(place[0], place[1], place[3], place[4])


def _tok_span(tok: Token) -> Span:
    return Span(tok.line or 1, tok.column or 1, tok.end_line or 1, tok.end_column or 1)


def unquote(raw: str) -> str:
    """Decode a raw string literal: only ``\\"`` is an escape."""
    body = raw[1:-1]
    return body.replace('\\"', '"') if '\\"' in body else body


class _Located(Exception):
    """A semantic error found while building the AST; turned into RuleSyntaxError."""

    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(message)
        self.message, self.line, self.col = message, line, col


#: nested repetition is allowed only when both counts are bounded and their product is at most this
MAX_NESTED_REPEAT = 100


@functools.lru_cache(maxsize=4096)  # rule files repeat patterns; each check is a full regex parse
def _nested_repeat(pattern: str) -> bool:
    r"""True for repetition inside repetition that can backtrack for too long.

    ``(a+)+``, ``(.*.){12}``, ``((.{0,100}){0,100}){0,100}``: the number of ways to split
    a name among the nested repetitions grows exponentially (or as a high power) with its
    length. A repetition inside another one is allowed only when both are bounded and
    the product of their upper counts is at most :data:`MAX_NESTED_REPEAT` (``(\d{1,3}\.){3}``).
    Atomic groups, possessive repetitions, look-arounds and both branches of a conditional
    group are looked into as well: ``(?>a+)+`` still backtracks through the outer ``+``.
    The bound on the remaining patterns is the time budget (freezedsl.planning.rx).
    """
    try:
        import re._parser as sre_parse
    except ImportError:  # pragma: no cover - Python < 3.11
        import sre_parse

    try:
        with warnings.catch_warnings():  # FutureWarning: _check_regex reports it
            warnings.simplefilter("ignore", FutureWarning)
            tree = sre_parse.parse(pattern)
    except Exception:  # noqa: BLE001  # pragma: no cover - compile() already accepted it
        return False
    repeats = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, getattr(sre_parse, "POSSESSIVE_REPEAT", None)}
    maxrepeat = sre_parse.MAXREPEAT

    def walk(items: Any, outer: int) -> bool:
        """``outer``: product of the upper counts of the enclosing repetitions (1: none)."""
        for op, arg in items:
            if op in repeats:
                _lo, hi, sub = arg
                if hi > 1:
                    if outer > 1 and (hi == maxrepeat or outer * hi > MAX_NESTED_REPEAT):
                        return True
                    inner = maxrepeat if hi == maxrepeat or outer == maxrepeat else outer * hi
                else:
                    inner = outer
                if walk(sub, inner):
                    return True
            elif any(walk(sub, outer) for sub in _subpatterns(sre_parse, op, arg)):
                return True
        return False

    return walk(tree, 1)


def _subpatterns(sre_parse: Any, op: Any, arg: Any) -> list[Any]:
    """The item sequences inside one non-repetition regex node (groups, branches, look-arounds,
    atomic groups, both arms of a conditional group)."""
    if op == sre_parse.SUBPATTERN:
        return [arg[-1]]
    if op == sre_parse.BRANCH:
        return list(arg[1])
    if op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
        return [arg[1]]
    if op == getattr(sre_parse, "ATOMIC_GROUP", object()):
        return [arg]
    if op == sre_parse.GROUPREF_EXISTS:  # (?(1)yes|no)
        return [arm for arm in arg[1:] if arm is not None]
    return []


def _check_regex(tok: Token) -> str:
    pattern = unquote(str(tok))
    try:
        with warnings.catch_warnings():  # FutureWarning: reported below as a located error
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        pos = getattr(exc, "pos", None)
        col = (tok.column or 1) + 1 + (pos or 0)
        detail = getattr(exc, "msg", str(exc))
        raise _Located(
            f"invalid regular expression {tok!s}: {detail}; write a Python regex such as \"^layer[12]\\.\"",
            tok.line or 1,
            col,
        ) from None
    if _nested_repeat(pattern):
        raise _Located(
            f"regular expression {tok!s} nests repetition (like (a+)+ or (.*.){{12}}), which can take "
            "exponential time on names that almost match; write it without repetition inside "
            f"repetition (bounded counts whose product is at most {MAX_NESTED_REPEAT}, such as "
            "(\\d{1,3}\\.){3}, are allowed; for any number of path segments use a path with **)",
            tok.line or 1,
            (tok.column or 1) + 1,
        )
    from freezedsl.planning.rx import check_dialect

    ambiguous = check_dialect(pattern)
    if ambiguous is not None:
        raise _Located(
            f"regular expression {tok!s} is ambiguous ({ambiguous}); escape the character "
            "(\\[, \\-, \\&, \\|, \\~) to mean it literally",
            tok.line or 1,
            (tok.column or 1) + 1,
        )
    return pattern


MAX_INT_DIGITS = 12


def _int(tok: Token | None) -> int | None:
    """An integer token, refusing absurd sizes with a located error."""
    if tok is None:
        return None
    text = str(tok)
    if len(text.lstrip("+-")) > MAX_INT_DIGITS:
        raise _Located(
            f"number {text[:20]}... is too large; write at most {MAX_INT_DIGITS} digits",
            tok.line or 1,
            tok.column or 1,
        )
    return int(text)


class _ToAst:
    """The AST handlers: ``name(place, children)`` for each tree name of the grammar,
    called by the LALR loop at each reduction (``_lalr.Parser.parse_to``); no parse tree is
    built in between, which halves parse time on large files. One instance per parse."""

    def __init__(self) -> None:
        self._depth: dict[int, int] = {}  # id(selector node) -> nesting depth; leaves are 0

    def handlers(self) -> dict[str, Any]:
        """Tree name -> the method that turns such a tree into AST."""
        return {name: getattr(self, name) for name in dir(_ToAst) if not name.startswith("_") and name != "handlers"}

    def _nested(self, node: Any, place: Any, parts: Any) -> Any:
        """Record ``node``'s depth; refuse selectors deeper than the recursive passes
        downstream (planning, printing, linting) can walk."""
        depth = 1 + max(self._depth.get(id(p), 0) for p in parts)
        if depth > MAX_SELECTOR_DEPTH:
            line, col = (place[0], place[1]) if place else (1, 1)
            raise _Located(
                f"selector nests {MAX_SELECTOR_DEPTH + 1} levels deep (each except, ',' list and '?' "
                f"is a level; the limit is {MAX_SELECTOR_DEPTH}); split it into several statements",
                line,
                col,
            )
        self._depth[id(node)] = depth
        return node

    # ---- statements
    def start(self, place: Any, items: list[Any]) -> list[Any]:
        return [i for i in items if i is not None]

    def freeze(self, place: Any, items: list[Any]) -> ast.Rule:
        self._check_layers(items[0], where="'freeze'")
        return ast.Rule("freeze", items[0], span=_span_of(place))

    def unfreeze(self, place: Any, items: list[Any]) -> ast.Rule:
        self._check_layers(items[0], where="'unfreeze'")
        return ast.Rule("unfreeze", items[0], span=_span_of(place))

    def expect_selector(self, place: Any, items: list[Any]) -> ast.ExpectSelector:
        self._check_layers(items[1], where="'expect'")
        return ast.ExpectSelector(str(items[0]), items[1], span=_span_of(place))  # type: ignore[arg-type]

    def expect_share(self, place: Any, items: list[Any]) -> ast.ExpectShare:
        state, (op, low, high, tok) = str(items[0]), items[1]
        for value in (low, high):
            if value is not None and value > 100:
                raise _Located(
                    f"share {value}% is over 100%; a share runs from 0% to 100%",
                    tok.line,
                    tok.column,
                )
        if high is not None and low > high:
            raise _Located(
                f"empty range {low}%..{high}%: the lower bound is above the upper one; "
                f"write {high}%..{low}%",
                tok.line,
                tok.column,
            )
        return ast.ExpectShare(state, op, low, high, span=_span_of(place))  # type: ignore[arg-type]

    def freeze_stats(self, place: Any, items: list[Any]) -> ast.StatsRule:
        self._check_layers(items[1], where="'freeze stats'")
        return ast.StatsRule("freeze", items[1], span=_span_of(place))

    def unfreeze_stats(self, place: Any, items: list[Any]) -> ast.StatsRule:
        self._check_layers(items[1], where="'unfreeze stats'")
        return ast.StatsRule("unfreeze", items[1], span=_span_of(place))

    def convert(self, place: Any, items: list[Any]) -> ast.Convert:
        self._check_layers(items[0], where="'convert'")
        target = items[1]
        if str(target).split(".")[-1] != "FrozenBatchNorm2d":
            raise _Located(
                f"cannot convert to {target}; the supported target is FrozenBatchNorm2d",
                target.line or 1,
                target.column or 1,
            )
        return ast.Convert(items[0], "FrozenBatchNorm2d", span=_span_of(place))

    @staticmethod
    def _factor(tok: Token) -> ast.Factor:
        from decimal import Decimal

        text = str(tok)
        relative = text.endswith("x")
        value = Decimal(text[:-1] if relative else text)
        if value != 0 and not (Decimal("1e-30") <= value <= Decimal("1e30")):
            raise _Located(
                f"factor {text[:30]} is out of range; write a number between 1e-30 and 1e30 (or 0)",
                tok.line or 1,
                tok.column or 1,
            )
        return ast.Factor(value, relative)

    def hyper_set(self, place: Any, items: list[Any]) -> ast.Hyper:
        self._check_layers(items[2], where=f"'{items[0]} {items[1]}' (only 'lr decay ... over' has layers)")
        return ast.Hyper(str(items[0]), self._factor(items[1]), items[2], span=_span_of(place))  # type: ignore[arg-type]

    def hyper_decay(self, place: Any, items: list[Any]) -> ast.HyperDecay:
        tok = items[1]
        factor = self._factor(tok)
        if factor.relative or not (0 < factor.value <= 1):
            raise _Located(
                f"decay factor {tok} must be a plain number in (0, 1], e.g. 0.75",
                tok.line or 1,
                tok.column or 1,
            )
        bounds: list[Decimal | None] = []
        for extra, what in ((items[3], "min"), (items[4], "freeze below")):
            if extra is None:
                bounds.append(None)
                continue
            bound = self._factor(extra)
            if bound.relative or not (0 <= bound.value <= 1):
                raise _Located(
                    f"'{what} {extra}' takes a scale in [0, 1], e.g. {what} 0.01", extra.line or 1, extra.column or 1
                )
            bounds.append(bound.value)
        self._check_layers(items[2], nested_ok=False)
        return ast.HyperDecay(
            str(items[0]), factor.value, items[2], bounds[0], bounds[1], span=_span_of(place)  # type: ignore[arg-type]
        )

    def layer(self, place: Any, items: list[Any]) -> ast.Layer:
        return ast.Layer(items[0], span=_span_of(place))

    @staticmethod
    def _check_layers(sel: Any, *, nested_ok: bool = True, where: str = "") -> None:
        """``{...}`` only stands in ``lr decay ... over``, and not inside another ``{...}``."""
        for layer in ast.layers(sel):
            inner = ast.layers(layer.inner)
            bad = layer if where else (inner[0] if inner and not nested_ok else None)
            if bad is None:
                continue
            span = bad.span
            message = (
                f"'{{...}}' groups modules into one layer of 'lr decay ... over'; it cannot stand in {where}"
                if where
                else "a '{...}' layer cannot contain another; list its parts in one '{...}'"
            )
            raise _Located(message, span.line if span else 1, span.col if span else 1)

    def scheduled(self, place: Any, items: list[Any]) -> ast.Scheduled:
        unit, at, inner = str(items[0]), items[1], items[2]
        if (_int(at) or 0) < 0 or str(at).startswith("+"):
            raise _Located(f"{unit} {at} is not a count; write a number such as {unit} 3", at.line or 1, at.column or 1)
        if isinstance(inner, ast.Scheduled):  # pragma: no cover - grammar forbids
            raise _Located("'at' cannot be nested", at.line or 1, at.column or 1)
        return ast.Scheduled(unit, _int(at) or 0, inner, span=_span_of(place))  # type: ignore[arg-type]

    # ---- ranges: (op, low, high, first token)
    @staticmethod
    def _pct(tok: Token) -> Decimal:
        from decimal import Decimal

        text = str(tok)[:-1]
        if len(text) > 30:
            raise _Located("share has too many digits; write it like 12.5%", tok.line or 1, tok.column or 1)
        return Decimal(text)

    def range_between(self, place: Any, items: list[Token]) -> tuple[Any, ...]:
        return ("between", self._pct(items[0]), self._pct(items[1]), items[0])

    def range_compare(self, place: Any, items: list[Token]) -> tuple[Any, ...]:
        return (str(items[0]), self._pct(items[1]), None, items[1])

    def range_exact(self, place: Any, items: list[Token]) -> tuple[Any, ...]:
        return ("==", self._pct(items[0]), None, items[0])

    # ---- selectors
    def except_(self, place: Any, items: list[Any]) -> ast.Except:
        return self._nested(ast.Except(items[0], items[1], span=_span_of(place)), place, items)

    def union(self, place: Any, items: list[Any]) -> ast.Union_:
        return self._nested(ast.Union_(tuple(items), span=_span_of(place)), place, items)

    def optional(self, place: Any, items: list[Any]) -> ast.Maybe:
        return self._nested(ast.Maybe(items[0], span=_span_of(place)), place, items)

    def group(self, place: Any, items: list[Any]) -> Any:
        return items[0]

    def all(self, place: Any, items: list[Any]) -> ast.All:
        return ast.All(span=_span_of(place))

    def name_regex(self, place: Any, items: list[Token]) -> ast.NameRegex:
        return ast.NameRegex(_check_regex(items[1]), span=_span_of(place))

    def type_regex(self, place: Any, items: list[Token]) -> ast.TypeRegex:
        return ast.TypeRegex(_check_regex(items[1]), span=_span_of(place))

    def type_name(self, place: Any, items: list[Token]) -> ast.TypeName:
        return ast.TypeName(str(items[1]), span=_span_of(place))

    def tensor_compare(self, place: Any, items: list[Token]) -> ast.TensorCompare:
        head, tok = str(items[0]), items[1]
        prop = "ndim" if head.startswith("ndim") else "numel"
        op = head[len(prop):].strip()
        value = _int(tok) or 0
        if str(tok).startswith(("+", "-")) or len(str(tok)) > 19:
            raise _Located(
                f"{prop} compares with a count such as {prop}{op}1; {tok} is not one",
                tok.line or 1,
                tok.column or 1,
            )
        return ast.TensorCompare(prop, "==" if op == "=" else op, value, span=_span_of(place))  # type: ignore[arg-type]

    def dtype_is(self, place: Any, items: list[Token]) -> ast.DtypeIs:
        tok = items[1]
        name = str(tok).removeprefix("torch.")
        name = DTYPE_ALIASES.get(name, name)
        if name not in DTYPES:
            import difflib

            close = difflib.get_close_matches(name, sorted(DTYPES), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close[:-1]) + ' or ' if close[:-1] else ''}{close[-1]}?" if close else f" (torch dtypes: {', '.join(_COMMON_DTYPES)}, ...)"
            raise _Located(f"unknown dtype '{tok}'{hint}", tok.line or 1, tok.column or 1)
        return ast.DtypeIs(name, span=_span_of(place))

    def initially(self, place: Any, items: list[Token]) -> ast.Initially:
        return ast.Initially(str(items[1]), span=_span_of(place))  # type: ignore[arg-type]

    def path(self, place: Any, items: list[Any]) -> ast.Path:
        parts: list[ast.PathPart] = []
        for item in items:
            if isinstance(item, Token):  # CHILDREN
                parts.append(ast.Children())
            else:
                parts.append(item)
        return ast.Path(tuple(parts), span=_span_of(place))

    def seg_word(self, place: Any, items: list[Token]) -> ast.Word:
        return ast.Word(str(items[0]))

    def seg_quoted(self, place: Any, items: list[Token]) -> ast.Word:
        return ast.Word(str(items[0])[1:-1])

    def seg_glob(self, place: Any, items: list[Token]) -> ast.PathPart:
        text = str(items[0])
        if text == "**":
            return ast.AnySegments()
        if "**" in text:
            tok = items[0]
            raise _Located(
                f"'**' must be a whole path segment, not part of '{text}'; "
                f"write '**.{text.replace('**', '*')}' or '{text.replace('**', '*')}'",
                tok.line or 1,
                tok.column or 1,
            )
        return ast.Glob(text)

    def index_one(self, place: Any, items: list[Token]) -> ast.Index:
        return ast.Index(_int(items[0]) or 0)

    def index_slice(self, place: Any, items: list[Token | None]) -> ast.Slice:
        step = _int(items[2]) if len(items) == 3 else None
        if step == 0:
            tok = items[2]
            assert tok is not None
            raise _Located("slice step cannot be zero; use a step such as 1, 2 or -1", tok.line or 1, tok.column or 1)
        return ast.Slice(_int(items[0]), _int(items[1]), step)


# --------------------------------------------------------------- trivia


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


# --------------------------------------------------------------- errors

_SELECTOR_START = {
    "ALL", "CHILDREN", "WORD", "GLOB", "QUOTED", "NAME_MATCH", "TYPE_EQ", "TYPE_MATCH", "LPAR",
    "TENSOR_CMP", "DTYPE_EQ", "INITIALLY", "LBRACE",
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
    comments: list[Token] = []
    try:
        with gc_paused():  # the parse tree and AST are acyclic; collection passes only cost
            return _parse_checked(source, path, comments)
    except RecursionError:
        raise _error(source, path, "rule text nests too deeply to parse; simplify it", 1, 1) from None


def _parse_checked(source: str, path: str | None, comments: list[Token]) -> ast.Program:
    try:
        parser = _lark()
        try:
            statements = parser.parse_to(source, _ToAst().handlers())
        except _Located as located:
            parser.parse(source)  # a syntax error anywhere is reported before a semantic one
            raise located from None
        comments.extend(_scan_comments(source))
    except UnexpectedInput as exc:
        raise _translate(exc, source, path) from None
    except _Located as exc:
        raise _error(source, path, exc.message, exc.line, exc.col) from None
    except RecursionError:
        raise _error(source, path, "rule text nests too deeply to parse; simplify it", 1, 1) from None
    statements, tail = _attach_trivia(statements, comments, source)
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


_COMMENT_OR_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`\n]+`|#[^\n]*')


def _scan_comments(source: str) -> list[Token]:
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


def _first_bad_char(source: str) -> tuple[int, int, str] | None:
    m = re.search(r"[\x00-\x08\x0b\x0e-\x1f\x7f]", source)
    if m is None:
        return None
    before = source[: m.start()]
    line = before.count("\n") + 1
    col = m.start() - (before.rfind("\n") + 1) + 1
    return line, col, m.group(0)


def _code_only(source: str) -> str:
    """The text with comments and quoted strings blanked out (same length)."""
    return _COMMENT_OR_STRING.sub(lambda m: " " * len(m.group(0)), source)


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
