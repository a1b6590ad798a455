"""The rule-language AST: frozen dataclasses that carry source spans.

Spans never take part in equality, so ``parse(format(p)) == p`` compares meaning and
comments, not layout. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from freezedsl.errors import Span

TYPE_CHECKING = False
if TYPE_CHECKING:
    from decimal import Decimal
    from typing import Literal


def _span() -> Span | None:
    return field(default=None, compare=False, repr=False, kw_only=True)


# ----------------------------------------------------------------- path parts


@dataclass(frozen=True)
class Word:
    """One literal name segment (``layer4``, ``0``, or a backtick-quoted name)."""

    name: str


@dataclass(frozen=True)
class Glob:
    """One segment with ``*`` wildcards (``*``, ``layer*``, ``*_proj``); never spans a dot."""

    pattern: str


@dataclass(frozen=True)
class AnySegments:
    """``**``: any number of segments, including none."""


@dataclass(frozen=True)
class Index:
    """``[i]``: the i-th child module (negative counts from the end)."""

    index: int


@dataclass(frozen=True)
class Slice:
    """``[a:b:c]`` over child modules, with Python slice semantics."""

    start: int | None
    stop: int | None
    step: int | None = None


@dataclass(frozen=True)
class Children:
    """``children`` at the start of a path: the root module's children (``children[0:6]``)."""


PathPart = Word | Glob | AnySegments | Index | Slice | Children


# ----------------------------------------------------------------- selectors


@dataclass(frozen=True)
class All:
    span: Span | None = _span()


@dataclass(frozen=True)
class Path:
    parts: tuple[PathPart, ...]
    span: Span | None = _span()


@dataclass(frozen=True)
class NameRegex:
    """``name~"re"``: ``re.search`` on every full parameter name (tied aliases too)."""

    pattern: str
    span: Span | None = _span()


@dataclass(frozen=True)
class TypeName:
    """``type=Class``: modules whose class, or a base class, has this name."""

    name: str
    span: Span | None = _span()


@dataclass(frozen=True)
class TypeRegex:
    """``type~"re"``: modules whose class name matches ``re.search``."""

    pattern: str
    span: Span | None = _span()


@dataclass(frozen=True)
class TensorCompare:
    """``ndim<=1``, ``numel>=1000000``: parameters by a count of their tensor."""

    prop: Literal["ndim", "numel"]
    op: Literal["==", "!=", "<", "<=", ">", ">="]
    value: int
    span: Span | None = _span()

    def holds(self, actual: int) -> bool:
        v = self.value
        return {
            "==": actual == v, "!=": actual != v, "<": actual < v,
            "<=": actual <= v, ">": actual > v, ">=": actual >= v,
        }[self.op]


@dataclass(frozen=True)
class DtypeIs:
    """``dtype=bfloat16``: parameters of that torch dtype (canonical name, no ``torch.``)."""

    dtype: str
    span: Span | None = _span()


@dataclass(frozen=True)
class ShapeIs:
    """``shape=[*, 768]``: parameters of that shape; ``None`` (``*``) is any size."""

    dims: tuple[int | None, ...]
    span: Span | None = _span()

    def holds(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == len(self.dims) and all(d is None or d == n for d, n in zip(self.dims, shape))


@dataclass(frozen=True)
class Initially:
    """``initially frozen`` / ``initially trainable``: requires_grad before freezedsl first
    changed the tensor (what the library that built the model chose)."""

    state: State
    span: Span | None = _span()


@dataclass(frozen=True)
class Layer:
    """``{a, b}``: what ``a, b`` select is one layer of an ``lr decay ... over``."""

    inner: Selector
    span: Span | None = _span()


@dataclass(frozen=True)
class Union_:
    items: tuple[Selector, ...]
    span: Span | None = _span()


@dataclass(frozen=True)
class Except:
    base: Selector
    excluded: Selector
    span: Span | None = _span()


@dataclass(frozen=True)
class Maybe:
    """``sel?``: ``sel`` may match nothing without an error."""

    inner: Selector
    span: Span | None = _span()


Atom = All | Path | NameRegex | TypeName | TypeRegex | TensorCompare | DtypeIs | ShapeIs | Initially
Selector = (
    All | Path | NameRegex | TypeName | TypeRegex | TensorCompare | DtypeIs | ShapeIs | Initially | Union_ | Except | Maybe
    | Layer
)


# ----------------------------------------------------------------- statements

if TYPE_CHECKING:
    State = Literal["trainable", "frozen"]
    CompareOp = Literal["between", "<", "<=", ">", ">=", "=="]


@dataclass(frozen=True)
class Trivia:
    """Comments and blank lines around a statement, kept so ``fmt`` loses nothing."""

    comments: tuple[str, ...] = ()  # own-line comments before the statement
    trailing: str | None = None  # comment after the statement on its last line
    blank_before: bool = False  # at least one blank line separated it from what came before


@dataclass(frozen=True)
class Rule:
    """``freeze SEL`` / ``unfreeze SEL``."""

    action: Literal["freeze", "unfreeze"]
    selector: Selector
    trivia: Trivia = field(default_factory=Trivia)
    span: Span | None = _span()

    @property
    def requires_grad(self) -> bool:
        return self.action == "unfreeze"


@dataclass(frozen=True)
class ExpectSelector:
    """``expect trainable SEL`` / ``expect frozen SEL``."""

    state: State
    selector: Selector
    trivia: Trivia = field(default_factory=Trivia)
    span: Span | None = _span()


@dataclass(frozen=True)
class ExpectShare:
    """``expect trainable 1%..10%``: the share of parameter elements in ``state``."""

    state: State
    op: CompareOp
    low: Decimal  # the only bound unless op == "between"
    high: Decimal | None = None
    trivia: Trivia = field(default_factory=Trivia)
    span: Span | None = _span()

    def holds(self, percent: float) -> bool:
        from decimal import Decimal

        value = Decimal(repr(percent))
        if self.op == "between":
            assert self.high is not None
            return self.low <= value <= self.high
        return {
            "<": value < self.low,
            "<=": value <= self.low,
            ">": value > self.low,
            ">=": value >= self.low,
            "==": value == self.low,
        }[self.op]


@dataclass(frozen=True)
class StatsRule:
    """``freeze stats SEL`` / ``unfreeze stats SEL``: running statistics of norm layers."""

    action: Literal["freeze", "unfreeze"]
    selector: Selector
    trivia: Trivia = field(default_factory=Trivia)
    span: Span | None = _span()


@dataclass(frozen=True)
class Convert:
    """``convert SEL to FrozenBatchNorm2d``: replace BatchNorm2d modules in scope."""

    selector: Selector
    target: str
    trivia: Trivia = field(default_factory=Trivia)
    span: Span | None = _span()


@dataclass(frozen=True)
class Factor:
    """``0.1x`` (relative to the base value) or ``3e-4`` (absolute)."""

    value: Decimal
    relative: bool

    def resolve(self, base: float) -> float:
        return float(self.value) * base if self.relative else float(self.value)


@dataclass(frozen=True)
class Hyper:
    """``lr 0.1x SEL`` / ``weight_decay 0 SEL``: optimizer settings for param_groups."""

    name: Literal["lr", "weight_decay"]
    factor: Factor
    selector: Selector
    trivia: Trivia = field(default_factory=Trivia)
    span: Span | None = _span()


@dataclass(frozen=True)
class HyperDecay:
    """``lr decay 0.75 over encoder.layer[:]``: layer-wise decay of a hyper-parameter."""

    name: Literal["lr", "weight_decay"]
    factor: Decimal
    selector: Selector
    min_scale: Decimal | None = None  # `min M`: no layer's scale goes below M (timm's min_scale)
    freeze_below: Decimal | None = None  # `freeze below T`: layers scaled below T are frozen
    trivia: Trivia = field(default_factory=Trivia)
    span: Span | None = _span()


Simple = Rule | ExpectSelector | ExpectShare | StatsRule | Convert | Hyper | HyperDecay


@dataclass(frozen=True)
class Scheduled:
    """``at epoch 3: STATEMENT``: a statement that joins the program at that time."""

    unit: Literal["epoch", "step"]
    at: int
    statement: Simple
    trivia: Trivia = field(default_factory=Trivia)
    span: Span | None = _span()


Statement = Rule | ExpectSelector | ExpectShare | StatsRule | Convert | Hyper | HyperDecay | Scheduled


@dataclass(frozen=True)
class Program:
    statements: tuple[Statement, ...]
    trailing_comments: tuple[str, ...] = ()
    path: str | None = field(default=None, compare=False)
    source: str | None = field(default=None, compare=False, repr=False)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(s for s in self.statements if isinstance(s, Rule))

    @property
    def expectations(self) -> tuple[ExpectSelector | ExpectShare, ...]:
        return tuple(s for s in self.statements if isinstance(s, (ExpectSelector, ExpectShare)))

    @property
    def scheduled(self) -> tuple[Scheduled, ...]:
        return tuple(s for s in self.statements if isinstance(s, Scheduled))


def atoms(selector: Selector, optional: bool = False) -> list[tuple[Atom, bool, bool]]:
    """Every atom of a selector as ``(atom, optional, excluded)``.

    ``excluded`` is True for atoms on the right of an ``except``.
    """
    out: list[tuple[Atom, bool, bool]] = []

    def walk(sel: Selector, opt: bool, excl: bool) -> None:
        if isinstance(sel, Union_):
            for item in sel.items:
                walk(item, opt, excl)
        elif isinstance(sel, Except):
            walk(sel.base, opt, excl)
            walk(sel.excluded, opt, not excl)
        elif isinstance(sel, Maybe):
            walk(sel.inner, True, excl)
        elif isinstance(sel, Layer):
            walk(sel.inner, opt, excl)
        else:
            out.append((sel, opt, excl))

    walk(selector, optional, False)
    return out


def layers(selector: Selector) -> list[Layer]:
    """The ``{...}`` groups of a selector, outermost first."""
    out: list[Layer] = []

    def walk(sel: Selector) -> None:
        if isinstance(sel, Layer):
            out.append(sel)
        elif isinstance(sel, Union_):
            for item in sel.items:
                walk(item)
        elif isinstance(sel, Except):
            walk(sel.base)
            walk(sel.excluded)
        elif isinstance(sel, Maybe):
            walk(sel.inner)

    walk(selector)
    return out
