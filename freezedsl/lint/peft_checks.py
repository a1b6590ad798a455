"""FZ350-FZ351: PEFT adapters that train what they should not, or learn nothing.

peft (LoRA, IA3, ...) wraps a layer in a tuner layer that moves the original module to
``base_layer`` and adds small adapter tensors (``lora_A``/``lora_B``, ``ia3_l``) that
are the only thing meant to train. Freezing rules written against the bare model can
undo that in two directions: unfreezing a block also unfreezes the base weights under
its adapters (FZ350), and ``freeze all except head`` freezes the adapters that were
about to learn (FZ351).

Everything is recognised by class name (``BaseTunerLayer``, ``ModulesToSaveWrapper``):
peft is never imported, so a model without it costs one pass over ``named_modules()``.
Both checks read state only. ``check_adapters`` is the entry point; the runtime model
checks (run mode, :func:`freezedsl.lint.check`) and ``lint --model`` call it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from freezedsl.lint.registry import Diagnostic, Rule, Severity, diag, register
from freezedsl.planning.wrappers import PEFT_LAYER, PEFT_SAVED, active_adapters

__all__ = ["ADAPTER_FROZEN", "BASE_TRAINABLE", "check_adapters"]

BASE_TRAINABLE = register(
    Rule(
        "FZ350",
        "peft-base-weight-trainable",
        Severity.WARNING,
        "A weight under a PEFT adapter (its base_layer) is trainable.",
        what="""
Finds peft tuner layers (LoRA, IA3, ... : classes derived from peft's
``BaseTunerLayer``) with an active, unmerged adapter whose ``base_layer`` has a
trainable parameter other than a bias (peft's ``bias="all"``/``"lora_only"`` trains
biases on purpose). Layers inside a ``modules_to_save`` copy are skipped: those copies
train whole by design. One finding per layer.
""",
        why="""
The adapter exists so that the base weight stays fixed: training both costs the memory
and optimizer state of full fine-tuning and the saved adapter (``save_pretrained``)
does not contain the changed base weight, so the result cannot be reloaded. It usually
comes from a rule written against the bare model (``unfreeze encoder.layer[-2:]``)
that reaches the ``base_layer`` under the adapters, or ``model.requires_grad_(True)``
after ``get_peft_model``.
""",
        example="""
model = get_peft_model(bert, LoraConfig(target_modules=["query", "value"]))
model.base_model.model.bert.encoder.layer[-1].requires_grad_(True)
""",
        use_instead="""
# train the adapters and list whole modules to train in modules_to_save:
model = get_peft_model(bert, LoraConfig(target_modules=["query", "value"],
                                        modules_to_save=["classifier"]))
# or, in the freezedsl rules: unfreeze encoder.layer[-1] except **.base_layer
""",
    )
)

ADAPTER_FROZEN = register(
    Rule(
        "FZ351",
        "peft-adapter-frozen",
        Severity.WARNING,
        "A PEFT adapter is frozen while the model trains, so it never learns.",
        what="""
Looks at the active adapter of every unmerged peft tuner layer of a model in training
mode (``model.train()``). An adapter is *at its initial value* in a layer where it
computes nothing yet: LoRA's ``lora_B`` (and ``lora_embedding_B``) all zero, IA3's
``ia3_l`` all one. Fires when

* every tensor of the adapter, in every layer, has ``requires_grad=False`` and the
  adapter is at its initial value somewhere, or nothing in the model trains at all
  (one finding per adapter name), or
* the adapter trains in some layers but is frozen at its initial value in others (one
  finding per adapter, naming the first such layer).

Inactive adapters of a multi-adapter model (peft freezes them), merged layers and
models in ``eval()`` mode are skipped. A trained adapter (``lora_B`` not zero) kept
frozen, in part or whole, while something else trains is a deliberate choice and is not
reported; on the meta device values cannot be read, so only the "nothing trains" case
is.
""",
        why="""
A frozen adapter receives no update: with the whole adapter frozen the run trains only
what else is unfrozen (or nothing), and an adapter frozen at its initialisation adds
compute to every forward pass for an output change of exactly zero. The usual causes
are ``PeftModel.from_pretrained`` without ``is_trainable=True`` (it loads adapters
frozen), and a rule such as ``freeze all except classifier`` applied after
``get_peft_model``.
""",
        example="""
model = get_peft_model(bert, LoraConfig(target_modules=["query", "value"]))
freezedsl.apply(model, "freeze all\\nunfreeze classifier")
""",
        use_instead="""
model = get_peft_model(bert, LoraConfig(target_modules=["query", "value"]))
freezedsl.apply(model, "freeze all except type=adapter\\nunfreeze classifier")
# loading: PeftModel.from_pretrained(base, path, is_trainable=True)
""",
    )
)

#: Adapter containers whose initial value makes the adapter's output change zero, and it.
_NO_OP_AT = {"lora_B": 0.0, "lora_embedding_B": 0.0, "ia3_l": 1.0}


def _classes(module: Any) -> tuple[str, ...]:
    return tuple(c.__name__ for c in type(module).__mro__)


def _tuner_layers(model: Any) -> Iterator[tuple[str, Any]]:
    """(name, layer) of every peft tuner layer, skipping those inside modules_to_save copies."""
    copies: list[str] = []
    for name, module in model.named_modules():
        if any(name.startswith(c) for c in copies):
            continue
        classes = _classes(module)
        if PEFT_SAVED in classes:
            copies.append(f"{name}.modules_to_save." if name else "modules_to_save.")
        elif PEFT_LAYER in classes and not getattr(module, "merged", False):
            yield name, module


def _adapter_entries(layer: Any, adapter: str) -> list[tuple[str, list[Any]]]:
    """(container name, tensors) of ``adapter`` in each of the layer's adapter containers."""
    out: list[tuple[str, list[Any]]] = []
    names = getattr(layer, "adapter_layer_names", ())
    for attr in names if isinstance(names, (tuple, list)) else ():
        container = layer._modules.get(attr)
        if container is None:
            continue
        module = container._modules.get(adapter)
        if module is not None:
            out.append((attr, list(module.parameters())))
        elif container._parameters.get(adapter) is not None:
            out.append((attr, [container._parameters[adapter]]))
    return [(attr, tensors) for attr, tensors in out if tensors]


def _at_initial_value(attr: str, tensors: list[Any]) -> bool:
    """The container still holds peft's no-op initialisation (readable tensors only)."""
    value = _NO_OP_AT.get(attr)
    if value is None or any(t.device.type == "meta" for t in tensors):
        return False
    return all(bool(t.detach().eq(value).all()) for t in tensors)


def check_adapters(
    model: Any,
    *,
    path: str = "<runtime>",
    rename: Callable[[str], str] | None = None,
    requires_grad: Callable[[Any], bool] | None = None,
) -> list[Diagnostic]:
    """FZ350 and FZ351 for ``model`` (a PeftModel, or any module holding peft layers).

    ``rename`` turns a module name relative to ``model`` into the name to report;
    ``requires_grad`` overrides each tensor's flag (``lint --model`` checks the state
    a rule file *would* leave). Models without peft layers give no finding.
    """
    show = rename or (lambda name: name or "<model>")
    trains = requires_grad or (lambda p: bool(p.requires_grad))
    out: list[Diagnostic] = []
    frozen_at_init: dict[str, list[tuple[str, str]]] = {}
    adapter_state: dict[str, list[bool]] = {}  # adapter -> requires_grad of its tensors
    training = False
    for name, layer in _tuner_layers(model):
        active = active_adapters(layer)
        if not active:
            continue
        base = layer._modules.get("base_layer")
        if base is not None:
            hot = [n for n, p in base.named_parameters() if trains(p) and n.rsplit(".", 1)[-1] != "bias"]
            if hot:
                shown = show(name)
                out.append(
                    diag(
                        BASE_TRAINABLE,
                        f"{shown}.base_layer.{hot[0]} is trainable under the active adapter "
                        f"{active[0]!r} of {type(layer).__name__} {shown}: the adapter is there so that "
                        "this weight stays frozen, and save_pretrained does not save it; freeze it "
                        "(`freeze **.base_layer` after the rules that unfreeze it), or train the whole "
                        "module through the peft config's modules_to_save",
                        path,
                        obj=shown,
                        extra={"tensors": [f"{shown}.base_layer.{n}" for n in hot]},
                    )
                )
        training = training or bool(getattr(layer, "training", False))
        for adapter in active:
            for attr, tensors in _adapter_entries(layer, adapter):
                flags = [trains(t) for t in tensors]
                adapter_state.setdefault(adapter, []).extend(flags)
                if not any(flags) and getattr(layer, "training", False) and _at_initial_value(attr, tensors):
                    frozen_at_init.setdefault(adapter, []).append((name, attr))
    if not training:
        return out
    nothing_trains = not any(trains(p) for p in model.parameters())
    for adapter, flags in adapter_state.items():
        # Wholly frozen: a mistake when it has not learned yet (frozen_at_init) or when
        # nothing trains at all (from_pretrained without is_trainable); a trained adapter
        # kept fixed while a head trains is a choice.
        if not any(flags) and (adapter in frozen_at_init or nothing_trains):
            out.append(
                diag(
                    ADAPTER_FROZEN,
                    f"adapter {adapter!r} is frozen: none of its {len(flags)} tensors requires grad while "
                    "the model is in training mode, so it never learns; unfreeze it (`unfreeze type=adapter`; "
                    "PeftModel.from_pretrained needs is_trainable=True to load it trainable)",
                    path,
                    obj=adapter,
                )
            )
        elif adapter in frozen_at_init and any(flags):
            layers = frozen_at_init[adapter]
            first = show(f"{layers[0][0]}.{layers[0][1]}.{adapter}")
            out.append(
                diag(
                    ADAPTER_FROZEN,
                    f"adapter {adapter!r} is frozen at its initial value in {len(layers)} "
                    f"layer{'s' if len(layers) != 1 else ''} (first: {first}), where its output change is "
                    "exactly zero and stays so: it only costs compute; unfreeze it there, or leave those "
                    "layers out of the adapter (LoraConfig target_modules / layers_to_transform)",
                    path,
                    obj=first,
                    extra={"layers": [show(n) for n, _ in layers]},
                )
            )
    return out
