"""Load and save models without running code the user did not agree to run.

A MODEL on the command line is one of: an architecture ``package.module:callable``
(imported and called, like ``python -c``), a state dict or checkpoint file (needs
``--arch``), a Hugging Face ``save_pretrained`` folder or ``.safetensors`` file
(:mod:`freezedsl.loaders.hffiles`), a pickled ``nn.Module`` or a TorchScript archive. The last two run code
from the file when loaded, so both need ``trust_pickle=True`` (``--trust-pickle``).
A MODEL that exists as a path, a dangling symlink included, is always a file.

Files are classified by their bytes (:mod:`freezedsl.loaders.kinds`) and read with
``torch.load(weights_only=True)`` after a scan of the pickle's opcodes that bounds the
time and memory unpickling may take (:mod:`freezedsl.loaders.unpickle`). Every failure
is a one-line :class:`ModelLoadError` or :class:`UsageError` naming the file; torch's
multi-paragraph messages and warnings never leak. Saving writes the same kind that was
loaded (:mod:`freezedsl.loaders.writing`), atomically.

Other formats plug in through :func:`register_format`: a handler is asked first about
every existing path (files and folders) and either loads it or declines with ``None``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from freezedsl.errors import ModelLoadError, UsageError
from freezedsl.fsutil import atomic_write
from freezedsl.loaders.arch import build_arch, is_arch_spec
from freezedsl.loaders.base import (
    MANIFEST_KEY,
    STATE_DICT_KEYS,
    TORCHSCRIPT_MANIFEST,
    LoadedModel,
    canonical_name,
    exc_text,
    listed,
    quiet,
    sidecar_path,
)
from freezedsl.loaders.hfconfig import split_hf_arch
from freezedsl.loaders.hffiles import build_and_fit, load_hf
from freezedsl.loaders.kinds import check_model_path, sniff
from freezedsl.loaders.statedict import common_prefix, describe, load_state, split_checkpoint
from freezedsl.loaders.unpickle import PickledObject, load_trusted, load_weights_only
from freezedsl.loaders.writing import save_model

__all__ = [
    "MANIFEST_KEY",
    "STATE_DICT_KEYS",
    "LoadOptions",
    "LoadedModel",
    "atomic_write",
    "build_arch",
    "canonical_name",
    "load_model",
    "register_format",
    "save_model",
    "sidecar_path",
]

@dataclass(frozen=True)
class LoadOptions:
    """What :func:`load_model` was asked, as a format handler sees it."""

    arch: str | None
    trust_pickle: bool
    meta: bool | None
    map_location: str
    apply_manifest: bool
    config: str | None = None  # --model-config: a Hugging Face config.json for a .safetensors file


#: Format handlers, asked in order about every existing MODEL path (see module doc).
FormatHandler = Callable[[str, LoadOptions], "LoadedModel | None"]
_HANDLERS: list[FormatHandler] = []


def register_format(handler: FormatHandler) -> FormatHandler:
    """Add a loader for another file or folder format (usable as a decorator)."""
    if handler not in _HANDLERS:
        _HANDLERS.append(handler)
    return handler


def load_model(
    spec: str,
    *,
    arch: str | None = None,
    trust_pickle: bool = False,
    meta: bool | None = None,
    map_location: str = "cpu",
    apply_manifest: bool = True,
    config: str | None = None,
) -> LoadedModel:
    """Load MODEL (an architecture or a file) without running untrusted code.

    ``map_location`` is the device files are loaded onto and real (non-meta)
    architectures are built on. ``trust_pickle`` allows the two kinds of file that run code when loaded: a whole
    pickled module and a TorchScript archive. ``meta``: for an architecture spec, build
    on the meta device (``None`` means yes). For a state dict file ``True`` checks that
    the weights fit but keeps the module on meta; ``None``/``False`` load the weights.
    Pickles and TorchScript always carry their weights. ``apply_manifest`` restores
    requires_grad from a manifest stored in or beside the file, because a state dict
    cannot carry it. ``config`` (``--model-config``) is the Hugging Face config.json
    that describes the model of a bare ``.safetensors`` file or a state dict file.
    """
    if is_arch_spec(spec):
        if config is not None:
            raise UsageError(
                f"--model-config is only used with a .safetensors or state dict file; '{spec}' is an architecture"
            )
        if arch is not None:
            raise UsageError(
                f"--arch is only used with a state dict file; '{spec}' is already an "
                "architecture, pass it alone"
            )
        _check_device(map_location)
        notes: list[str] = []
        device = None if map_location == "cpu" else map_location
        module = build_arch(spec, meta=meta is not False, device=device, notes=notes)
        _check_initialized(module, spec)
        on_meta = any(p.is_meta for p in module.parameters())
        loaded = LoadedModel(module, "arch", spec, spec, on_meta)
        loaded.notes.extend(notes)
        return loaded

    path = spec
    _check_device(map_location)
    check_model_path(path)
    options = LoadOptions(arch, trust_pickle, meta, map_location, apply_manifest, config)
    for handler in _HANDLERS:  # the one place other formats (folders, safetensors) plug in
        handled = handler(path, options)
        if handled is not None:
            return handled
    loaded = _load_torch_file(path, options)
    _check_initialized(loaded.module, path)
    return loaded


register_format(load_hf)  # save_pretrained folders and .safetensors files


def _load_torch_file(path: str, options: LoadOptions) -> LoadedModel:
    fmt = sniff(path)
    arch = options.arch
    if options.config is not None and fmt == "torchscript":
        raise UsageError(
            f"--model-config is used with a state dict or .safetensors file; {path} is a "
            "TorchScript archive that carries its own architecture"
        )
    if fmt == "torchscript":
        if arch is not None:
            raise UsageError(
                f"--arch is only used with a state dict; {path} is a TorchScript archive "
                "that carries its own architecture"
            )
        if not options.trust_pickle:
            raise _code_refused(path, "a TorchScript archive: loading it runs the TorchScript code and "
                                "pickled objects it contains (torch's weights_only loader refuses "
                                "these files for the same reason)")
        return _load_torchscript(path, options.map_location, options.apply_manifest)

    try:
        obj = load_weights_only(path, fmt, options.map_location)
    except PickledObject as found:
        if not options.trust_pickle:
            raise _code_refused(path, f"a pickled Python object (it references {found.global_name}); "
                                "unpickling it can run arbitrary code") from None
        obj = load_trusted(path, options.map_location)
        loaded = _as_pickled_module(obj, path)
        if loaded is not None:
            if arch is not None or options.config is not None:
                raise UsageError(
                    f"--arch is only used with a state dict; {path} holds a pickled "
                    f"{type(loaded.module).__name__} that carries its own architecture"
                ) from None
            if options.apply_manifest and loaded.manifest is not None:
                _apply(loaded.module, loaded.manifest, path)
            return loaded
        # A trusted checkpoint that only needed pickle for its extras (an argparse
        # Namespace, numpy arrays...): continue as a state dict.

    state, extra, manifest, key = split_checkpoint(obj, path)
    if arch is None and options.config is None:
        raise ModelLoadError(
            f"{path} holds a state dict ({len(state)} tensors) but no architecture; pass "
            "--arch package.module:callable (e.g. torchvision.models:resnet18)"
        )
    prefix = common_prefix(state)
    if key is None and manifest is None:
        from freezedsl.manifest import sidecar_manifest

        manifest = sidecar_manifest(path)
    on_meta = options.meta is True
    notes: list[str] = []
    if options.config is not None or split_hf_arch(arch)[0]:  # a transformers class from a config.json
        module, arch = build_and_fit(state, path, arch, options.config, meta=on_meta)
    else:
        assert arch is not None
        module = load_state(state, path, arch, meta=on_meta, notes=notes)
    if options.apply_manifest and manifest is not None:
        _apply(module, manifest, path)
    on_meta = on_meta and any(p.is_meta for p in module.parameters())
    return LoadedModel(module, "state_dict", path, arch, on_meta, extra, manifest, key, prefix, notes)


def _code_refused(path: str, what: str) -> ModelLoadError:
    return ModelLoadError(
        f"{path} is {what}. Pass --trust-pickle only if you trust where "
        "the file came from, or save a state dict (torch.save(model.state_dict(), ...)) and "
        "pass --arch."
    )


def _check_device(map_location: str) -> None:
    try:
        device = torch.device(map_location)
    except (RuntimeError, TypeError, ValueError):
        raise UsageError(
            f"device '{map_location}' (--device, map_location) is not a device; expected e.g. 'cpu' or 'cuda:0'"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            f"device '{map_location}' (--device, map_location) needs CUDA, which this machine "
            "does not have; use cpu"
        )


def _check_initialized(module: nn.Module, source: str) -> None:
    """Lazy modules (``nn.LazyLinear``) have no shapes until their first forward pass."""
    try:
        lazy = [n for n, p in module.named_parameters() if isinstance(p, nn.parameter.UninitializedParameter)]
    except Exception as exc:  # noqa: BLE001 - a model whose parameters() raises
        raise ModelLoadError(f"{source}: listing the model's parameters failed: {exc_text(exc)}") from None
    if lazy:
        raise ModelLoadError(
            f"{source} has {len(lazy)} uninitialized lazy parameter(s) ({listed(lazy)}); run one "
            "forward pass (or build the non-lazy layer, e.g. nn.Linear for nn.LazyLinear) so they "
            "have shapes, then save it again"
        )


def _apply(module: nn.Module, manifest: dict[str, Any], path: str) -> None:
    from freezedsl.manifest import apply_manifest

    try:
        apply_manifest(module, manifest, strict=True)
    except ModelLoadError as exc:
        raise ModelLoadError(f"{path}: the stored freeze manifest does not fit: {exc}") from None


def _as_pickled_module(obj: object, path: str) -> LoadedModel | None:
    if isinstance(obj, nn.Module):
        return LoadedModel(obj, "pickle", path, None, False)
    if isinstance(obj, Mapping):
        for key in STATE_DICT_KEYS:
            if isinstance(obj.get(key), nn.Module):
                manifest = obj.get(MANIFEST_KEY)
                extra = {k: v for k, v in obj.items() if k not in (key, MANIFEST_KEY)}
                return LoadedModel(
                    obj[key],
                    "pickle",
                    path,
                    None,
                    False,
                    extra,
                    manifest if isinstance(manifest, dict) else None,
                    key,
                )
        return None  # maybe a checkpoint that pickled only its extras; check as one
    raise ModelLoadError(
        f"{path} holds {describe(obj)}, not a model; expected a pickled nn.Module, a "
        "checkpoint with one under 'model', or a state dict"
    )


def _load_torchscript(path: str, map_location: str, apply_manifest: bool) -> LoadedModel:
    files: dict[str, Any] = {TORCHSCRIPT_MANIFEST: ""}
    try:
        with quiet():
            module = torch.jit.load(path, map_location=map_location, _extra_files=files)
    except Exception as exc:  # noqa: BLE001 - jit raises many unrelated types
        raise ModelLoadError(
            f"{path} is a TorchScript archive that cannot be loaded: {exc_text(exc)}"
        ) from None
    manifest: dict[str, Any] | None = None
    raw = files.get(TORCHSCRIPT_MANIFEST)
    if raw:
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError):
            raise ModelLoadError(
                f"{path} has a {TORCHSCRIPT_MANIFEST} that is not valid JSON (or nests too "
                "deeply); save it again"
            ) from None
        if not isinstance(parsed, dict):
            raise ModelLoadError(
                f"{path} has a {TORCHSCRIPT_MANIFEST} that is a JSON {type(parsed).__name__}, "
                "not an object; save it again"
            )
        manifest = parsed
    if apply_manifest and manifest is not None:
        _apply(module, manifest, path)
    return LoadedModel(module, "torchscript", path, None, False, {}, manifest)
