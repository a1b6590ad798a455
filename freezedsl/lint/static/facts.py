"""The shared analysis state: events recorded by the walk and per-file facts.

Every check family reads these: the walk (:mod:`.walk`) records :class:`_Event` lists per
scope, the order checks (:mod:`.order`) compare them, and :class:`_File` holds what the
whole file tells (imports, names known to be modules, findings).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field

from freezedsl.lint.registry import Diagnostic, Rule, diag
from freezedsl.lint.static.astutil import _dotted
from freezedsl.lint.static.decides import deciding_nodes
from freezedsl.lint.static.summaries import Defs, FuncDef
from freezedsl.lint.static.tables import _HEAD_WORD, _MODULE_METHODS, _PARAMLESS, _TV_STEMS


@dataclass(frozen=True)
class _Bind:
    """What a loop variable stands for, e.g. ``p`` in ``for p in model.parameters()``."""

    kind: str  # "param" | "module" | "name" | "lit"
    owner: str | None  # dotted name of the module iterated over
    loop: ast.AST  # the For statement or comprehension that binds it
    depth: int  # enclosing conditions when bound; deeper use means "guarded"
    values: tuple[ast.Constant, ...] = ()  # for "lit": the literal strings


@dataclass
class _Event:
    kind: str  # OPT FREEZE UNFREEZE HEAD WRAP KILL EVAL_SUB TRAIN
    target: str
    node: ast.AST
    branches: tuple[tuple[int, int], ...]
    loops: tuple[int, ...]
    whole: bool = False  # FREEZE: every parameter of target, unconditionally
    loop: ast.AST | None = None  # FREEZE via a loop variable: the loop
    filtered: bool = False  # OPT: parameters filtered by requires_grad
    label: str = ""  # OPT: optimizer name; WRAP: wrapper name
    value: ast.AST | None = None  # KILL: the new value (``model = model.to(dev)`` keeps it)
    # replayed from a ``self.m()`` call on the method's own object: the callee's statement
    origin: ast.AST | None = None


# Expression nodes that can hold a call or comparison (Name/Constant cannot).
_INNER = (
    ast.Call,
    ast.Attribute,
    ast.Subscript,
    ast.BinOp,
    ast.BoolOp,
    ast.UnaryOp,
    ast.Compare,
    ast.IfExp,
    ast.Dict,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.Starred,
    ast.keyword,
    ast.JoinedStr,
    ast.FormattedValue,
    ast.Await,
    ast.Yield,
    ast.YieldFrom,
    ast.NamedExpr,
    ast.Slice,
    ast.comprehension,
)


def _pos(e: _Event) -> tuple[int, int]:
    return getattr(e.node, "lineno", 0), getattr(e.node, "col_offset", 0)


def _exclusive(a: _Event, b: _Event) -> bool:
    """True when the two events sit in different branches of one ``if``/``match``."""
    if not a.branches or not b.branches:
        return False
    seen = dict(a.branches)
    return any(k in seen and seen[k] != v for k, v in b.branches)


@dataclass
class _File:
    """Per-file facts: imports, names known to be modules, findings."""

    path: str
    lines: list[str]
    aliases: dict[str, str] = field(default_factory=dict)
    star: set[str] = field(default_factory=set)
    tree: ast.Module | None = None
    scanned: bool = False
    modules_: set[str] = field(default_factory=set)
    rule_sets_: set[str] = field(default_factory=set)
    deciding_: set[int] | None = None
    module_attrs_: set[str] = field(default_factory=set)
    notes: dict[str, bool] = field(default_factory=dict)  # per-file facts computed once
    state_drops_: list[int] | None = None  # lines removing optimizer state (FZ201)
    # Every order check needs a freeze (`requires_grad`, freezedsl) or a `.train(` call;
    # a file with neither cannot produce one, so calls are not followed into summaries.
    order_possible: bool = True
    # local name -> (level, module, name) of every `from ... import name`
    from_imports: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    # (importing file, level, module) -> the checked context of that module's file, or None
    load_module: Callable[[str, int, str], _File | None] | None = None

    def imported(self, name: str) -> tuple[FuncDef, _File] | None:
        """The function ``name`` imported from a Python file next to this one (resolved
        on disk relative to this file, as the linted tree lays it out), and its file."""
        spec = self.from_imports.get(name)
        if spec is None or self.load_module is None:
            return None
        other = self.load_module(self.path, spec[0], spec[1])
        if other is None:
            return None
        f = other.defs.functions.get(spec[2])
        return (f, other) if f is not None else None

    @property
    def module_attrs(self) -> set[str]:
        """Attribute names every assignment of which builds a module (an ``nn`` class, a
        torchvision builder, ``from_pretrained`` or an ``nn.Module`` class of this file)."""
        self._scan()
        return self.module_attrs_

    # Module-level names bound once to a literal list/tuple of strings.
    lit_lists: dict[str, ast.expr] = field(default_factory=dict)

    def deciding(self, node: ast.AST) -> bool:
        """``node`` sits in a test that decides training (see :mod:`.decides`)."""
        if self.deciding_ is None:
            self.deciding_ = deciding_nodes(self.tree) if self.tree is not None else set()
        return id(node) in self.deciding_

    @property
    def modules(self) -> set[str]:
        """Dotted names the file calls ``.parameters()``/``.modules()``/... on or builds
        from an ``nn`` class, a torchvision builder or ``from_pretrained``."""
        self._scan()
        return self.modules_

    @property
    def rule_sets(self) -> set[str]:
        """Names bound to ``freezedsl.load(...)``/``compile``/``rules_from``."""
        self._scan()
        return self.rule_sets_

    def _scan(self) -> None:
        if not self.scanned and self.tree is not None:
            self.scanned = True
            _scan_evidence(self.tree, self)

    out: list[Diagnostic] = field(default_factory=list)
    # Scopes still to walk: (body, enclosing class, function or None).
    pending: list[tuple[list[ast.stmt], str | None, FuncDef | None]] = field(default_factory=list)
    muted: int = 0  # > 0 while a summary walk runs: findings are not recorded
    defs_: Defs | None = None
    walk_function: Callable[[FuncDef, str | None], list[_Event]] = field(default=lambda f, c: [])

    @property
    def defs(self) -> Defs:
        """Top-level functions and classes of the file (for summaries), built on first use."""
        if self.defs_ is None:
            self.defs_ = Defs.of(self.tree, self.lines) if self.tree is not None else Defs()
        return self.defs_

    def qualify(self, node: ast.AST) -> str | None:
        """Dotted callee with its first name replaced by what it was imported as."""
        dotted = _dotted(node)
        if dotted is None or "[" in dotted:
            return None
        root, _, rest = dotted.partition(".")
        if root in self.aliases:
            full = self.aliases[root]
            return f"{full}.{rest}" if rest else full
        if not rest:
            for mod in self.star:
                if mod.startswith("torchvision.models") and root in _TV_STEMS:
                    return f"{mod}.{root}"
        return dotted

    def col(self, line: int, byte_col: int) -> int:
        """1-based character column from ast's 0-based UTF-8 byte offset."""
        if 0 < line <= len(self.lines):
            text = self.lines[line - 1]
            if not text.isascii():
                return len(text.encode("utf-8")[:byte_col].decode("utf-8", "replace")) + 1
        return byte_col + 1

    def report(self, rule: Rule, node: ast.AST, message: str, obj: str | None = None) -> None:
        if self.muted:
            return
        line = getattr(node, "lineno", 1)
        col = self.col(line, getattr(node, "col_offset", 0))
        self.out.append(diag(rule, message, self.path, line=line, col=col, obj=obj))


def _scan_imports(body: list[ast.stmt], ctx: _File) -> None:
    """Record every import of the file (statements only: imports are never expressions)."""
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    ctx.aliases[a.asname] = a.name
                else:
                    top = a.name.split(".")[0]
                    ctx.aliases[top] = top
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:  # for summaries of functions imported from nearby files
                if a.name != "*":
                    ctx.from_imports[a.asname or a.name] = (node.level, node.module or "", a.name)
            if node.module is None or node.level:
                continue
            for a in node.names:
                if a.name == "*":
                    ctx.star.add(node.module)
                else:
                    ctx.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        else:
            for name in ("body", "orelse", "finalbody", "handlers", "cases"):
                stack.extend(getattr(node, name, ()))


def _scan_lit_lists(body: list[ast.stmt], ctx: _File) -> None:
    """Module-level ``NAME = ["lit", ...]`` bound exactly once (a freeze list constant)."""
    seen: dict[str, int] = {}
    for s in body:
        if isinstance(s, ast.Assign):
            for t in s.targets:
                if isinstance(t, ast.Name):
                    seen[t.id] = seen.get(t.id, 0) + 1
                    if isinstance(s.value, (ast.List, ast.Tuple, ast.Set)):
                        ctx.lit_lists[t.id] = s.value
    for name, count in seen.items():
        if count > 1:
            ctx.lit_lists.pop(name, None)


def _scan_evidence(tree: ast.Module, ctx: _File) -> None:
    """Dotted names that are certainly modules, attribute names only ever assigned a module,
    and names bound to freezedsl rule sets.

    A full walk of the tree, so it runs only when a check needs it."""
    local = _local_module_classes(tree)
    attrs: dict[str, bool] = {}  # attribute name -> every assignment builds a module
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in _MODULE_METHODS:
                recv = _dotted(func.value)
                if recv is not None:
                    ctx.modules_.add(recv)
        elif isinstance(node, ast.Assign):
            call = node.value if isinstance(node.value, ast.Call) else None
            builds = call is not None and (
                _builds_module(ctx, call) or getattr(call.func, "id", None) in local
            )
            for t in node.targets:
                if isinstance(t, ast.Attribute):
                    attrs[t.attr] = attrs.get(t.attr, True) and builds
            if call is None:
                continue
            if _loads_rules(ctx, call):
                into = ctx.rule_sets_
            elif builds:
                into = ctx.modules_
            else:
                continue
            into.update(d for d in map(_dotted, node.targets) if d is not None)
    ctx.module_attrs_.update(a for a, only_modules in attrs.items() if only_modules)


def _local_module_classes(tree: ast.Module) -> set[str]:
    """Classes of this file that derive (directly or through each other) from a class
    named ``Module`` (``nn.Module``, ``torch.nn.Module``, ``pl.LightningModule``)."""
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for b in node.bases:
                d = _dotted(b) or ""
                if d.endswith("Module") or d in out:
                    out.add(node.name)
    return out


def _is_nn_class(qual: str) -> bool:
    """``nn.Linear``, ``torch.nn.Conv2d``, ``torch.nn.modules.conv.Conv2d``: a module class
    (``nn.Parameter``/``nn.parameter.Buffer`` are tensors, ``nn.utils`` holds helpers)."""
    parts = qual.split(".")
    if parts[:2] == ["torch", "nn"]:
        parts = parts[1:]
    if parts[0] != "nn" or len(parts) < 2 or not parts[-1][:1].isupper():
        return False
    return (len(parts) == 2 or parts[1] in ("modules", "parallel")) and not (
        "Parameter" in parts[-1] or parts[-1] == "Buffer"
    )


def _loads_rules(ctx: _File, call: ast.Call) -> bool:
    """``freezedsl.load(path)`` / ``compile(text)`` / ``rules_from(x)``: a rule set."""
    qual = ctx.qualify(call.func) or ""
    return qual in ("freezedsl.load", "freezedsl.compile", "freezedsl.rules_from")


def _builds_module(ctx: _File, call: ast.Call) -> bool:
    qual = ctx.qualify(call.func) or ""
    last = qual.rsplit(".", 1)[-1]
    if _is_nn_class(qual):
        return True
    if qual.startswith("torchvision.models.") and last in _TV_STEMS:
        return True
    return last == "from_pretrained"


def _nn_layer_with_params(ctx: _File, call: ast.Call, attr: str) -> bool:
    """``nn.Linear(...)`` and friends, or ``MyHead(...)`` assigned to a head-like name."""
    qual = ctx.qualify(call.func) or ""
    last = qual.rsplit(".", 1)[-1]
    if not last[:1].isupper() or _PARAMLESS.match(last):
        return False
    if last in ("Sequential", "ModuleList", "ModuleDict") and not (call.args or call.keywords):
        return False  # an empty container, filled later (a perceptual-loss net's slices)
    if _is_nn_class(qual):
        return True
    return "Parameter" not in last and bool(_HEAD_WORD.match(attr))
