"""FZ116: a ``type=`` / ``type~`` selector that matches layers *and* containers of layers.

``type~"Norm"`` is meant to pick normalization layers, but it also matches torchvision's
``Conv2dNormActivation`` and timm's ``ConvNormAct``, blocks whose subtree holds a
convolution: a selected module means all of its parameters, so ``freeze all except
type~"Norm"`` leaves those convolutions training (64% of efficientnet_b0 instead of the
0.8% its norm layers hold). The signal is the mix: one atom matching modules that own
parameters (layers) and modules whose subtree holds other parameterised layers that the
atom does not match (containers). An atom that matches only containers (``type=Bottleneck``,
``type~"Attention$"``) selects whole blocks on purpose and is left alone, and so are
``type=norm``, which never matches containers, and the PEFT sets ``type=adapter`` /
``type=modules_to_save``.
"""

from __future__ import annotations

from dataclasses import dataclass

from freezedsl.planning.index import ModelIndex
from freezedsl.planning.select import _NORM_CLASS, NORM, Evaluator
from freezedsl.planning.wrappers import PEFT_TYPE_SETS
from freezedsl.syntax import ast
from freezedsl.syntax.printer import format_selector


@dataclass(frozen=True)
class TypeContainer:
    """One type atom that matched both layers and containers of other layers."""

    atom: ast.TypeName | ast.TypeRegex
    message: str
    hint: str


def _owns(index: ModelIndex, j: int) -> bool:
    return index.param_start[j] < index.param_start[j + 1]


def type_containers(ev: Evaluator) -> list[TypeContainer]:
    """The type atoms evaluated so far (``ev.type_refs``) that mix layers and containers."""
    index = ev.index
    out: list[TypeContainer] = []
    for atom, refs in ev.type_refs.values():
        if isinstance(atom, ast.TypeName) and (atom.name == NORM or atom.name in PEFT_TYPE_SETS):
            continue  # built-in sets: norm layers never match containers; PEFT sets name tensors
        refs = [j for j in refs if j >= 0]
        matched = set(refs)
        layers: list[int] = []
        containers: list[tuple[int, int]] = []  # (container, a parameterised layer inside it it does not match)
        for j in refs:
            inner = next(
                (d for d in range(j + 1, index.module_end[j]) if d not in matched and _owns(index, d)), None
            )
            if inner is not None:
                containers.append((j, inner))
            elif _owns(index, j):
                layers.append(j)
        if not layers or not containers:
            continue
        cls = sorted({index.classes(j)[0] for j, _ in containers})
        inner_cls = sorted({index.classes(d)[0] for _, d in containers})
        layer_cls = sorted({index.classes(j)[0] for j in layers})
        first, first_inner = containers[0]
        text = format_selector(atom)
        message = (
            f"{text} matches {len(containers)} container modules ({', '.join(cls[:3])}, e.g. "
            f"{index.module_paths[first]}) that hold other layers with parameters "
            f"({', '.join(inner_cls[:3])}, e.g. {index.module_paths[first_inner]}), besides "
            f"{len(layers)} layers ({', '.join(layer_cls[:3])}); a matched module counts with all its parameters"
        )
        if all(_NORM_CLASS.search(c) for c in layer_cls):
            hint = "use type=norm for normalization layers alone"
        else:
            hint = f'anchor the class name (type~"^{layer_cls[0]}$" or type={layer_cls[0]}) to select only the layers'
        out.append(TypeContainer(atom, message, hint))
    return out
