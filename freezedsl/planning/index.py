"""A read-only index of a model's module tree and parameters.

Selectors are evaluated against this index, not against the live module, so planning
is pure: building the index only reads the model.

The index is a handful of parallel lists, not one object per module or parameter:
models with 100k parameter tensors are common (mixtures of experts) and a Python
object per tensor would cost more than the whole of what the bare
``for p in model.parameters()`` loop does. Modules are numbered in pre-order and
parameter names are ordered like ``named_parameters(remove_duplicate=False)`` (each
module's own parameters first), so every module's subtree is one contiguous range of
module numbers *and* of name numbers. A selection is then a Python int used as a bit
set over names, and unions and ``except`` cost a few machine words per 64 names
whatever the number of statements.

A *ref* names one node of the tree: a module number ``j >= 0`` or a parameter name
number ``k`` encoded as ``~k`` (negative).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import compress, count, repeat
from operator import attrgetter, eq, invert
from typing import Any

from freezedsl.gcpause import gc_paused
from freezedsl.planning.bits import (
    bits_mask,
    indices_mask,
    iter_bits,
    mask_bits,
    ranges_mask,
    weighted_sum,
)
from freezedsl.planning.classes import SCRIPT_CLASSES, class_info_of, class_names, dtype_info
from freezedsl.planning.walk import Tree
from freezedsl.planning.walk import walk_iterative as _walk_iterative
from freezedsl.planning.walk import walk_recursive as _walk_recursive
from freezedsl.planning.wrappers import peft_levels, unwrap, view_paths

# Re-exported: callers import these from the index, where they used to live.
__all__ = [
    "ModelIndex",
    "TensorInfo",
    "bits_mask",
    "build_index",
    "class_names",
    "dtype_info",
    "indices_mask",
    "iter_bits",
    "mask_bits",
    "ranges_mask",
    "unwrap",
    "weighted_sum",
]

_get_requires_grad = attrgetter("requires_grad")

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



class ModelIndex:
    """The module tree and parameters of one model, as parallel lists (see module doc)."""

    def __init__(
        self,
        *,
        names: list[str],
        leaf: list[str],
        tensor_of: Sequence[int],
        objects: list[Any],
        module_objects: list[Any],
        module_paths: list[str],
        module_segs: list[str],
        module_end: list[int],
        param_start: list[int],
        transparent: frozenset[int],
        wrapper: str | None,
        named_levels: frozenset[int] = frozenset(),
        hidden: frozenset[int] = frozenset(),
    ) -> None:
        self.names = names  # every parameter name, tied aliases included
        self.leaf = leaf  # last segment of each name
        self.tensor_of = tensor_of  # name number -> tensor number
        self.objects = objects  # the parameter objects by tensor number (never mutated here)
        self.module_objects = module_objects  # pre-order (never mutated here)
        self.module_paths = module_paths
        self.module_segs = module_segs
        self.module_end = module_end  # modules j..module_end[j]-1 are j and its subtree
        self.param_start = param_start  # names of module j start here; one extra entry: len(names)
        self.transparent = transparent  # modules inside a wrapper, shown under its path
        self.wrapper = wrapper  # e.g. "DistributedDataParallel" when the model was unwrapped
        # PEFT levels (freezedsl.planning.wrappers): transparent, but keeping their real
        # segment, so a path may still name them; and modules only a path naming them reaches.
        self.named_levels = named_levels
        self.hidden = hidden
        self.shadowed: frozenset[int] = frozenset()  # the hidden modules and everything below them
        self.shadow_mask = 0  # their parameters' names, as a mask
        if hidden:
            spans = [(j, module_end[j]) for j in hidden]
            self.shadowed = frozenset(k for s, e in spans for k in range(s, e))
            self.shadow_mask = ranges_mask(len(names), [(param_start[s], param_start[e]) for s, e in spans])
        self._view: tuple[list[str], list[str]] | None = None
        self.tied = len(objects) != len(names)
        self._tensors: list[TensorInfo] | None = None
        self._requires_grad: list[bool] | None = None
        self._numel: list[int] | None = None
        self._classes: dict[int, tuple[tuple[str, ...], str]] = {}
        self._named: dict[str, list[int]] = {}
        self.model_class = self.classes(0)[0] if self.classes(0) else type(module_objects[0]).__name__

    # ------------------------------------------------------------ sizes and masks
    @property
    def n_modules(self) -> int:
        return len(self.module_objects)

    @property
    def all_mask(self) -> int:
        return (1 << len(self.names)) - 1

    @property
    def all_tensors_mask(self) -> int:
        return (1 << len(self.objects)) - 1

    def param_end(self, j: int) -> int:
        return self.param_start[self.module_end[j]]

    def own_params(self, j: int) -> range:
        """Name numbers of module ``j``'s own parameters (not its submodules')."""
        return range(self.param_start[j], self.param_start[j + 1])

    # ------------------------------------------------------------ tensors
    @property
    def requires_grad(self) -> list[bool]:
        """``requires_grad`` of every tensor when the index was built."""
        if self._requires_grad is None:
            self._requires_grad = list(map(_get_requires_grad, self.objects))
        return self._requires_grad

    @property
    def numel(self) -> list[int]:
        """Elements of every tensor, read on first use (share expectations, reports)."""
        if self._numel is None:
            self._numel = _numels(self.objects)
        return self._numel

    @property
    def tensors(self) -> list[TensorInfo]:
        """Per-tensor details, built on first use (reports, ``show``, lint)."""
        if self._tensors is None:
            aliases = self.aliases()
            out = []
            for t, (param, rg, n) in enumerate(zip(self.objects, self.requires_grad, self.numel)):
                dtype, can = dtype_info(param.dtype)
                names = aliases[t]
                out.append(TensorInfo(names[0], names, tuple(param.shape), n, dtype, rg, can, param.device.type))
            self._tensors = out
        return self._tensors

    def aliases(self) -> list[tuple[str, ...]]:
        """Every name of each tensor, canonical (first) name first."""
        if not self.tied:
            return [(n,) for n in self.names]
        out: list[tuple[str, ...]] = [()] * len(self.objects)
        for name, t in zip(self.names, self.tensor_of):
            out[t] = out[t] + (name,)
        return out

    def canonical_names(self) -> list[str]:
        if not self.tied:
            return self.names
        return [a[0] for a in self.aliases()]

    def tensor_bits(self, name_mask: int) -> int:
        """A mask over names turned into a mask over tensors (a tensor is in when any name is)."""
        if not self.tied:
            return name_mask
        buf = bytearray(len(self.objects))
        for i in iter_bits(name_mask):
            buf[self.tensor_of[i]] = 1
        return bits_mask(buf)

    def tensor_mask(self, name_mask: int) -> set[int]:
        return set(iter_bits(self.tensor_bits(name_mask)))

    # ------------------------------------------------------------ modules
    def classes(self, j: int) -> tuple[str, ...]:
        """Module ``j``'s class name first, then its base classes."""
        return self._class_info(j)[0]

    def qualname(self, j: int) -> str:
        return self._class_info(j)[1]

    def _class_info(self, j: int) -> tuple[tuple[str, ...], str]:
        info = self._classes.get(j)
        if info is None:
            info = self._classes[j] = class_names(self.module_objects[j])
        return info

    def class_matches(self, test: Any) -> list[int]:
        """Module numbers whose ``(classes, qualname)`` pass ``test``; one test per class."""
        types = list(map(type, self.module_objects))
        verdict: dict[type, bool] = {}
        out: list[int] = []
        for cls in set(types):
            if cls.__name__ in SCRIPT_CLASSES:  # per instance: the scripted class varies
                out.extend(j for j, c in enumerate(types) if c is cls and test(*self._class_info(j)))
            else:
                verdict[cls] = bool(test(*class_info_of(cls)))
        wanted = {cls for cls, ok in verdict.items() if ok}
        if wanted:
            out.extend(compress(count(), map(wanted.__contains__, types)))
        return sorted(out)

    def running_stats(self, j: int) -> bool:
        """A norm layer that tracks running statistics (BatchNorm, InstanceNorm with stats)."""
        return "_NormBase" in self.classes(j) and getattr(self.module_objects[j], "running_mean", None) is not None

    def _direct_submodules(self, j: int) -> list[int]:
        """The modules one level below ``j`` in the pre-order lists (wrappers not looked into)."""
        end = self.module_end
        out: list[int] = []
        k = j + 1
        stop = end[j]
        while k < stop:
            out.append(k)
            k = end[k]
        return out

    def child_modules(self, j: int) -> list[int]:
        """Module ``j``'s submodules in registration order, each object once (``named_children``)."""
        out = self._direct_submodules(j)
        if self.hidden:
            out = [k for k in out if k not in self.hidden]
        if self.transparent and any(k in self.transparent for k in out):
            out = [m for k in out for m in (self.child_modules(k) if k in self.transparent else (k,))]
        objects = self.module_objects
        if len(set(map(id, map(objects.__getitem__, out)))) < len(out):  # a module registered twice
            seen: set[int] = set()
            unique: list[int] = []
            for k in out:
                if id(objects[k]) not in seen:
                    seen.add(id(objects[k]))
                    unique.append(k)
            out = unique
        return out

    def child_params(self, j: int) -> list[int]:
        """Name numbers of ``j``'s own parameters, and those of a wrapped module inside it."""
        out = list(self.own_params(j))
        k = j + 1
        stop = self.module_end[j]
        while k < stop:
            if k in self.transparent:
                out.extend(self.child_params(k))
            k = self.module_end[k]
        return out

    def children(self, j: int) -> Iterator[tuple[str, int]]:
        """(segment, ref) of every child of module ``j``: submodules then parameters."""
        k = j + 1
        stop = self.module_end[j]
        while k < stop:
            if k in self.transparent:
                yield from ((s, r) for s, r in self.children(k) if r >= 0)
            elif k in self.hidden:
                pass
            else:
                yield self.module_segs[k], k
            k = self.module_end[k]
        for i in self.child_params(j):
            yield self.leaf[i], ~i

    def child_refs(self, j: int) -> list[int]:
        """The refs of :meth:`children`, as one list (the hot path of ``*`` in paths)."""
        if self.transparent:
            return [r for _seg, r in self.children(j)]
        out = self._direct_submodules(j)
        out.extend(range(~self.param_start[j], ~self.param_start[j + 1], -1))
        return out

    def child(self, j: int, segment: str, levels_first: bool = False) -> int | None:
        """The ref of module ``j``'s child called ``segment``, or None.

        A scan of ``j``'s direct children: cheaper than a table of every path in the
        model when only a few modules are asked (the usual case: the root, a block).
        A PEFT level (``base_model``, ``model``, ``base_layer``) is looked through
        first; ``levels_first`` takes it by its own name first instead, for full names
        such as ``base_model.model.model.layers`` (a Llama inside a LoraModel).
        """
        segs = self.module_segs
        for k in self._direct_submodules(j):
            if k in self.transparent:
                named = k in self.named_levels and segs[k] == segment
                if named and levels_first:
                    return k
                found = self.child(k, segment, levels_first)
                if found is not None and found >= 0:
                    return found
                if named:
                    return k
            elif segs[k] == segment:
                return k
        for i in self.child_params(j):
            if self.leaf[i] == segment:
                return ~i
        return None

    def children_named(self, mods: Iterable[int], segment: str, levels_first: bool = False) -> list[int]:
        """The child called ``segment`` of each module of ``mods`` that has one.

        :meth:`child` inlined for the hot path, ``blocks.*.experts.*.w1`` with 15k
        parents: a walk over each parent's direct children, no model-wide table.
        """
        if self.transparent:
            return [c for c in (self.child(j, segment, levels_first) for j in mods) if c is not None]
        segs, end, start, leaf = self.module_segs, self.module_end, self.param_start, self.leaf
        out: list[int] = []
        add = out.append
        for j in mods:
            k = j + 1
            stop = end[j]
            while k < stop:
                if segs[k] == segment:
                    add(k)
                    break
                k = end[k]
            else:
                for i in range(start[j], start[j + 1]):
                    if leaf[i] == segment:
                        add(~i)
                        break
        return out

    def named(self, segment: str) -> list[int]:
        """Refs of every module and parameter whose last segment is ``segment``."""
        refs = self._named.get(segment)
        if refs is None:  # C loops only: operator.eq beats segment.__eq__ by a quarter
            refs = list(compress(count(), map(eq, self.module_segs, repeat(segment))))
            if self.transparent or (refs and refs[0] == 0):  # the root and wrapped modules are no child
                refs = [j for j in refs if j and (j not in self.transparent or j in self.named_levels)]
            refs.extend(map(invert, compress(count(), map(eq, self.leaf, repeat(segment)))))
            self._named[segment] = refs
        return refs

    def segments(self) -> set[str]:
        """Every segment name in the model (for globs and suggestions)."""
        return set(self.module_segs[1:]) | set(self.leaf)

    def path_of(self, ref: int) -> str:
        return self.module_paths[ref] if ref >= 0 else self.names[~ref]

    def has_params(self, ref: int) -> bool:
        return ref < 0 or self.param_end(ref) > self.param_start[ref]

    def subtree(self, ref: int) -> list[int]:
        """``ref`` and every ref below it (``**``), modules first."""
        if ref < 0:
            return [ref]
        refs = [k for k in range(ref, self.module_end[ref]) if k == ref or k not in self.transparent]
        refs.extend(~i for i in range(self.param_start[ref], self.param_end(ref)))
        if self.shadowed and ref not in self.shadowed:
            refs = [r for r in refs if not self.is_shadowed(r)]
        return refs

    # ------------------------------------------------------------ PEFT views
    def is_shadowed(self, ref: int) -> bool:
        """Whether ``ref`` lies in a hidden module (only a path naming it reaches it)."""
        return ref in self.shadowed if ref >= 0 else bool(self.shadow_mask >> ~ref & 1)

    def direct_child(self, j: int, segment: str) -> int | None:
        """Module ``j``'s child registered as ``segment``, by its real name (no level skipped)."""
        for k in self._direct_submodules(j):
            if self.module_segs[k] == segment:
                return k
        for i in self.own_params(j):
            if self.leaf[i] == segment:
                return ~i
        return None

    def view_names(self) -> tuple[list[str], list[str]] | None:
        """(parameter names, module paths) without PEFT's levels; None without PEFT.

        ``name~`` regexes match these as well as the real names, so that
        ``name~"^encoder\\."`` reads on a PeftModel as on the bare model.
        """
        if not self.named_levels:
            return None
        if self._view is None:
            paths = view_paths(self.module_paths, self.module_segs, self.module_end, self.transparent.__contains__)
            names = [
                f"{paths[j]}.{self.leaf[i]}" if paths[j] else self.leaf[i]
                for j in range(self.n_modules)
                for i in self.own_params(j)
            ]
            self._view = names, paths
        return self._view


def _numels(objects: list[Any]) -> list[int]:
    try:
        import torch

        return list(map(torch.Tensor.numel, objects))  # no attribute lookup per tensor
    except (ImportError, TypeError):  # pragma: no cover - not torch tensors
        return [p.numel() for p in objects]


def build_index(model: Any) -> ModelIndex:
    """Index ``model`` (an nn.Module, ScriptModule or a DDP/compile wrapper).

    The garbage collector is paused meanwhile: the walk allocates a few hundred
    thousand strings and ints, and collection passes over the growing heap would
    otherwise cost more than the walk itself.
    """
    with gc_paused():
        return _build_index(model)


def _build_index(model: Any) -> ModelIndex:
    bare, wrapper = unwrap(model)
    if not hasattr(bare, "_parameters") or not hasattr(bare, "_modules"):
        from freezedsl.errors import UsageError

        raise UsageError(
            f"expected a torch.nn.Module, got {type(bare).__name__}; "
            "to use a state dict, build the model and load it first"
        )
    try:
        tree = _walk_recursive(bare)
    except RecursionError:  # a model nested deeper than the interpreter's recursion limit
        tree = _walk_iterative(bare)
    return _finish(tree, wrapper)


def _finish(tree: Tree, wrapper: str | None) -> ModelIndex:
    names, leaf, params, module_objects, module_paths, module_segs, module_end, param_start, transparent = tree
    tensor_of: Sequence[int]
    if len(set(map(id, params))) == len(params):
        tensor_of, objects = range(len(names)), params
    else:  # tied parameters: one tensor, several names
        by_id: dict[int, int] = {}
        objects = []
        tensor_of = []
        for param in params:
            key = id(param)
            t = by_id.get(key)
            if t is None:
                t = by_id[key] = len(objects)
                objects.append(param)
            tensor_of.append(t)
    through, hidden = peft_levels(module_objects, module_segs, module_end)
    return ModelIndex(
        names=names,
        leaf=leaf,
        tensor_of=tensor_of,
        objects=objects,
        module_objects=module_objects,
        module_paths=module_paths,
        module_segs=module_segs,
        module_end=module_end,
        param_start=param_start,
        transparent=frozenset(transparent).union(through),
        wrapper=wrapper,
        named_levels=frozenset(through),
        hidden=frozenset(hidden),
    )
