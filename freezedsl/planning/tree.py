"""``freezedsl show``: the module tree with child indices, sizes and states."""

from __future__ import annotations

from typing import Any

from freezedsl.planning.index import ModelIndex
from freezedsl.safetext import printable


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
    if total == 0:
        return "", 0, 0
    if train == total:
        return "trainable", total, train
    if train == 0:
        return "frozen", total, train
    return f"mixed {100.0 * train / total:.1f}% trainable", total, train


def render_tree(index: ModelIndex, *, depth: int | None = None, params: bool = False, color: bool = False) -> str:
    import click

    def style(text: str, **kw: Any) -> str:
        return click.style(text, **kw) if color else text

    colours = {"trainable": "green", "frozen": "blue"}
    lines: list[str] = []
    state, total, _train = _state(index, 0)
    head = f"{printable(index.model_class)}  {total:,} params"
    if index.wrapper:
        head += f"  (inside {index.wrapper})"
    if state:
        head += "  " + style(state, fg=colours.get(state.split()[0], "yellow"))
    lines.append(style(head, bold=True) if color else head)

    def visit(j: int, prefix: str, level: int) -> None:
        if depth is not None and level >= depth:
            return
        items: list[tuple[str, int]] = []
        for i, child in enumerate(index.child_modules(j)):
            items.append((f"[{i}]", child))
        if params:
            items.extend(("", ~i) for i in index.child_params(j))
        for k, (label, child) in enumerate(items):
            last = k == len(items) - 1
            branch = "└── " if last else "├── "
            if child < 0:
                path = printable(index.names[~child])
                info = index.tensors[index.tensor_of[~child]]
                st = "trainable" if info.requires_grad else "frozen"
                shape = "[" + ", ".join(map(str, info.shape)) + "]"
                alias = "" if info.name == index.names[~child] else f"  (= {printable(info.name)})"
                lines.append(
                    f"{prefix}{branch}{style(path, fg='cyan')}  {shape}  {info.numel:,}  "
                    f"{style(st, fg=colours[st])}{alias}"
                )
                continue
            cstate, ctotal, _ = _state(index, child)
            classes = index.classes(child)
            cls = printable(classes[0]) if classes else "?"
            text = f"{prefix}{branch}{style(label, dim=True)} {style(printable(index.module_paths[child]), bold=True)}  {cls}"
            if ctotal:
                text += f"  {ctotal:,}  " + style(cstate, fg=colours.get(cstate.split()[0], "yellow"))
            lines.append(text)
            visit(child, prefix + ("    " if last else "│   "), level + 1)

    visit(0, "", 0)
    return "\n".join(lines)
