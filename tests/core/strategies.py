"""Hypothesis strategies: generated module trees, and rule programs written for them.

A module tree is generated as plain data (:class:`TreeSpec`) and built with :func:`build`,
so a failing example prints as a readable spec and the same tree can be built twice
(on the CPU and on the meta device). Programs are generated as ASTs
(``freezedsl.syntax.ast`` nodes) drawn from the built model's real names, classes and
child counts, and printed with ``format_program``.
"""

from __future__ import annotations

import contextlib
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import torch
from hypothesis import strategies as st
from torch import nn

from freezedsl.syntax import ast

from .reference import Reference

# --------------------------------------------------------------------- module classes


class Block(nn.Module):
    """A custom module: children and parameters registered under arbitrary attribute names."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - never run
        return x


class Attention(Block):
    """A subclass of Block, so ``type=Block`` also matches it (base-class matching)."""


class Residual(nn.Sequential):
    """A subclass of a torch container: ``type=Sequential`` and ``type~"Seq"`` match it (base classes count)."""


# --------------------------------------------------------------------- tree specs

LEAF_PARAMS: dict[str, tuple[str, ...]] = {
    "linear": ("weight", "bias"),
    "linear_nobias": ("weight",),
    "conv1d": ("weight", "bias"),
    "conv2d": ("weight",),
    "bn1d": ("weight", "bias"),
    "ln": ("weight", "bias"),
    "ln_noaffine": (),
    "emb": ("weight",),
    "relu": (),
    "identity": (),
}
LEAF_KINDS = tuple(LEAF_PARAMS)
SEQUENCE_KINDS = ("sequential", "modulelist", "residual")
NAMED_KINDS = ("moduledict", "block", "attention")
CONTAINER_KINDS = SEQUENCE_KINDS + NAMED_KINDS
PARAM_HOLDERS = ("block", "attention")  # kinds that take direct nn.Parameters

# Attribute / key names for named containers: ordinary names, names that are keywords
# of the language (`all` must be quoted at the start of a path, `name`/`except`/...
# need not be), names that need backticks, and digit names. Never an attribute of
# nn.Module (`children`, `type`, `training` cannot be registered).
CHILD_NAMES = (
    "encoder", "decoder", "head", "fc", "proj", "q_proj", "k_proj", "layer1", "layer2",
    "layer10", "blocks", "norm", "ln_f", "wte", "x", "all", "name", "except", "freeze",
    "expect", "my-mod", "a b", "é", "0", "7",
)  # fmt: skip
PARAM_NAMES = ("weight", "bias", "scale", "gamma", "pos_emb", "all", "name", "w-1")


@dataclass(frozen=True)
class LeafSpec:
    kind: str
    dim: int


@dataclass(frozen=True)
class NodeSpec:
    kind: str
    children: tuple[tuple[str, Spec], ...] = ()
    params: tuple[tuple[str, tuple[int, ...]], ...] = ()
    buffer: bool = False


Spec = LeafSpec | NodeSpec


@dataclass(frozen=True)
class TreeSpec:
    root: NodeSpec
    # (existing parameter name, path of a Block, new attribute): the same Parameter twice
    tied_params: tuple[tuple[str, str, str], ...] = ()
    # (existing leaf module path, path of a Block, new attribute): one module, two paths
    shared_modules: tuple[tuple[str, str, str], ...] = ()
    frozen: frozenset[int] = frozenset()  # positions in model.parameters() set to False
    eval_paths: tuple[str, ...] = ()  # modules put in eval mode


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def walk_spec(spec: Spec, path: str = "") -> Iterator[tuple[str, Spec]]:
    """Every (module path, spec) in pre-order, root included."""
    yield path, spec
    if isinstance(spec, NodeSpec):
        for name, child in spec.children:
            yield from walk_spec(child, _join(path, name))


def spec_param_names(spec: Spec, path: str = "") -> list[str]:
    """Parameter names of the tree without ties, in named_parameters() order."""
    out: list[str] = []
    for mpath, node in walk_spec(spec, path):
        if isinstance(node, LeafSpec):
            out.extend(_join(mpath, p) for p in LEAF_PARAMS[node.kind])
        else:
            out.extend(_join(mpath, p) for p, _ in node.params)
    return out


def _leaf(kind: str, dim: int) -> nn.Module:
    d = dim
    if kind == "linear":
        return nn.Linear(d, d + 1)
    if kind == "linear_nobias":
        return nn.Linear(d, 2, bias=False)
    if kind == "conv1d":
        return nn.Conv1d(d, d, 1)
    if kind == "conv2d":
        return nn.Conv2d(d, 2, 1, bias=False)
    if kind == "bn1d":
        return nn.BatchNorm1d(d)
    if kind == "ln":
        return nn.LayerNorm(d)
    if kind == "ln_noaffine":
        return nn.LayerNorm(d, elementwise_affine=False)
    if kind == "emb":
        return nn.Embedding(d + 2, d)
    if kind == "relu":
        return nn.ReLU()
    if kind == "identity":
        return nn.Identity()
    raise ValueError(kind)


def _node(spec: NodeSpec) -> nn.Module:
    built = [(name, _build(child)) for name, child in spec.children]
    module: nn.Module
    if spec.kind == "sequential":
        module = nn.Sequential(*(m for _, m in built))
    elif spec.kind == "residual":
        module = Residual(*(m for _, m in built))
    elif spec.kind == "modulelist":
        module = nn.ModuleList([m for _, m in built])
    elif spec.kind == "moduledict":
        module = nn.ModuleDict(dict(built))
    else:
        module = Attention() if spec.kind == "attention" else Block()
        for name, shape in spec.params:
            module.register_parameter(name, nn.Parameter(torch.randn(shape)))
        for name, child in built:
            module.add_module(name, child)
    if spec.buffer:
        module.register_buffer("counter", torch.arange(3))
    return module


def _build(spec: Spec) -> nn.Module:
    return _leaf(spec.kind, spec.dim) if isinstance(spec, LeafSpec) else _node(spec)


def build(spec: TreeSpec, device: str | None = None) -> nn.Module:
    """Build the module tree (deterministic values; ``device="meta"`` for no storage)."""
    torch.manual_seed(0)
    ctx = torch.device(device) if device else contextlib.nullcontext()
    with ctx:
        root = _build(spec.root)
    for pname, bpath, attr in spec.tied_params:
        root.get_submodule(bpath).register_parameter(attr, root.get_parameter(pname))
    for lpath, bpath, attr in spec.shared_modules:
        root.get_submodule(bpath).add_module(attr, root.get_submodule(lpath))
    for i, p in enumerate(root.parameters()):
        if i in spec.frozen:
            p.requires_grad_(False)
    for path in spec.eval_paths:
        root.get_submodule(path).eval()
    return root


# --------------------------------------------------------------------- tree strategies

MAX_DEPTH = 3


@st.composite
def _leaf_specs(draw: st.DrawFn) -> LeafSpec:
    return LeafSpec(draw(st.sampled_from(LEAF_KINDS)), draw(st.integers(1, 3)))


@st.composite
def _node_specs(
    draw: st.DrawFn, depth: int, budget: list[int], kind: str | None = None
) -> NodeSpec:
    kind = kind or draw(st.sampled_from(CONTAINER_KINDS))
    used: set[str] = set()
    params: list[tuple[str, tuple[int, ...]]] = []
    if kind in PARAM_HOLDERS and budget[0] > 0:
        for pname in draw(st.lists(st.sampled_from(PARAM_NAMES), max_size=2, unique=True)):
            shape = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
            params.append((pname, shape))
            used.add(pname)
            budget[0] -= 1
    children: list[tuple[str, Spec]] = []
    for i in range(draw(st.integers(1 if depth == 0 else 0, 4))):
        if budget[0] <= 0:
            break
        child: Spec
        if depth < MAX_DEPTH and draw(st.integers(0, 2)) == 0:
            child = draw(_node_specs(depth + 1, budget))
        else:
            child = draw(_leaf_specs())
            budget[0] -= len(LEAF_PARAMS[child.kind])
        if kind in SEQUENCE_KINDS:
            name = str(i)
        else:
            name = draw(st.sampled_from(CHILD_NAMES).filter(lambda n: n not in used))
        used.add(name)
        children.append((name, child))
    return NodeSpec(kind, tuple(children), tuple(params), buffer=draw(st.integers(0, 4)) == 0)


@st.composite
def tree_specs(draw: st.DrawFn, max_params: int = 36, ties: bool = True) -> TreeSpec:
    """Small module trees (at most ~40 parameter names), tied weights and shared modules."""
    budget = [max_params]
    root = draw(_node_specs(0, budget, kind=draw(st.sampled_from(CONTAINER_KINDS))))
    modules = list(walk_spec(root))
    blocks = [p for p, s in modules if isinstance(s, NodeSpec) and s.kind in PARAM_HOLDERS]
    names = spec_param_names(root)
    tied: list[tuple[str, str, str]] = []
    shared: list[tuple[str, str, str]] = []
    if ties and blocks:
        if names:
            for k in range(draw(st.integers(0, 2))):
                tied.append(
                    (draw(st.sampled_from(names)), draw(st.sampled_from(blocks)), f"tied{k}")
                )
        leaves = [p for p, s in modules if isinstance(s, LeafSpec)]
        for k in range(draw(st.integers(0, 1))):
            if not leaves:
                break
            leaf = draw(st.sampled_from(leaves))
            parent = leaf.rpartition(".")[0]
            targets = [b for b in blocks if b != parent]  # never twice under one parent
            if targets:
                shared.append((leaf, draw(st.sampled_from(targets)), f"shared{k}"))
    frozen = frozenset(draw(st.sets(st.integers(0, max(len(names) - 1, 0)), max_size=len(names))))
    eval_paths = tuple(
        draw(st.lists(st.sampled_from([p for p, _ in modules]), max_size=2, unique=True))
    )
    return TreeSpec(root, tuple(tied), tuple(shared), frozen, eval_paths)


# --------------------------------------------------------------------- model facts


@dataclass
class ModelFacts:
    """What a program generator may draw from: the built model's real names and classes."""

    param_names: list[str]
    module_paths: list[str]  # root "" excluded
    children_of: dict[str, list[str]]  # module path -> child module names (named_children)
    class_names: list[str]  # own class names and base class names
    dotted_names: list[str]  # module.qualname suffixes of own classes
    own_class_names: list[str]
    paths: list[str] = field(default_factory=list)
    reference: Reference = field(default=None, repr=False)  # type: ignore[assignment]

    @classmethod
    def of(cls, model: nn.Module) -> ModelFacts:
        params = [n for n, _ in model.named_parameters(remove_duplicate=False)]
        mods = list(model.named_modules(remove_duplicate=False))
        children_of = {path: [n for n, _ in m.named_children()] for path, m in mods}
        classes: set[str] = set()
        dotted: set[str] = set()
        own: set[str] = set()
        for _, m in mods:
            t = type(m)
            own.add(t.__name__)
            classes.update(c.__name__ for c in t.__mro__ if c is not object)
            full = f"{t.__module__}.{t.__qualname__}".split(".")
            dotted.update(".".join(full[-k:]) for k in range(2, len(full) + 1))
        module_paths = [p for p, _ in mods if p]
        return cls(
            params,
            module_paths,
            children_of,
            sorted(classes),
            sorted(dotted),
            sorted(own),
            sorted(set(module_paths) | set(params)),
            Reference(model),
        )


# --------------------------------------------------------------------- program strategies

_PLAIN = re.compile(r"[A-Za-z0-9_]+\Z")
SIMPLE_REGEXES = (
    r"weight$", r"bias$", r"^0\.", r"\.0\.", r"norm", r"proj", r"^[a-z]+\.weight$",
    r"(q|k)_proj", r"é", r"a b", r"\d", r"tied", r"shared\d", r"^x\.", r"\.(weight|bias)$",
)  # fmt: skip
OTHER_TYPES = ("Conv3d", "GRU", "MultiheadAttention", "nn.Linear", "torch.nn.Linear")
TYPE_REGEXES = ("Norm", "^Lin", "Conv", "d$", "^Block$", "List|Dict", "^(Attention|Residual)$")
MISSING = ("nothere", "fc9", "layer99", "blocks.zz", "my-missing")


def _glob_variants(seg: str) -> list[ast.PathPart]:
    out: list[ast.PathPart] = [ast.Glob("*")]
    if _PLAIN.match(seg):
        for k in range(len(seg) + 1):
            out.append(ast.Glob(seg[:k] + "*"))
            out.append(ast.Glob("*" + seg[k:]))
        if len(seg) >= 2:
            out.append(ast.Glob(seg[0] + "*" + seg[-1]))
    return out


@st.composite
def path_atoms(draw: st.DrawFn, facts: ModelFacts) -> ast.Path:
    """A path built from a real module or parameter path, with globs, ** and indices."""
    if not facts.paths:
        return ast.Path((ast.Word(draw(st.sampled_from(MISSING))),))
    target = draw(st.sampled_from(facts.paths))
    segs = target.split(".")
    parts: list[ast.PathPart] = []
    i = 0
    if len(segs) > 1 and draw(st.integers(0, 4)) == 0:  # `**.rest`
        i = draw(st.integers(1, len(segs) - 1))
        parts.append(ast.AnySegments())
    while i < len(segs):
        seg = segs[i]
        parent = ".".join(segs[:i])
        kids = facts.children_of.get(parent, [])
        roll = draw(st.integers(0, 9))
        if roll == 0 and seg in kids:
            k = kids.index(seg)
            idx = draw(st.sampled_from([k, k - len(kids)]))
            if not parts:
                parts.append(ast.Children())
            parts.append(ast.Index(idx))
        elif roll == 1:
            parts.append(draw(st.sampled_from(_glob_variants(seg))))
        elif roll == 2 and i > 0:
            parts.append(ast.AnySegments())
            parts.append(ast.Word(seg))
        else:
            parts.append(ast.Word(seg))
        i += 1
    if draw(st.integers(0, 5)) == 0 and target in facts.children_of:  # slice the children
        start = draw(st.none() | st.integers(-4, 4))
        stop = draw(st.none() | st.integers(-4, 5))
        step = draw(st.none() | st.sampled_from([1, 2, -1, -2, 3]))
        parts.append(ast.Slice(start, stop, step))
    return ast.Path(tuple(parts))


@st.composite
def children_atoms(draw: st.DrawFn, facts: ModelFacts) -> ast.Path:
    part: ast.PathPart
    if draw(st.booleans()):
        part = ast.Index(draw(st.integers(-4, 4)))
    else:
        part = ast.Slice(
            draw(st.none() | st.integers(-5, 6)),
            draw(st.none() | st.integers(-5, 6)),
            draw(st.none() | st.sampled_from([1, 2, -1, 3])),
        )
    return ast.Path((ast.Children(), part))


@st.composite
def regex_atoms(draw: st.DrawFn, facts: ModelFacts) -> ast.NameRegex:
    use_name: bool = draw(st.booleans())
    if facts.paths and use_name:
        name = re.escape(draw(st.sampled_from(facts.paths)))
        pattern = draw(st.sampled_from(["", "^"])) + name + draw(st.sampled_from(["", "$", r"\."]))
    else:
        pattern = draw(st.sampled_from(SIMPLE_REGEXES))
    return ast.NameRegex(pattern)


@st.composite
def type_atoms(draw: st.DrawFn, facts: ModelFacts) -> ast.Selector:
    roll = draw(st.integers(0, 5))
    if roll <= 1:
        return ast.TypeName(draw(st.sampled_from(facts.class_names)))
    if roll == 2:
        return ast.TypeName(draw(st.sampled_from(facts.dotted_names)))
    if roll == 3:
        return ast.TypeName(draw(st.sampled_from(OTHER_TYPES)))
    if roll == 4:
        return ast.TypeRegex(re.escape(draw(st.sampled_from(facts.own_class_names))))
    return ast.TypeRegex(draw(st.sampled_from(TYPE_REGEXES)))


def tensor_atoms() -> st.SearchStrategy[ast.Selector]:
    """``ndim<=1``, ``numel>N``, ``dtype=X``, ``initially frozen``: parameters by their tensor."""
    ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
    return st.one_of(
        st.builds(ast.TensorCompare, st.just("ndim"), ops, st.integers(0, 3)),
        st.builds(ast.TensorCompare, st.just("numel"), ops, st.integers(0, 40)),
        st.builds(ast.DtypeIs, st.sampled_from(["float32", "float64", "bfloat16", "int64"])),
        st.builds(ast.Initially, st.sampled_from(["frozen", "trainable"])),
        st.builds(ast.ShapeIs, st.lists(st.one_of(st.none(), st.integers(1, 4)), max_size=3).map(tuple)),
    )


def atoms(facts: ModelFacts) -> st.SearchStrategy[ast.Selector]:
    return st.one_of(
        tensor_atoms(),
        path_atoms(facts),
        path_atoms(facts),
        path_atoms(facts),
        st.just(ast.All()),
        children_atoms(facts),
        regex_atoms(facts),
        type_atoms(facts),
        st.sampled_from(MISSING).map(
            lambda n: ast.Maybe(ast.Path(tuple(ast.Word(s) for s in n.split("."))))
        ),
    )


@st.composite
def selectors(
    draw: st.DrawFn, facts: ModelFacts, depth: int = 0, keep_empty: float = 0.1
) -> ast.Selector:
    """A selector; atoms that match nothing are usually made optional (`?`)."""
    roll = draw(st.integers(0, 9))
    if depth >= 2 or roll < 6:
        atom = draw(atoms(facts))
        if not isinstance(atom, ast.Maybe) and facts.reference.atom_is_empty(atom):
            if draw(st.integers(0, 99)) >= keep_empty * 100:
                atom = ast.Maybe(atom)
        elif draw(st.integers(0, 9)) == 0:
            atom = ast.Maybe(atom)
        return atom
    if roll < 8:
        items = draw(st.lists(selectors(facts, depth + 1, keep_empty), min_size=2, max_size=3))
        return ast.Union_(tuple(items))
    if roll == 8:
        return ast.Except(
            draw(selectors(facts, depth + 1, keep_empty)),
            draw(selectors(facts, depth + 1, keep_empty)),
        )
    return ast.Maybe(draw(selectors(facts, depth + 1, keep_empty)))


PERCENTS = (
    "0",
    "0.5",
    "1",
    "5",
    "10",
    "12.5",
    "25",
    "33.33",
    "50",
    "66.5",
    "75",
    "90",
    "99.99",
    "100",
)
COMMENT_TEXT = st.text(
    alphabet=string.ascii_letters + string.digits + " _-.,;:!?()[]{}<>#'\"`~*/\\|=+%$&@^é",
    max_size=20,
).map(lambda s: s.strip())


@st.composite
def comments(draw: st.DrawFn) -> str:
    body = draw(COMMENT_TEXT)
    return f"# {body}" if body else "#"


@st.composite
def trivias(draw: st.DrawFn, first: bool) -> ast.Trivia:
    if draw(st.integers(0, 3)):
        return ast.Trivia()
    return ast.Trivia(
        tuple(draw(st.lists(comments(), max_size=2))),
        draw(st.none() | comments()),
        False if first else draw(st.booleans()),
    )


@st.composite
def statement_selectors(draw: st.DrawFn, facts: ModelFacts, keep_empty: float) -> ast.Selector:
    """A statement's selector; one that would be an error is redrawn (up to 3 times)."""
    for _ in range(3):
        sel = draw(selectors(facts, keep_empty=keep_empty))
        errors: list[str] = []
        facts.reference.statement_selection(sel, errors)
        if not errors or draw(st.integers(0, 99)) < keep_empty * 100:
            return sel
    return sel


@st.composite
def statements(
    draw: st.DrawFn, facts: ModelFacts, first: bool = False, keep_empty: float = 0.1
) -> ast.Statement:
    roll = draw(st.integers(0, 19))
    trivia = draw(trivias(first))
    if roll < 15:
        action = draw(st.sampled_from(["freeze", "unfreeze"]))
        return ast.Rule(action, draw(statement_selectors(facts, keep_empty)), trivia)  # type: ignore[arg-type]
    state = draw(st.sampled_from(["trainable", "frozen"]))
    if roll < 18:
        return ast.ExpectSelector(state, draw(statement_selectors(facts, keep_empty)), trivia)  # type: ignore[arg-type]
    op = draw(st.sampled_from(["between", "<", "<=", ">", ">=", "=="]))
    low, high = sorted(
        draw(st.lists(st.sampled_from(PERCENTS), min_size=2, max_size=2)), key=Decimal
    )
    if op == "between":
        return ast.ExpectShare(state, "between", Decimal(low), Decimal(high), trivia)  # type: ignore[arg-type]
    return ast.ExpectShare(state, op, Decimal(high if draw(st.booleans()) else low), None, trivia)  # type: ignore[arg-type]


@st.composite
def programs(
    draw: st.DrawFn, facts: ModelFacts, max_statements: int = 6, keep_empty: float = 0.1
) -> ast.Program:
    n = draw(st.integers(1, max_statements))
    stmts = [draw(statements(facts, first=(i == 0), keep_empty=keep_empty)) for i in range(n)]
    tail = tuple(draw(st.lists(comments(), max_size=2)))
    return ast.Program(tuple(stmts), tail)


@st.composite
def models_and_programs(
    draw: st.DrawFn,
    max_statements: int = 6,
    keep_empty: float = 0.1,
    ties: bool = True,
    max_params: int = 36,
) -> tuple[TreeSpec, ast.Program]:
    """A module tree spec and a program over the built model's names."""
    spec = draw(tree_specs(max_params=max_params, ties=ties))
    facts = ModelFacts.of(build(spec))
    return spec, draw(programs(facts, max_statements, keep_empty))
