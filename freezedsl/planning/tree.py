"""``freezedsl show``: the module tree with child indices, sizes and states.

Three things keep the tree readable on real models (why each exists):

* Parameters that sit directly on a module *with* submodules (ViT's ``cls_token`` and
  ``pos_embed``, CLIP's ``logit_scale``) are rows of their own even without
  ``params=True``; otherwise their elements count in the parent's size but appear
  nowhere, and they cannot be found to write a rule about. Leaf modules' own
  ``weight``/``bias`` stay hidden unless ``params=True``.
* ``root="blocks.3"`` (or ``blocks[3]``) shows one subtree, with paths as the rules
  spell them.
* Runs of consecutively numbered siblings (``layers.0``, ``layers.1``, ...; also
  ``encoder_layer_0``, ``encoder_layer_1``, ...) with the same structure (class, submodule names and classes, parameter names, shapes and
  trainable/frozen flags, all the way down) are collapsed into one row, ``[0..31] layers.0..31  LlamaDecoderLayer x32``, followed by
  the first one's subtree; ``collapse=False`` lists each. A 32-layer model is then as
  short as a 1-layer one.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any

from freezedsl.errors import UsageError
from freezedsl.planning.index import ModelIndex
from freezedsl.safetext import printable

COLOURS = {"trainable": "green", "frozen": "blue"}


def _state(index: ModelIndex, j: int) -> tuple[str, int, int]:
    seen: set[int] = set()
    total = train = 0
    for i in range(index.param_start[j], index.param_end(j)):
        t = index.tensor_of[i]
        if t in seen:
            continue
        seen.add(t)
        info = index.tensors[t]
        total += info.numel
        if info.requires_grad:
            train += info.numel
    return _describe(total, train), total, train


def _describe(total: int, train: int) -> str:
    if total == 0:
        return ""
    if train == total:
        return "trainable"
    if train == 0:
        return "frozen"
    return f"mixed {100.0 * train / total:.1f}% trainable"


def resolve_root(index: ModelIndex, path: str) -> int:
    """The module number of ``path`` (``blocks.3``, ``blocks[3]``, ``layer4.0.conv1``);
    UsageError if none. On a PEFT model a full name is tried too (see ModelIndex.child)."""
    full = bool(index.named_levels) and index.direct_child(0, re.split(r"[.\[]", path)[0]) in index.named_levels
    try:
        return _resolve_root(index, path, full)
    except UsageError as err:
        if not index.named_levels:
            raise
        try:
            return _resolve_root(index, path, not full)
        except UsageError:
            raise err from None


def _resolve_root(index: ModelIndex, path: str, levels_first: bool) -> int:
    j = 0
    done: list[str] = []
    for seg in re.sub(r"\[(\d+)\]", r".\1", path).split("."):
        ref = index.child(j, seg, levels_first) if seg else None
        if ref is None or ref < 0:
            where = ".".join(done) or index.model_class
            names = [index.module_segs[k] for k in index.child_modules(j)]
            close = difflib.get_close_matches(seg, names, n=3, cutoff=0.5)
            if ref is not None:
                hint = f"{'.'.join([*done, seg])} is a parameter; --root takes a module path"
            elif close:
                hint = "did you mean " + ", ".join(repr(".".join([*done, c])) for c in close) + "?"
            elif names:
                hint = "its submodules are " + ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            else:
                hint = f"{where} has no submodules"
            raise UsageError(f"--root {path}: {where} has no submodule {seg!r}", hint=hint)
        done.append(seg)
        j = ref
    return j


class _Signatures:
    """Structural fingerprints of subtrees, memoised; equal means collapsible."""

    def __init__(self, index: ModelIndex) -> None:
        self.index = index
        self.memo: dict[int, tuple[Any, ...]] = {}

    def of(self, j: int) -> tuple[Any, ...]:
        sig = self.memo.get(j)
        if sig is None:
            index = self.index
            params = tuple(
                (index.leaf[i], index.tensors[index.tensor_of[i]].shape, index.tensors[index.tensor_of[i]].requires_grad)
                for i in index.child_params(j)
            )
            kids = tuple((index.module_segs[k], self.of(k)) for k in index.child_modules(j))
            classes = index.classes(j)
            sig = (classes[0] if classes else "?", params, kids)
            self.memo[j] = sig
        return sig


_NUMBERED = re.compile(r"(.*?)(\d+)")


def _numbered(seg: str) -> tuple[str, int] | None:
    """``("", 3)`` for ``3``, ``("encoder_layer_", 3)`` for ``encoder_layer_3``, else None."""
    m = _NUMBERED.fullmatch(seg)
    return (m.group(1), int(m.group(2))) if m else None


def _repeats(index: ModelIndex, sigs: _Signatures, run: list[int], k: int) -> bool:
    """``k`` continues ``run``: numbered siblings (``layers.4`` after ``layers.3``,
    torchvision's ``encoder_layer_4`` after ``encoder_layer_3``) of the same structure.
    Named siblings (``input_layernorm``, ``post_attention_layernorm``) play different
    parts even when alike, so they are never folded together."""
    prev, seg = _numbered(index.module_segs[run[-1]]), _numbered(index.module_segs[k])
    return (
        prev is not None
        and seg is not None
        and seg == (prev[0], prev[1] + 1)
        and sigs.of(run[0]) == sigs.of(k)
    )


def _runs(items: list[int], continues: Callable[[list[int], int], bool]) -> list[list[int]]:
    runs: list[list[int]] = []
    for item in items:
        if runs and continues(runs[-1], item):
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def render_tree(
    index: ModelIndex,
    *,
    depth: int | None = None,
    params: bool = False,
    color: bool = False,
    root: str | None = None,
    collapse: bool = True,
) -> str:
    """The tree as text; see the module docstring for root parameters, ``root`` and collapsing."""
    import click

    def style(text: str, **kw: Any) -> str:
        return click.style(text, **kw) if color else text

    def stated(state: str) -> str:
        return style(state, fg=COLOURS.get(state.split()[0], "yellow"))

    top = resolve_root(index, root) if root else 0
    sigs = _Signatures(index)
    lines: list[str] = []
    state, total, _train = _state(index, top)
    classes = index.classes(top)
    head = (
        printable(index.model_class)
        if top == 0
        else f"{printable(index.module_paths[top])}  {printable(classes[0]) if classes else '?'}"
    )
    head += f"  {total:,} params"
    if index.wrapper and top == 0:
        head += f"  (inside {index.wrapper})"
    if state:
        head += "  " + stated(state)
    lines.append(style(head, bold=True) if color else head)

    def param_row(i: int, prefix: str, branch: str) -> str:
        path = printable(index.names[i])
        info = index.tensors[index.tensor_of[i]]
        st = "trainable" if info.requires_grad else "frozen"
        shape = "[" + ", ".join(map(str, info.shape)) + "]"
        alias = "" if info.name == index.names[i] else f"  (= {printable(info.name)})"
        return f"{prefix}{branch}{style(path, fg='cyan')}  {shape}  {info.numel:,}  {stated(st)}{alias}"

    def module_row(run: list[int], first: int, prefix: str, branch: str) -> str:
        child = run[0]
        cls = printable(index.classes(child)[0]) if index.classes(child) else "?"
        if len(run) == 1:
            label, path = f"[{first}]", index.module_paths[child]
            ctotal, ctrain = _state(index, child)[1:]
        else:
            last = first + len(run) - 1
            label = f"[{first}..{last}]"
            last_number = _numbered(index.module_segs[run[-1]])
            assert last_number is not None  # a run is numbered siblings
            path = f"{index.module_paths[child]}..{last_number[1]}"
            cls = f"{cls} x{len(run)}"
            sizes = [_state(index, k) for k in run]
            ctotal, ctrain = sum(s[1] for s in sizes), sum(s[2] for s in sizes)
        text = f"{prefix}{branch}{style(label, dim=True)} {style(printable(path), bold=True)}  {cls}"
        if ctotal:
            text += f"  {ctotal:,}  " + stated(_describe(ctotal, ctrain))
            if len(run) > 1:
                text += f"  ({ctotal // len(run):,} each)"
        return text

    def visit(j: int, prefix: str, level: int) -> None:
        if depth is not None and level >= depth:
            return
        kids = index.child_modules(j)
        runs = _runs(kids, lambda run, b: _repeats(index, sigs, run, b)) if collapse else [[k] for k in kids]
        items: list[tuple[str, Any]] = []
        first = 0
        for run in runs:
            items.append(("module", (run, first)))
            first += len(run)
        if params or kids:  # a leaf's own weight/bias only with params=True
            items.extend(("param", i) for i in index.child_params(j))
        for k, (kind, item) in enumerate(items):
            last = k == len(items) - 1
            branch = "└── " if last else "├── "
            if kind == "param":
                lines.append(param_row(item, prefix, branch))
                continue
            run, first_index = item
            lines.append(module_row(run, first_index, prefix, branch))
            visit(run[0], prefix + ("    " if last else "│   "), level + 1)

    visit(top, "", 0)
    return "\n".join(lines)
