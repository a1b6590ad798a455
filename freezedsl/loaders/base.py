"""What every loader shares: the loaded-model record, key names and one-line messages."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

from freezedsl.safetext import printable

#: Checkpoint entries that may hold the model's weights, in the order they are tried.
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module")
#: Checkpoint entry that holds a freezedsl manifest (see :mod:`freezedsl.manifest`).
MANIFEST_KEY = "freezedsl_manifest"
#: Name of the manifest inside a TorchScript archive (``_extra_files``).
TORCHSCRIPT_MANIFEST = "freezedsl_manifest.json"
#: Suffix of the manifest written beside a bare state dict (``OUT.freeze.json``).
SIDECAR_SUFFIX = ".freeze.json"
#: Names listed in one message before ", ...".
MAX_LISTED = 3

_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_INNER_WRAPPERS = ("._orig_mod.", "._checkpoint_wrapped_module.", "._fsdp_wrapped_module.")

#: ``hf_folder``: a save_pretrained folder; ``safetensors``: a bare .safetensors file
#: (:mod:`freezedsl.loaders.hffiles`).
Kind = Literal["pickle", "state_dict", "torchscript", "arch", "hf_folder", "safetensors"]


@dataclass
class LoadedModel:
    """A model plus what is needed to write it back in the form it came in."""

    module: nn.Module
    kind: Kind
    source: str  # the spec/path as given
    arch: str | None
    on_meta: bool
    extra: dict[str, object] = field(default_factory=dict)  # other checkpoint entries
    manifest: dict[str, Any] | None = None  # a freezedsl manifest found in the file
    # Checkpoint entry the weights (or pickled module) came from; None for a bare
    # state dict or module. Saving reuses it so training scripts keep finding them.
    checkpoint_key: str | None = None
    # Wrapper prefix (``module.``) every key of the state dict carried; saving puts it
    # back so the output loads exactly where the input did.
    key_prefix: str = ""
    # Things the user should know about how the model was obtained (a meta build that
    # fell back to CPU, a download avoided); the CLI prints each as a "note:" line.
    notes: list[str] = field(default_factory=list)
    # How a Hugging Face folder or .safetensors file stored its weights (files, keys,
    # metadata), so saving writes them the same way; None for the other kinds.
    layout: Any = None


def sidecar_path(out: str | os.PathLike[str]) -> str:
    """Where the freeze manifest of the bare state dict ``out`` is kept."""
    return os.fspath(out) + SIDECAR_SUFFIX


def canonical_name(name: str) -> str:
    """Drop wrapper segments: DDP (``module.``), ``torch.compile`` (``_orig_mod.``),
    activation checkpointing (``_checkpoint_wrapped_module.``) and FSDP1
    (``_fsdp_wrapped_module.``), the same levels the planner treats as transparent.

    Wrapped models save the same weights under longer names; comparing canonical names
    lets a checkpoint or manifest from a wrapped model fit the plain one and back.
    """
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix) :]
                changed = True
    for inner in _INNER_WRAPPERS:  # compiled, checkpoint-wrapped or FSDP1-wrapped blocks
        if name.startswith(inner[1:]):
            name = name[len(inner) - 1 :]
        while inner in name:
            name = name.replace(inner, ".")
    return name


def one_line(text: object, limit: int = 300) -> str:
    """Squash an exception text into one short, printable line for an error message."""
    flat = printable(" ".join(str(text).split()))
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def exc_text(exc: BaseException) -> str:
    text = one_line(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def listed(names: list[str]) -> str:
    shown = ", ".join(printable(n) for n in names[:MAX_LISTED])
    return shown + (", ..." if len(names) > MAX_LISTED else "")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Hide torch's warnings (jit deprecation, lossy casts): the CLI speaks for itself,
    and a loss that matters is refused with its own error instead."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
