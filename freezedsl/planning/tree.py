"""``freezedsl show``: the module tree with child indices, sizes and states."""

from __future__ import annotations

from typing import Any

from freezedsl.planning.index import ModelIndex, Node


def _state(index: ModelIndex, node: Node) -> tuple[str, int, int]:
    seen: set[int] = set()
    total = train = 0
    for i in range(node.start, node.end):
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
    state, total, _train = _state(index, index.root)
    head = f"{index.model_class}  {total:,} params"
    if index.wrapper:
        head += f"  (inside {index.wrapper})"
    if state:
        head += "  " + style(state, fg=colours.get(state.split()[0], "yellow"))
    lines.append(style(head, bold=True) if color else head)

    def visit(node: Node, prefix: str, level: int) -> None:
        if depth is not None and level >= depth:
            return
        items: list[tuple[str, Node]] = []
        for i, child in enumerate(node.modules):
            items.append((f"[{i}]", child))
        if params:
            items.extend(("", c) for c in node.children.values() if c.is_param)
        for k, (label, child) in enumerate(items):
            last = k == len(items) - 1
            branch = "└── " if last else "├── "
            if child.is_param:
                info = index.tensors[index.tensor_of[child.start]]
                st = "trainable" if info.requires_grad else "frozen"
                shape = "[" + ", ".join(map(str, info.shape)) + "]"
                alias = "" if info.name == child.path else f"  (= {info.name})"
                lines.append(
                    f"{prefix}{branch}{style(child.path, fg='cyan')}  {shape}  {info.numel:,}  "
                    f"{style(st, fg=colours[st])}{alias}"
                )
                continue
            cstate, ctotal, _ = _state(index, child)
            cls = child.classes[0] if child.classes else "?"
            text = f"{prefix}{branch}{style(label, dim=True)} {style(child.path, bold=True)}  {cls}"
            if ctotal:
                text += f"  {ctotal:,}  " + style(cstate, fg=colours.get(cstate.split()[0], "yellow"))
            lines.append(text)
            visit(child, prefix + ("    " if last else "│   "), level + 1)

    visit(index.root, "", 0)
    return "\n".join(lines)
