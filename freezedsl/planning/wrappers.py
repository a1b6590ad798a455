"""Wrapper levels that rules see through, so the bare model's names apply.

Three kinds, all recognised by class name (nothing is imported: torch's DDP, timm or
peft need not be installed to plan, and must not be imported to plan):

* **Outer wrappers** (:func:`unwrap`): ``DistributedDataParallel``/``DataParallel``
  (``module``) and ``torch.compile``'s ``OptimizedModule`` (``_orig_mod``) are peeled
  before indexing; the index's names are then the bare model's (no ``module.``).
* **Inner wrappers** (:data:`TRANSPARENT_CHILDREN`): activation checkpointing, FSDP1
  units and compiled submodules sit inside the tree; the walk leaves their segment out
  of every name, so ``blocks.0.attn`` still names a checkpoint-wrapped block's part.
* **PEFT levels** (:func:`peft_levels`): ``PeftModel.base_model`` (LoraModel,
  IA3Model, ...), its ``.model`` (the wrapped transformers model), the ``base_layer``
  that peft's LoRA/IA3 layers move the original weights into, and a
  ``ModulesToSaveWrapper``'s trainable copy. Unlike the two kinds above, these keep
  their real names (``plan --explain`` shows what ``named_parameters()`` lists) and
  can still be written out in full; paths merely look through them, so
  ``encoder.layer[:6]`` and ``query.weight`` mean on a PeftModel what they mean on the
  bare model. A ``ModulesToSaveWrapper``'s ``original_module`` (and any inactive
  copy) is *hidden*: no path reaches it except one that names it, so
  ``unfreeze classifier`` trains the copy that the forward pass uses, not the frozen
  original beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from freezedsl.planning.classes import class_info_of

if TYPE_CHECKING:
    from freezedsl.planning.index import ModelIndex

TRANSPARENT_CHILDREN = frozenset({"_checkpoint_wrapped_module", "_fsdp_wrapped_module", "_orig_mod"})

WRAPPER_ATTRS = {
    "DistributedDataParallel": "module",
    "DataParallel": "module",
    "OptimizedModule": "_orig_mod",  # torch.compile
}


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


# --------------------------------------------------------------------------- PEFT

#: peft's classes by the name of a class or base class, and the child each looks through.
PEFT_SEE_THROUGH = {
    "PeftModel": "base_model",  # PeftModelForCausalLM, ... -> LoraModel, IA3Model, ...
    "PeftMixedModel": "base_model",
    "BaseTuner": "model",  # LoraModel, IA3Model, ... -> the transformers model
    "BaseTunerLayer": "base_layer",  # lora.Linear, ia3.Linear, ... -> the original nn.Linear
}
PEFT_LAYER = "BaseTunerLayer"
PEFT_SAVED = "ModulesToSaveWrapper"
_PEFT_CLASSES = frozenset((*PEFT_SEE_THROUGH, PEFT_SAVED))

#: Built-in ``type=`` sets for PEFT models (lower case, like ``type=norm``).
ADAPTER = "adapter"
MODULES_TO_SAVE = "modules_to_save"
PEFT_TYPE_SETS = (ADAPTER, MODULES_TO_SAVE)


def _direct(j: int, end: Sequence[int]) -> list[int]:
    """Module ``j``'s direct submodules in the pre-order lists."""
    out: list[int] = []
    k = j + 1
    while k < end[j]:
        out.append(k)
        k = end[k]
    return out


def active_adapters(module: Any) -> list[str]:
    """peft's ``active_adapters`` of a layer or wrapper, [] when adapters are disabled."""
    try:
        if getattr(module, "_disable_adapters", False) is True:
            return []
        active = module.active_adapters
    except Exception:  # noqa: BLE001 - a half-set-up layer: treat as no adapter active
        return []
    return [active] if isinstance(active, str) else [a for a in active if isinstance(a, str)]


def peft_levels(modules: Sequence[Any], segs: Sequence[str], end: Sequence[int]) -> tuple[list[int], list[int]]:
    """(see-through levels, hidden modules) of a model with PEFT wrappers; ([], []) otherwise.

    One class test per distinct class, so a model without peft pays one ``set`` of
    its module types.
    """
    peft_types = {cls for cls in set(map(type, modules)) if _PEFT_CLASSES.intersection(class_info_of(cls)[0])}
    if not peft_types:
        return [], []
    through: list[int] = []
    hidden: list[int] = []
    for j, module in enumerate(modules):
        if type(module) not in peft_types:
            continue
        classes = class_info_of(type(module))[0]
        kids = {segs[k]: k for k in _direct(j, end)}
        for cls, attr in PEFT_SEE_THROUGH.items():
            if cls in classes and attr in kids:
                through.append(kids[attr])
        if PEFT_SAVED in classes and "modules_to_save" in kids:
            copies = {segs[k]: k for k in _direct(kids["modules_to_save"], end)}
            active = next((a for a in active_adapters(module) if a in copies), None)
            if active is None:  # the forward pass uses the original
                hidden.append(kids["modules_to_save"])
                if "original_module" in kids:
                    through.append(kids["original_module"])
                continue
            through += [kids["modules_to_save"], copies[active]]
            hidden += [k for name, k in copies.items() if name != active]
            if "original_module" in kids:
                hidden.append(kids["original_module"])
    return through, hidden


def peft_set_refs(index: ModelIndex, name: str) -> list[int]:
    """Refs of ``type=adapter`` / ``type=modules_to_save``: the active adapters' parts.

    ``adapter``: under every peft tuner layer, the entries for its active adapters of
    the containers peft lists in the layer's ``adapter_layer_names`` (LoRA's
    ``lora_A``/``lora_B``/``lora_embedding_*``/``lora_magnitude_vector``, IA3's
    ``ia3_l``, ...). ``modules_to_save``: each ``ModulesToSaveWrapper``'s active copy.
    Inactive adapters are left out: peft keeps them frozen, and a rule about "the
    adapters" means the ones that train.
    """
    wanted = PEFT_LAYER if name == ADAPTER else PEFT_SAVED
    out: list[int] = []
    for j in index.class_matches(lambda classes, _q: wanted in classes):
        module = index.module_objects[j]
        active = active_adapters(module)
        containers = getattr(module, "adapter_layer_names", ()) if name == ADAPTER else ("modules_to_save",)
        for attr in containers if isinstance(containers, (tuple, list)) else ():
            c = index.direct_child(j, attr)
            if c is None:
                continue
            if c < 0:  # a bare parameter, not a container: the whole of it
                out.append(c)
                continue
            out += [r for r in (index.direct_child(c, a) for a in active) if r is not None]
    return sorted(set(out))


def view_paths(paths: Sequence[str], segs: Sequence[str], end: Sequence[int], skip: Callable[[int], bool]) -> list[str]:
    """Module paths with the segments of see-through levels (``skip``) left out."""
    out = [""] * len(paths)
    stack: list[int] = []
    for j in range(len(paths)):
        while stack and j >= end[stack[-1]]:
            stack.pop()
        parent = out[stack[-1]] if stack else ""
        if not stack or skip(j):
            out[j] = parent
        else:
            out[j] = f"{parent}.{segs[j]}" if parent else segs[j]
        stack.append(j)
    return out
