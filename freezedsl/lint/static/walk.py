"""The walk: one scope's statements in source order, recorded as events.

Local checks (FZ204-FZ206, FZ209) report during the walk through :mod:`.local`; order
checks run afterwards over the recorded events (:mod:`.order`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator

from freezedsl.lint.static.astutil import (
    _arg,
    _bool_const,
    _dotted,
    _last,
    _root,
    _typo_of_requires_grad,
    _uses_whole,
)
from freezedsl.lint.static.binding import _Bindings, _param_guard
from freezedsl.lint.static.facts import (
    _INNER,
    _Bind,
    _Event,
    _File,
    _loads_rules,
    _nn_layer_with_params,
    _pos,
)
from freezedsl.lint.static.local import pretrained, substring, typo
from freezedsl.lint.static.patterns import updates_in_place
from freezedsl.lint.static.rules import GRAD_ON_MODULE
from freezedsl.lint.static.summaries import FuncDef, _param_names, bind_args, replay
from freezedsl.lint.static.tables import (
    _HEAD_WORD,
    _OPTIMIZERS,
    _PARAM_LIKE,
    _REEVAL_HELPER,
    _WRAPPERS,
)


class _Scope(_Bindings):
    """Walks one scope's statements in order, recording events and local findings."""

    def __init__(
        self,
        ctx: _File,
        cls: str | None = None,
        fdef: FuncDef | None = None,
        *,
        quiet: bool = False,
    ) -> None:
        self.ctx = ctx
        self.cls = cls  # the class whose body or method this scope is
        self.quiet = quiet  # a summary walk: nested definitions are walked on their own
        self.params = frozenset(_param_names(fdef)) if fdef is not None else frozenset()
        # Names this scope built from a class of the file (``net = Net()``) -> the class.
        self.types: dict[str, str] = {}
        self.events: list[_Event] = []
        self.binds: dict[str, _Bind] = {}
        self.branches: tuple[tuple[int, int], ...] = ()
        self.loops: tuple[int, ...] = ()
        self.depth = 0
        self.wrapped: set[tuple[int, str]] = set()
        # Names bound to a literal list of strings in this scope (``freeze = ["model.1"]``).
        self.lits: dict[str, ast.expr] = {}

    # -- statements

    def block(self, body: Iterable[ast.stmt]) -> None:
        for s in body:
            self.stmt(s)

    def stmt(self, s: ast.stmt) -> None:
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            outer: list[ast.expr] = list(s.decorator_list)
            if isinstance(s, ast.ClassDef):
                outer += s.bases + [k.value for k in s.keywords]
            else:
                outer += s.args.defaults + [d for d in s.args.kw_defaults if d is not None]
            for e in outer:
                self.expr(e)
            if not self.quiet:
                if isinstance(s, ast.ClassDef):
                    self.ctx.pending.append((s.body, s.name, None))
                else:
                    self.ctx.pending.append((s.body, self.cls, s))
            self.kill(s.name, s)
        elif isinstance(s, (ast.For, ast.AsyncFor)):
            self.expr(s.iter)
            self.kill_targets(s.target, s)
            saved, saved_loops = self.binds, self.loops
            self.loops = saved_loops + (id(s),)
            owners = self.loop_aliases(s)
            if owners and isinstance(s.target, ast.Name):
                for owner in owners:  # the body once per module the loop runs over
                    alias = _Bind("alias", owner, s, self.depth)
                    self.binds = {**saved, s.target.id: alias}
                    self.block(s.body)
            else:
                self.binds = {**saved, **self.bind(s.target, s.iter, s, self.depth)}
                self.manual_update(s)
                self.block(s.body)
            self.binds, self.loops = saved, saved_loops
            self.block(s.orelse)
        elif isinstance(s, ast.While):
            self.expr(s.test)
            saved_loops = self.loops
            self.loops = saved_loops + (id(s),)
            self.block(s.body)
            self.loops = saved_loops
            self.block(s.orelse)
        elif isinstance(s, ast.If):
            self.expr(s.test)
            guarded = _param_guard(s.test)
            saved_binds = self.binds
            if guarded is not None:
                self.binds = {**saved_binds, guarded: _Bind("param", None, s, self.depth)}
            self.branch(s, 0, s.body)
            self.binds = saved_binds
            self.branch(s, 1, s.orelse)
        elif isinstance(s, (ast.With, ast.AsyncWith)):
            for item in s.items:
                self.expr(item.context_expr)
                if item.optional_vars is not None:
                    self.kill_targets(item.optional_vars, s)
            self.block(s.body)
        elif isinstance(s, (ast.Try, ast.TryStar)):
            self.block(s.body)
            for h in s.handlers:
                if h.type is not None:
                    self.expr(h.type)
                self.block(h.body)
            self.block(s.orelse)
            self.block(s.finalbody)
        elif isinstance(s, ast.Match):
            self.expr(s.subject)
            for i, case in enumerate(s.cases):
                if case.guard is not None:
                    self.expr(case.guard)
                self.branch(s, i, case.body)
        elif isinstance(s, ast.Assign):
            self.expr(s.value)
            for t in s.targets:
                self.assign(t, s.value, s)
        elif isinstance(s, ast.AnnAssign):
            if s.value is not None:
                self.expr(s.value)
                self.assign(s.target, s.value, s)
        elif isinstance(s, ast.AugAssign):
            self.expr(s.value)
        elif isinstance(s, ast.Delete):
            for t in s.targets:
                self.kill_targets(t, s)
        else:
            for child in ast.iter_child_nodes(s):
                if isinstance(child, ast.expr):
                    self.expr(child)

    def branch(self, s: ast.stmt, index: int, body: list[ast.stmt]) -> None:
        if not body:
            return
        saved = self.branches
        self.branches = saved + ((id(s), index),)
        self.depth += 1
        self.block(body)
        self.depth -= 1
        self.branches = saved

    def assign(self, target: ast.expr, value: ast.expr, stmt: ast.stmt) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            values: list[ast.expr | None] = [None] * len(target.elts)
            if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
                values = list(value.elts)
            wrap = self.wrapper(value) if isinstance(value, ast.Call) else None
            for elt, v in zip(target.elts, values):
                d = _dotted(elt)
                if wrap is not None and d is not None:
                    self.event("WRAP", d, stmt, label=wrap)
                elif v is not None:
                    self.assign(elt, v, stmt)
                else:
                    self.kill_targets(elt, stmt)
            return
        if isinstance(target, ast.Starred):
            self.kill_targets(target, stmt)
            return
        if isinstance(target, ast.Attribute):
            if target.attr == "requires_grad":
                self.assign_requires_grad(target, value)
                return
            if _typo_of_requires_grad(target.attr):
                if not (isinstance(value, ast.Name) and value.id == target.attr):
                    typo(self.ctx, target, "set")
                return
        d = _dotted(target)
        if d is None:
            return
        if isinstance(value, ast.Call):
            wrap = self.wrapper(value)
            if wrap is not None:
                self.event("WRAP", d, stmt, label=wrap)
                return
            attr = _last(d)
            if (
                d != _root(d)
                and not _uses_whole(value, d)
                and _nn_layer_with_params(self.ctx, value, attr)
                # A class that freezes all of ``self`` is a frozen network by design
                # (a perceptual loss, a teacher); only a head-named layer is suspicious.
                and not (d.startswith("self.") and not _HEAD_WORD.match(attr))
            ):
                self.event("HEAD", d, stmt)
                return
        if isinstance(target, ast.Name):
            if isinstance(value, (ast.List, ast.Tuple, ast.Set)):
                self.lits[target.id] = value
            else:
                self.lits.pop(target.id, None)
        self.kill(d, stmt, value)
        self.types.pop(d, None)
        if (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id in self.ctx.defs.methods
        ):
            self.types[d] = value.func.id
            init = self.ctx.defs.method(value.func.id, "__init__")
            if init is not None:  # what the object is built as (a frozen teacher, ...) is
                # no step of this scope: only modes and wrapping carry over
                self.replay(init[0], init[1], value, d, kinds=_CONSTRUCTOR_KINDS)

    def flag(self, value: ast.expr) -> bool | str | None:
        """A constant ``requires_grad`` flag, or the name of the function parameter that
        holds it (a summary resolves it at each call site)."""
        if isinstance(value, ast.Name) and value.id in self.params:
            return value.id
        if (
            isinstance(value, ast.UnaryOp)
            and isinstance(value.op, ast.Not)
            and isinstance(value.operand, ast.Name)
            and value.operand.id in self.params
        ):
            return "!" + value.operand.id
        return _bool_const(value)

    def assign_requires_grad(self, target: ast.Attribute, value: ast.expr) -> None:
        recv = _dotted(target.value)
        if recv is None:
            return
        recv = self.alias(recv)
        flag = self.flag(value)
        if self.module_like(recv):
            arg = ast.unparse(value)
            self.ctx.report(
                GRAD_ON_MODULE,
                target,
                f"`{recv}.requires_grad = {ast.unparse(value)}` only sets a plain attribute on "
                f"a module and freezes nothing; call `{recv}.requires_grad_({arg})`",
                obj=recv,
            )
            return
        # Only a parameter (a loop variable over parameters, or a parameter-like name)
        # counts as a freeze: on anything else the assignment may be a no-op on a module.
        b = self.binds.get(_root(recv))
        if flag is not None and (b is not None or _PARAM_LIKE.search(_last(recv))):
            self.grad_change(recv, flag, target, whole=False)

    def kill_targets(self, target: ast.AST, stmt: ast.stmt) -> None:
        for sub in ast.walk(target):
            d = _dotted(sub)
            if d is not None and isinstance(getattr(sub, "ctx", None), (ast.Store, ast.Del)):
                self.kill(d, stmt)

    def kill(self, dotted: str, stmt: ast.AST, value: ast.AST | None = None) -> None:
        self.event("KILL", dotted, stmt, value=value)
        if dotted in self.binds:  # copy: the dict may be shared with an enclosing loop
            self.binds = {k: v for k, v in self.binds.items() if k != dotted}

    def event(self, kind: str, target: str, node: ast.AST, **kw: object) -> _Event:
        ev = _Event(kind, target, node, self.branches, self.loops, **kw)  # type: ignore[arg-type]
        self.events.append(ev)
        return ev

    # -- loop variables

    def manual_update(self, s: ast.For | ast.AsyncFor) -> None:
        """UPDATE: ``for p in M.parameters():`` whose body changes ``p`` in place with no
        ``requires_grad``/``grad`` test (zip loops over two models are EMA updates)."""
        it = s.iter
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "list":
            it = it.args[0] if it.args else it
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute)):
            return
        method = it.func.attr
        var: ast.expr | None = None
        if method == "parameters":
            var = s.target
        elif method == "named_parameters" and isinstance(s.target, ast.Tuple):
            var = s.target.elts[-1] if len(s.target.elts) == 2 else None
        if not isinstance(var, ast.Name) or not updates_in_place(s, var.id):
            return
        owner = self.resolve(_dotted(it.func.value))
        if owner is not None:
            self.event("UPDATE", owner, s)

    # -- expressions

    def expr(self, node: ast.expr) -> None:
        """Visit one expression iteratively (deep trees must not hit the recursion limit)."""
        first = len(self.events)
        stack: list[tuple[ast.AST, dict[str, _Bind], int]] = [(node, self.binds, self.depth)]
        while stack:
            n, binds, depth = stack.pop()
            if isinstance(n, ast.Lambda):
                continue
            if isinstance(n, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
                local = dict(binds)
                guarded = depth + (1 if any(g.ifs for g in n.generators) else 0)
                for g in n.generators:
                    stack.append((g.iter, local, depth))
                    saved = self.binds
                    self.binds = local
                    local.update(self.bind(g.target, g.iter, n, depth))
                    self.binds = saved
                    for cond in g.ifs:
                        stack.append((cond, local, depth))
                elts = [n.key, n.value] if isinstance(n, ast.DictComp) else [n.elt]
                for e in elts:
                    stack.append((e, local, guarded))
                continue
            if isinstance(n, ast.Call):
                self.call(n, binds, depth)
            elif isinstance(n, ast.Compare):
                self.compare(n, binds)
            for name in n._fields:
                child = getattr(n, name, None)
                if isinstance(child, list):
                    stack.extend((c, binds, depth) for c in child if isinstance(c, _INNER))
                elif isinstance(child, _INNER):
                    stack.append((child, binds, depth))
        if len(self.events) - first > 1:
            self.events[first:] = sorted(self.events[first:], key=_pos)

    def call(self, node: ast.Call, binds: dict[str, _Bind], depth: int) -> None:
        func = node.func
        saved = self.binds
        self.binds = binds
        try:
            if isinstance(func, ast.Attribute):
                self.method_call(node, func, depth)
            qual = self.ctx.qualify(func)
            if qual is not None:
                self.named_call(node, qual)
            self.maybe_reeval(node)
            self.call_summary(node)
            if self.applies_rules(node):
                model = _arg(node, 0, "model")
                d = self.resolve(_dotted(model)) if model is not None else None
                if d is not None:
                    self.event("FREEZE", d, node)
        finally:
            self.binds = saved

    def overrides_train(self, recv: str) -> bool:
        """``recv`` is an instance of a class of this file that defines ``train()`` (which
        typically re-applies eval to frozen norm layers, as mmdet backbones do)."""
        cls = self.cls if recv == "self" else self.types.get(recv)
        return cls is not None and self.ctx.defs.method(cls, "train") is not None

    def call_summary(self, node: ast.Call) -> None:
        """Replay what a function of this file does to its arguments and ``self``."""
        if not self.ctx.order_possible:
            return
        func = node.func
        defs = self.ctx.defs
        found: tuple[FuncDef, str | None] | None = None
        receiver: str | None = None
        if isinstance(func, ast.Name):
            f = defs.functions.get(func.id)
            if f is not None:
                found = (f, None)
            elif func.id in self.ctx.from_imports:
                hit = self.ctx.imported(func.id)
                if hit is not None:
                    self.replay(hit[0], None, node, None, source=hit[1])
                return
        elif isinstance(func, ast.Attribute) and func.attr in defs.method_names:
            v = func.value
            if (
                isinstance(v, ast.Call)
                and isinstance(v.func, ast.Name)
                and v.func.id == "super"
                and self.cls is not None
            ):
                m = defs.method(self.cls, func.attr, skip_own=True)
                found, receiver = (m, "self") if m else (None, None)
            else:
                recv = _dotted(v)
                cls = self.cls if recv == "self" else self.types.get(recv or "")
                if recv is not None and cls is not None:
                    m = defs.method(cls, func.attr)
                    found, receiver = (m, self.alias(recv)) if m else (None, None)
        if found is not None:
            self.replay(found[0], found[1], node, receiver)

    def replay(
        self,
        fdef: FuncDef,
        cls: str | None,
        node: ast.Call,
        receiver: str | None,
        *,
        kinds: frozenset[str] | None = None,
        source: _File | None = None,
    ) -> None:
        """Replay ``fdef``'s summary at ``node``; ``source`` is the file that defines it
        when it is imported from another one."""
        src = source if source is not None else self.ctx
        events = src.defs.summary(fdef, cls, src.walk_function)
        if kinds is not None:
            events = [e for e in events if e.kind in kinds]
        if not events:
            return
        args = bind_args(fdef, node, receiver, lambda e: self.resolve(_dotted(e)))
        at = self.event("CALL", "", node)
        self.events.pop()
        params = _param_names(fdef)
        own = params[0] if receiver == "self" and source is None and params else None
        self.events.extend(replay(events, args, at, own))

    def method_call(self, node: ast.Call, func: ast.Attribute, depth: int) -> None:
        attr = func.attr
        recv = _dotted(func.value)
        if recv is not None:
            recv = self.alias(recv)
        if attr == "requires_grad_":
            arg = _arg(node, 0, "requires_grad")
            flag = True if arg is None else self.flag(arg)
            if recv is not None and flag is not None:
                self.grad_change(recv, flag, node, whole=True, depth=depth)
        elif _typo_of_requires_grad(attr):
            typo(self.ctx, func, "call")
        elif attr in ("eval", "train") and recv is not None:
            mode = attr == "train"
            if attr == "train" and (node.args or node.keywords):
                mode_arg = _bool_const(_arg(node, 0, "mode"))
                if mode_arg is None:
                    return
                mode = mode_arg
            elif attr == "eval" and (node.args or node.keywords):
                return
            if mode:
                if recv in self.binds or self.overrides_train(recv):
                    return
                self.event("TRAIN", recv, node)
                return
            b = self.binds.get(_root(recv))
            if b is not None:
                if b.kind == "module" and b.owner is not None and depth > b.depth:
                    self.event("EVAL_SUB", b.owner + ".*" + recv[len(_root(recv)) :], node)
            elif recv != _root(recv) and _last(recv) != "module":  # DDP's .module is whole
                self.event("EVAL_SUB", recv, node)
        elif attr in ("startswith", "find", "index") and isinstance(func.value, ast.Name):
            b = self.binds.get(func.value.id)
            if b is not None and b.kind == "name" and node.args:
                substring(self.ctx, self.binds, node, node.args[0], func.value.id, attr)

    def named_call(self, node: ast.Call, qual: str) -> None:
        parts = qual.split(".")
        last = parts[-1]
        if (
            last in _OPTIMIZERS
            or (len(parts) > 1 and parts[-2] == "optim" and last[:1].isupper())
            or (last[:1].isupper() and any(w in _OPTIMIZERS for w in last.split("_")))
        ):
            params = _arg(node, 0, "params")
            if params is not None:
                for owner, filtered in self.param_sources(params):
                    self.event("OPT", owner, node, filtered=filtered, label=last)
        elif last in _WRAPPERS or last in ("prepare", "initialize"):
            self.wrapper(node)
        elif parts[0] == "torchvision":
            for kw in node.keywords:
                if kw.arg in ("pretrained", "pretrained_backbone"):
                    pretrained(self.ctx, node, kw, parts)

    def maybe_reeval(self, call: ast.Call) -> None:
        """``freeze_bn(model)`` or ``model.apply(set_bn_eval)``: a helper that probably puts
        norm layers back in eval mode, which FZ208 cannot see into."""
        func = call.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if isinstance(func, ast.Attribute) and name == "apply" and call.args:
            helper = call.args[0]
            hname = helper.id if isinstance(helper, ast.Name) else getattr(helper, "attr", "")
            recv = _dotted(func.value)
            if recv is not None and _REEVAL_HELPER.search(hname):
                self.event("REEVAL", recv, call)
            return
        if not _REEVAL_HELPER.search(name):
            return
        for a in call.args:
            d = self.resolve(_dotted(a))
            if d is not None:
                self.event("REEVAL", d, call)

    def applies_rules(self, call: ast.Call) -> bool:
        """``freezedsl.apply(model, rules)`` or ``rules.apply(model)`` on a loaded rule set
        (``model.apply(fn)`` is ``nn.Module.apply`` and is not one)."""
        func = call.func
        if isinstance(func, ast.Name):
            return func.id == "apply" and self.ctx.aliases.get("apply") == "freezedsl.apply"
        if not isinstance(func, ast.Attribute) or func.attr != "apply":
            return False
        if (self.ctx.qualify(func) or "") == "freezedsl.apply":
            return True
        recv = func.value
        if isinstance(recv, ast.Call):
            return _loads_rules(self.ctx, recv)
        return _dotted(recv) in self.ctx.rule_sets

    def wrapper(self, call: ast.Call) -> str | None:
        """Name of the DDP/FSDP-style wrapper ``call`` builds; also records the wrapped arg."""
        qual = self.ctx.qualify(call.func)
        if qual is None:
            return None
        parts = qual.split(".")
        if parts[-1] in _WRAPPERS:
            name = parts[-1]
            args = [_arg(call, 0, "module")]
        elif parts[-1] == "prepare" and len(parts) > 1 and "accelerator" in parts[-2].lower():
            name = "accelerator.prepare"
            args = list(call.args)
        elif parts == ["deepspeed", "initialize"]:
            # deepspeed.initialize(args=None, model=None, optimizer=None, model_parameters=...)
            # builds the engine (and its ZeRO partitions / optimizer) from the parameters
            # that require grad at this point, like DDP
            name = "deepspeed.initialize"
            args = [_arg(call, 1, "model")]
        else:
            return None
        for a in args:
            d = _dotted(a) if a is not None else None
            if d is not None and (id(call), d) not in self.wrapped:
                self.wrapped.add((id(call), d))
                self.event("WRAP", d, call, label=name)
        return name

    def param_sources(self, node: ast.expr, filtered: bool = False) -> Iterator[tuple[str, bool]]:
        """Modules whose ``.parameters()`` flow into an optimizer argument."""
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr in ("parameters", "named_parameters"):
                if not node.args and not node.keywords:
                    owner = self.resolve(_dotted(f.value))
                    if owner is not None:
                        yield owner, filtered
            elif isinstance(f, ast.Name) and f.id == "filter" and len(node.args) == 2:
                yield from self.param_sources(node.args[1], True)
            elif isinstance(f, ast.Name) and f.id in ("list", "tuple", "iter") and node.args:
                yield from self.param_sources(node.args[0], filtered)
            elif isinstance(f, (ast.Name, ast.Attribute)) and (
                (f.id if isinstance(f, ast.Name) else f.attr) == "chain"
            ):
                for a in node.args:
                    yield from self.param_sources(a, filtered)
        elif isinstance(node, (ast.ListComp, ast.GeneratorExp)) and len(node.generators) == 1:
            g = node.generators[0]
            yield from self.param_sources(g.iter, filtered or bool(g.ifs))
        elif isinstance(node, (ast.List, ast.Tuple)):
            for e in node.elts:
                if isinstance(e, ast.Dict):
                    for k, v in zip(e.keys, e.values):
                        if isinstance(k, ast.Constant) and k.value == "params":
                            yield from self.param_sources(v, filtered)
                else:
                    yield from self.param_sources(e, filtered)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            yield from self.param_sources(node.left, filtered)
            yield from self.param_sources(node.right, filtered)

    def grad_change(
        self,
        recv: str,
        flag: bool | str,
        node: ast.AST,
        *,
        whole: bool,
        depth: int | None = None,
    ) -> None:
        """Record a freeze/unfreeze of ``recv`` (a loop variable maps to its owner); a flag
        held by a parameter of the function is recorded as SETGRAD for summaries."""
        kind = "SETGRAD" if isinstance(flag, str) else "UNFREEZE" if flag else "FREEZE"
        label = flag if isinstance(flag, str) else ""
        root = _root(recv)
        b = self.binds.get(root)
        if b is None:
            self.event(kind, recv, node, whole=whole, label=label)
            return
        if b.owner is None or b.kind == "name" or b.kind == "lit":
            return
        if b.kind == "param" and recv == root:
            d = self.depth if depth is None else depth
            self.event(kind, b.owner, node, whole=d == b.depth, loop=b.loop, label=label)
        elif b.kind == "module":
            self.event(kind, b.owner + ".*" + recv[len(root) :], node, loop=b.loop, label=label)

    def compare(self, node: ast.Compare, binds: dict[str, _Bind]) -> None:
        if len(node.ops) != 1 or not isinstance(node.ops[0], (ast.In, ast.NotIn)):
            return
        right = node.comparators[0]
        if not isinstance(right, ast.Name):
            return
        b = binds.get(right.id)
        if b is None or b.kind != "name":
            return
        substring(self.ctx, binds, node, node.left, right.id, "in")


_CONSTRUCTOR_KINDS = frozenset(("EVAL_SUB", "TRAIN", "WRAP", "REEVAL"))


def walk_function(ctx: _File, fdef: FuncDef, cls: str | None) -> list[_Event]:
    """Events of one function body for its summary; reports nothing (the body is also
    checked as its own scope) and queues no nested definitions."""
    scope = _Scope(ctx, cls, fdef, quiet=True)
    ctx.muted += 1
    try:
        scope.block(fdef.body)
    finally:
        ctx.muted -= 1
    return scope.events
