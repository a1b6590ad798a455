"""Build the AST from Lark's parse tree, checking what the grammar cannot say.

:class:`_ToAst` has one handler ``name(place, children)`` for each tree name of
grammar/freeze.lark (rule or ``-> alias``); ``place`` is the tree's position
``(line, column, start, end_line, end_column, end)`` from Lark's
``propagate_positions`` (None for an empty tree). Handlers also refuse what parses but
means nothing (a bad regex, ``**`` inside a word, a share over 100%, a zero slice step,
selectors nested past :data:`MAX_SELECTOR_DEPTH`) with :class:`_Located`, which the
parser turns into a RuleSyntaxError at that line and column.

Why a parse tree first and not ``Lark(..., transformer=...)``: Lark's in-parse
transformer sees only the children a rule keeps, never the positions of the keywords and
brackets it drops (``freeze`` in ``freeze fc``, the ``]`` closing an index), and Lark
refuses meta arguments there ("Meta args not supported for internal transformer").
Statement spans start at the keyword, so the handlers run over the finished tree, with
Lark's non-recursive transformer (deep selectors cannot overflow the stack).
"""

from __future__ import annotations

import functools
import re
import warnings

from lark import Token, Tree
from lark.visitors import Transformer_NonRecursive

from freezedsl.errors import Span
from freezedsl.syntax import ast

TYPE_CHECKING = False
if TYPE_CHECKING:
    from decimal import Decimal
    from typing import Any

    from lark.tree import Meta

#: deepest selector nesting (except chains, ',' lists, '?') parse accepts
MAX_SELECTOR_DEPTH = 300


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


class _ToAst:
    """The AST handlers: ``name(place, children)`` for each tree name of the grammar,
    called bottom-up over Lark's parse tree by :func:`build_ast`. One instance per parse."""

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

    def shape_is(self, place: Any, items: list[Any]) -> ast.ShapeIs:
        return ast.ShapeIs(tuple(items[1:]), span=_span_of(place))

    def dim_size(self, place: Any, items: list[Token]) -> int:
        tok = items[0]
        if str(tok).startswith(("+", "-")):
            raise _Located(f"a shape holds sizes such as 768 or *; {tok} is not one", tok.line or 1, tok.column or 1)
        return _int(tok) or 0

    def dim_any(self, place: Any, items: list[Any]) -> None:
        return None

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


class _Builder(Transformer_NonRecursive):
    """Calls a ``_ToAst`` handler for every tree, bottom-up (no recursion: selectors may
    nest a few hundred levels). Lark calls ``__default__`` for a tree name the
    transformer has no attribute for, with the tree's positions; a grammar rule named
    like one of Lark's own Transformer attributes (``transform``) would be refused here."""

    def __init__(self, handlers: dict[str, Any]) -> None:
        super().__init__(visit_tokens=False)
        clash = sorted(name for name in handlers if hasattr(self, name))
        if clash:  # pragma: no cover - a grammar author's mistake, caught by any parse test
            raise AssertionError(f"rename grammar rules {clash}: they are Lark Transformer attributes")
        self._handlers = handlers

    def __default__(self, data: str, children: list[Any], meta: Meta) -> Any:
        place = None if meta.empty else (meta.line, meta.column, meta.start_pos, meta.end_line, meta.end_column, meta.end_pos)
        return self._handlers[data](place, children)


def build_ast(tree: Tree[Token]) -> list[ast.Statement]:
    """The statements of a parsed ``start`` tree. Raises :class:`_Located` for the
    first (leftmost-innermost) thing that parses but is not valid."""
    result: list[ast.Statement] = _Builder(_ToAst().handlers()).transform(tree)
    return result
