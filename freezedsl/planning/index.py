"""A read-only index of a model's module tree and parameters.

Selectors are evaluated against this index, not against the live module, so planning
is pure: building the index only reads the model. Parameter names are ordered like
``named_parameters(remove_duplicate=False)`` (pre-order, each module's own parameters
first), which makes every module's parameters one contiguous range of name indices;
a selection is then a Python int used as a bit set over names, so unions and
``except`` cost a few machine words per 64 names whatever the number of statements.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from freezedsl.util import gc_paused

TRANSPARENT_CHILDREN = frozenset({"_checkpoint_wrapped_module", "_fsdp_wrapped_module", "_orig_mod"})

WRAPPER_ATTRS = {
    "DistributedDataParallel": "module",
    "DataParallel": "module",
    "OptimizedModule": "_orig_mod",  # torch.compile
}


@dataclass(slots=True)
class Node:
    """A module or a parameter in the tree, addressed by its dotted path."""

    path: str
    segment: str
    is_param: bool
    start: int = 0  # name-index range [start, end) of every parameter below
    end: int = 0
    children: dict[str, Node] = field(default_factory=dict)  # submodules then parameters
    modules: list[Node] = field(default_factory=list)  # submodules in registration order
    classes: tuple[str, ...] = ()  # own class name first, then base classes
    qualname: str = ""
    mstart: int = 0  # module-index range [mstart, mend) of this module and all below
    mend: int = 0
    running_stats: bool = False  # a norm layer that tracks running statistics

    def walk(self) -> Iterator[Node]:
        """This node and every node below it, pre-order."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(list(node.children.values())))


@dataclass(slots=True)
class TensorInfo:
    name: str  # canonical (first) name
    aliases: tuple[str, ...]  # every name, canonical first
    shape: tuple[int, ...]
    numel: int
    dtype: str
    requires_grad: bool
    can_require_grad: bool
    device: str


@dataclass
class ModelIndex:
    root: Node
    names: list[str]  # every parameter name, tied aliases included
    tensor_of: list[int]  # name index -> tensor index
    tensors: list[TensorInfo]
    objects: list[Any]  # the parameter objects, by tensor index (never mutated here)
    model_class: str
    wrapper: str | None  # e.g. "DistributedDataParallel" when the model was unwrapped
    module_nodes: list[Node]  # pre-order; Node.mstart indexes this list
    module_objects: list[Any]  # the modules, parallel to module_nodes (never mutated here)

    _by_segment: dict[str, list[Node]] | None = None

    @property
    def all_mask(self) -> int:
        return (1 << len(self.names)) - 1

    def _segments(self) -> dict[str, list[Node]]:
        if self._by_segment is None:
            table: dict[str, list[Node]] = {}
            for node in self.root.walk():
                if node.path:
                    table.setdefault(node.segment, []).append(node)
            self._by_segment = table
        return self._by_segment

    def segment_names(self) -> list[str]:
        return sorted(self._segments())

    def nodes_named(self, part: Any) -> list[Node]:
        """Every node (module or parameter) whose last segment matches a Word or Glob."""
        table = self._segments()
        name = getattr(part, "name", None)
        if name is not None:
            return table.get(name, [])
        import re

        rx = re.compile("".join("[^.]*" if ch == "*" else re.escape(ch) for ch in part.pattern) + r"\Z")
        out: list[Node] = []
        for seg, nodes in table.items():
            if rx.match(seg):
                out.extend(nodes)
        return out

    def tensor_mask(self, name_mask: int) -> set[int]:
        return {self.tensor_of[i] for i in iter_bits(name_mask)}


def iter_bits(mask: int) -> Iterator[int]:
    """Indices of set bits, ascending; linear in the mask's bit length."""
    if mask <= 0:
        return
    text = bin(mask)[:1:-1]
    i = text.find("1")
    while i != -1:
        yield i
        i = text.find("1", i + 1)


def unwrap(model: Any) -> tuple[Any, str | None]:
    """Strip DDP / DataParallel / torch.compile wrappers so bare-model names apply."""
    wrapper = None
    seen = 0
    while seen < 8:
        attr = WRAPPER_ATTRS.get(type(model).__name__)
        inner = getattr(model, attr, None) if attr else None
        if inner is None:
            break
        wrapper = wrapper or type(model).__name__
        model = inner
        seen += 1
    return model, wrapper


_CLASS_CACHE: dict[type, tuple[tuple[str, ...], str]] = {}
_DTYPE_CACHE: dict[Any, tuple[str, bool]] = {}


def _class_names(module: Any) -> tuple[tuple[str, ...], str]:
    cls = type(module)
    cached = _CLASS_CACHE.get(cls)
    if cached is not None:
        return cached
    if cls.__name__ in ("RecursiveScriptModule", "ScriptModule"):
        return _script_class_names(module, cls.__name__)  # per instance: not cached
    names = tuple(c.__name__ for c in cls.__mro__ if c.__name__ != "object")
    result = names, f"{cls.__module__}.{cls.__qualname__}"
    _CLASS_CACHE[cls] = result
    return result


def _script_class_names(module: Any, wrapper: str) -> tuple[tuple[str, ...], str]:
    """The Python class a TorchScript module was scripted from, when it is importable.

    TorchScript keeps ``__torch__.pkg.mod.Class``; if ``pkg.mod`` is already imported
    (it usually is in the process that scripted or loaded the model) the real class
    gives base classes and the dotted name; nothing is imported here.
    """
    import sys

    original = str(getattr(module, "original_name", None) or wrapper)
    try:
        qualified = module._c._type().qualified_name()
    except Exception:  # noqa: BLE001 - private API; fall back to the short name
        qualified = ""
    qualified = qualified.removeprefix("__torch__.")
    mod_name, _, cls_name = qualified.rpartition(".")
    owner = sys.modules.get(mod_name) if mod_name else None
    real = getattr(owner, cls_name, None) if owner is not None else None
    if isinstance(real, type):
        names = tuple(c.__name__ for c in real.__mro__ if c.__name__ != "object")
        return names + (wrapper,), f"{real.__module__}.{real.__qualname__}"
    return (original, wrapper), qualified or original


def _dtype_info(dtype: Any) -> tuple[str, bool]:
    info = _DTYPE_CACHE.get(dtype)
    if info is None:
        can = bool(getattr(dtype, "is_floating_point", False) or getattr(dtype, "is_complex", False))
        info = (str(dtype).replace("torch.", ""), can)
        _DTYPE_CACHE[dtype] = info
    return info


def _items(container: Any) -> list[tuple[str, Any]]:
    if container is None:
        return []
    try:
        return list(container.items())
    except AttributeError:  # pragma: no cover - exotic containers
        return [(k, container[k]) for k in container]


def build_index(model: Any) -> ModelIndex:
    """Index ``model`` (an nn.Module, ScriptModule or a DDP/compile wrapper).

    The garbage collector is paused meanwhile: the index allocates one small object
    per parameter, and on models with ~100k tensors collection passes over the
    growing heap would otherwise cost more than the walk itself.
    """
    with gc_paused():
        return _build_index(model)


_NO_CHILDREN: dict[str, Node] = {}  # shared by parameter leaves; never mutated
_NO_MODULES: list[Node] = []


def _build_index(model: Any) -> ModelIndex:
    bare, wrapper = unwrap(model)
    if not hasattr(bare, "_parameters") or not hasattr(bare, "_modules"):
        from freezedsl.errors import UsageError

        raise UsageError(
            f"expected a torch.nn.Module, got {type(bare).__name__}; "
            "to use a state dict, build the model and load it first"
        )
    names: list[str] = []
    tensor_of: list[int] = []
    tensors: list[TensorInfo] = []
    objects: list[Any] = []
    by_id: dict[int, int] = {}
    module_nodes: list[Node] = []
    module_objects: list[Any] = []

    def visit(module: Any, path: str, segment: str, depth: int) -> Node:
        classes, qual = _class_names(module)
        node = Node(path, segment, False, classes=classes, qualname=qual)
        node.mstart = len(module_nodes)
        node.running_stats = "_NormBase" in classes and getattr(module, "running_mean", None) is not None
        module_nodes.append(node)
        module_objects.append(module)
        node.start = len(names)
        prefix = f"{path}." if path else ""
        params = _items(getattr(module, "_parameters", None))
        for pname, param in params:
            if param is None:
                continue
            full = prefix + pname
            idx = len(names)
            names.append(full)
            key = id(param)
            t = by_id.get(key)
            if t is None:
                t = len(tensors)
                by_id[key] = t
                dtype, can = _dtype_info(param.dtype)
                tensors.append(
                    TensorInfo(
                        full,
                        (full,),
                        tuple(param.shape),
                        param.numel(),
                        dtype,
                        param.requires_grad,
                        can,
                        param.device.type,
                    )
                )
                objects.append(param)
            else:
                info = tensors[t]
                info.aliases = info.aliases + (full,)
            tensor_of.append(t)
            leaf = Node(full, pname, True, idx, idx + 1, _NO_CHILDREN, _NO_MODULES)
            node.children[pname] = leaf
        if depth > 500:
            raise RecursionError("module tree deeper than 500 levels")
        seen_children: set[int] = set()
        for cname, child in _items(getattr(module, "_modules", None)):
            if child is None:
                continue
            if cname in TRANSPARENT_CHILDREN:
                # A wrapper inside the tree (activation checkpointing, FSDP, compile):
                # its inner module's children and parameters appear under the
                # wrapper's own path, so bare-model rules and names keep working.
                inner = visit(child, path, segment, depth + 1)
                node.children.update(inner.children)
                node.modules.extend(inner.modules)
                continue
            sub = visit(child, prefix + cname, cname, depth + 1)
            if id(child) not in seen_children:  # slices count a module once, like named_children()
                seen_children.add(id(child))
                node.modules.append(sub)
            # torch forbids a child module and a parameter of the same name, so one
            # dict serves both; slices use ``modules`` (registration order).
            node.children[cname] = sub
        node.end = len(names)
        node.mend = len(module_nodes)
        return node

    root = visit(bare, "", "", 0)
    model_class = root.classes[0] if root.classes else type(bare).__name__
    return ModelIndex(root, names, tensor_of, tensors, objects, model_class, wrapper, module_nodes, module_objects)


def ranges_mask(total: int, ranges: list[tuple[int, int]]) -> int:
    """OR of many [start, end) ranges as one int, in time linear in ``total``."""
    if not ranges:
        return 0
    if len(ranges) == 1:
        s, e = ranges[0]
        return ((1 << (e - s)) - 1) << s
    buf = bytearray(b"0") * total
    ones = b"1" * total
    for s, e in ranges:
        buf[s:e] = ones[: e - s]
    buf.reverse()
    return int(buf, 2)


def indices_mask(total: int, indices: list[int]) -> int:
    return ranges_mask(total, [(i, i + 1) for i in indices])
