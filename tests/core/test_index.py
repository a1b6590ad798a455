"""The model index: its bit-set helpers and its parallel lists, against torch's own walks."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from freezedsl.planning.index import (
    _walk_iterative,
    _walk_recursive,
    bits_mask,
    build_index,
    indices_mask,
    iter_bits,
    mask_bits,
    ranges_mask,
    weighted_sum,
)

from .strategies import build, tree_specs

bit_sets = st.sets(st.integers(0, 300), max_size=80)


@given(bit_sets)
def test_iter_bits_lists_exactly_the_set_bits(members: set[int]) -> None:
    mask = sum(1 << i for i in members)
    assert list(iter_bits(mask)) == sorted(members)


@given(bit_sets, st.integers(0, 40))
def test_mask_bits_and_bits_mask_are_inverse(members: set[int], extra: int) -> None:
    mask = sum(1 << i for i in members)
    total = max(members, default=-1) + 1 + extra
    flags = mask_bits(mask, total)
    assert len(flags) == total
    assert [i for i, f in enumerate(flags) if f] == sorted(members)
    assert bits_mask(flags) == mask
    assert bits_mask([bool(f) for f in flags]) == mask


@given(st.lists(st.tuples(st.integers(0, 120), st.integers(0, 120)), max_size=12))
def test_ranges_mask_is_the_union_of_the_ranges(ranges: list[tuple[int, int]]) -> None:
    total = 121
    want = {i for s, e in ranges for i in range(s, e)}
    assert set(iter_bits(ranges_mask(total, ranges))) == want
    assert set(iter_bits(indices_mask(total, sorted(want)))) == want


@given(bit_sets)
def test_weighted_sum(members: set[int]) -> None:
    weights = [i * i + 1 for i in range(301)]
    mask = sum(1 << i for i in members)
    assert weighted_sum(mask, weights) == sum(weights[i] for i in members)


@settings(max_examples=60, deadline=None)
@given(tree_specs())
def test_index_lists_agree_with_torch(spec: object) -> None:
    """Names, module numbering, subtree ranges and children match torch's walks."""
    model = build(spec)  # type: ignore[arg-type]
    index = build_index(model)
    assert index.names == [n for n, _ in model.named_parameters(remove_duplicate=False)]
    modules = list(model.named_modules(remove_duplicate=False))
    assert index.module_paths == [n for n, _ in modules]
    assert all(a is b for a, (_, b) in zip(index.module_objects, modules))
    unique = list(dict.fromkeys(map(id, (p for _, p in model.named_parameters(remove_duplicate=False)))))
    assert [id(p) for p in index.objects] == unique
    for j, path in enumerate(index.module_paths):
        prefix = f"{path}." if path else ""
        below = {k for k, p in enumerate(index.module_paths) if k == j or (p.startswith(prefix) and k > j)}
        assert set(range(j, index.module_end[j])) == below
        names = index.names[index.param_start[j] : index.param_end(j)]
        assert names == [n for n in index.names if n.startswith(prefix)]
        module = index.module_objects[j]
        assert [index.module_segs[k] for k in index.child_modules(j)] == [n for n, _ in module.named_children()]
        assert [index.leaf[i] for i in index.child_params(j)] == [
            n for n, p in module._parameters.items() if p is not None
        ]
        for seg, ref in index.children(j):
            assert index.child(j, seg) == ref
            assert index.children_named([j], seg) == [ref]
        assert index.children_named([j], "no_such_child") == []


class Wrapper(nn.Module):
    """What activation checkpointing puts around a module."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self._checkpoint_wrapped_module = inner


def _wrap_some(model: nn.Module, picks: list[bool]) -> None:
    """Wrap the submodules chosen by ``picks`` (in pre-order) in a checkpoint wrapper."""
    targets = [(parent, name) for parent in list(model.modules()) for name in list(parent._modules)]
    for (parent, name), pick in zip(targets, picks):
        child = parent._modules[name]
        if pick and child is not None and not isinstance(child, Wrapper):
            parent._modules[name] = Wrapper(child)


@given(tree_specs(), st.lists(st.booleans(), max_size=30))
def test_recursive_and_iterative_walks_agree(spec: object, picks: list[bool]) -> None:
    """The fast recursive walk and its no-depth-limit fallback build the same lists."""
    model = build(spec)  # type: ignore[arg-type]
    _wrap_some(model, picks)
    assert _walk_recursive(model) == _walk_iterative(model)
    index = build_index(model)
    for j in range(index.n_modules):
        if j in index.transparent:
            continue
        for seg, ref in index.children(j):
            assert index.children_named([j], seg) == [ref]


def test_wrapped_modules_are_transparent() -> None:
    """A checkpoint-style wrapper's inner module lends its children to the wrapper's path."""

    model = nn.Sequential(Wrapper(nn.Sequential(nn.Linear(2, 2), nn.ReLU())), nn.Linear(2, 1))
    index = build_index(model)
    assert index.names == ["0.0.weight", "0.0.bias", "1.weight", "1.bias"]
    wrapper = index.child(0, "0")
    assert wrapper is not None and wrapper >= 0
    assert [index.module_paths[k] for k in index.child_modules(wrapper)] == ["0.0", "0.1"]
    assert index.named("0") == [wrapper, index.child(wrapper, "0")]


def test_deep_models_do_not_hit_the_recursion_limit() -> None:
    model: nn.Module = nn.Linear(1, 1)
    for _ in range(3000):
        outer = nn.Module()
        outer.add_module("m", model)
        model = outer
    index = build_index(model)
    assert index.names == ["m." * 3000 + "weight", "m." * 3000 + "bias"]
