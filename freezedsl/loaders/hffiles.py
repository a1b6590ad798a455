"""Hugging Face files as MODEL: ``save_pretrained`` folders and bare ``.safetensors`` files.

A folder holds ``config.json`` and its weights as ``model.safetensors``, as shards
listed by ``model.safetensors.index.json``, or as ``pytorch_model.bin`` (or its shards
and ``pytorch_model.bin.index.json``), which is read with the same bounded
``torch.load(weights_only=True)`` as any state dict. The architecture is the class the
config names, from the installed transformers (:mod:`.hfconfig`); ``--arch`` builds it
another way. A bare ``.safetensors`` file needs ``--arch`` (any architecture string,
or ``transformers:ClassName`` with ``--model-config config.json``) or just
``--model-config``.

The weights are fitted exactly like a state dict's (:mod:`.statedict`: every key,
shape and dtype checked first, then copied, so tied weights stay tied); each tensor
keeps the dtype its file stores it in. Every file read must be a regular file inside
the folder: a symlink that leaves it is refused (a hostile folder could otherwise make
``apply -o`` copy ``~/.ssh/id_rsa`` into its output), except the links of a
Hugging Face cache snapshot into its repository's ``blobs`` folder.

Nothing here imports transformers or safetensors until such a file is given.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from freezedsl.errors import ModelLoadError, UsageError
from freezedsl.fsutil import unreadable_reason
from freezedsl.loaders.base import TORCHSCRIPT_MANIFEST, LoadedModel, one_line

if TYPE_CHECKING:
    from freezedsl.loaders.stfiles import StFile
    from freezedsl.loading import LoadOptions

#: The freeze manifest inside a written folder (the name TorchScript archives use too).
FOLDER_MANIFEST = TORCHSCRIPT_MANIFEST
CONFIG = "config.json"
ST_INDEX = "model.safetensors.index.json"
ST_SINGLE = "model.safetensors"
BIN_INDEX = "pytorch_model.bin.index.json"
BIN_SINGLE = "pytorch_model.bin"
WEIGHT_NAMES = (ST_INDEX, ST_SINGLE, BIN_INDEX, BIN_SINGLE)
MAX_INDEX_BYTES = 64 << 20


@dataclass
class HfLayout:
    """How the weights were stored, so ``apply -o`` writes them the same way."""

    folder: str | None  # the input folder; None for a bare .safetensors file
    files: list[StFile]  # weight files in order, named as the output names them
    index_name: str | None = None  # "model.safetensors.index.json" for shards
    index_metadata: dict[str, Any] | None = None
    copied: list[str] = field(default_factory=list)  # the folder's other files, copied as they are
    # transformers renamed or fused the stored tensors while loading (see
    # hfconfig.from_pretrained): written back by save_pretrained, which reverses that.
    converted: bool = False


def looks_like_safetensors(path: str) -> bool:
    """A safetensors file starts with an 8-byte little-endian header length and ``{``."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 1 << 30


def is_hf_folder(path: str) -> bool:
    """A folder with a config.json or safetensors weights (a folder holding only
    ``pytorch_model.bin`` is an ordinary folder: pass its file with --arch)."""
    return os.path.isdir(path) and any(
        os.path.lexists(os.path.join(path, name)) for name in (CONFIG, ST_INDEX, ST_SINGLE)
    )


def load_hf(path: str, options: LoadOptions) -> LoadedModel | None:
    """The :func:`freezedsl.loading.register_format` handler for Hugging Face files."""
    config = getattr(options, "config", None)
    if os.path.isdir(path):
        if not is_hf_folder(path):
            return None
        if config is not None:
            raise UsageError(
                f"--model-config is for a bare .safetensors file; {path} is a model folder, "
                f"which has its own {CONFIG}"
            )
        return _load_folder(path, options)
    if not looks_like_safetensors(path):
        return None  # a torch.save file: --model-config works there too (build_and_fit)
    return _load_file(path, options, config)


# ------------------------------------------------------------------ paths


def _allowed_roots(folder: str) -> list[str]:
    real = os.path.realpath(folder)
    roots = [real]
    parent = os.path.dirname(real)
    if os.path.basename(parent) == "snapshots":  # huggingface_hub cache: links into ../../blobs
        roots.append(os.path.join(os.path.dirname(parent), "blobs"))
    return roots


def _member(folder: str, name: str, roots: list[str]) -> str:
    """``folder/name`` if it is a regular file inside the folder; one-line error otherwise."""
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        dangling = " (a dangling symlink)" if os.path.lexists(path) else ""
        raise ModelLoadError(f"{path} does not exist{dangling}; the model folder is incomplete (copy it again)")
    real = os.path.realpath(path)
    if not any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots):
        raise ModelLoadError(
            f"{path} is a symlink to {one_line(real)}, outside the model folder; freezedsl reads "
            "(and apply -o copies) only files inside it: copy the file into the folder"
        )
    reason = unreadable_reason(path)
    if reason:
        raise ModelLoadError(f"{path} {reason}")
    return path


def _shard_name(name: object, index: str, suffix: str) -> str:
    if (
        not isinstance(name, str)
        or not name.endswith(suffix)
        or name != os.path.basename(name)
        or name in (".", "..")
        or (os.altsep and os.altsep in name)
    ):
        raise ModelLoadError(
            f"{index} lists the weight file {one_line(repr(name))}; expected a {suffix} file name "
            "in the same folder"
        )
    return name


def _read_index(path: str, suffix: str) -> tuple[dict[str, str], dict[str, Any] | None]:
    """(weight_map, metadata) of a shard index, checked."""
    if os.path.getsize(path) > MAX_INDEX_BYTES:
        raise ModelLoadError(f"{path} is larger than {MAX_INDEX_BYTES:,} bytes; it is not a shard index")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelLoadError(f"{path} is not a valid shard index ({one_line(exc)}); save the model again") from None
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map or not all(isinstance(k, str) for k in weight_map):
        raise ModelLoadError(
            f"{path} has no \"weight_map\" object mapping tensor names to files; save the model again"
        )
    checked = {key: _shard_name(value, path, suffix) for key, value in weight_map.items()}
    metadata = data.get("metadata")
    return checked, metadata if isinstance(metadata, dict) else None


# ------------------------------------------------------------------ loading


def _read_weights(
    folder: str, names: list[str], roots: list[str], *, bin_files: bool
) -> tuple[dict[str, torch.Tensor], list[StFile], list[str]]:
    """(state, file descriptions, safetensors paths still to read). safetensors files are
    read header-only here (meta tensors) and their data later, one file at a time."""
    from freezedsl.loaders import stfiles

    state: dict[str, torch.Tensor] = {}
    files: list[StFile] = []
    pending: list[str] = []
    for name in names:
        path = _member(folder, name, roots)
        if bin_files:
            tensors, described = _read_bin(path)
            described.name = _safetensors_name(name)
        else:
            tensors, described = stfiles.read(path, meta=True)
            pending.append(path)
        twice = [k for k in tensors if k in state]
        if twice:
            raise ModelLoadError(f"{path} holds {one_line(twice[0])}, which another weight file of {folder} holds too")
        state.update(tensors)
        files.append(described)
    return state, files, pending


def _safetensors_name(bin_name: str) -> str:
    """pytorch_model-00001-of-00002.bin -> model-00001-of-00002.safetensors."""
    stem = bin_name[: -len(".bin")]
    if stem.startswith("pytorch_model"):
        stem = "model" + stem[len("pytorch_model"):]
    return stem + ".safetensors"


def _read_bin(path: str) -> tuple[dict[str, torch.Tensor], StFile]:
    from freezedsl.loaders.kinds import sniff
    from freezedsl.loaders.statedict import split_checkpoint
    from freezedsl.loaders.stfiles import StFile
    from freezedsl.loaders.unpickle import PickledObject, load_weights_only

    try:
        obj = load_weights_only(path, sniff(path), "cpu")
    except PickledObject as found:
        raise ModelLoadError(
            f"{path} is a pickled Python object (it references {found.global_name}), not a state "
            "dict; freezedsl reads a model folder's weights with torch.load(weights_only=True) only"
        ) from None
    state, _extra, _manifest, _key = split_checkpoint(obj, path)
    return state, StFile(os.path.basename(path), list(state), {k: v.dtype for k, v in state.items()}, {"format": "pt"})


def _weight_files(
    folder: str, roots: list[str]
) -> tuple[list[str], dict[str, str] | None, dict[str, Any] | None, bool, list[str]]:
    """(weight file names, the index's weight map, its metadata, .bin?, input names read)."""
    for index, single, suffix in ((ST_INDEX, ST_SINGLE, ".safetensors"), (BIN_INDEX, BIN_SINGLE, ".bin")):
        if os.path.lexists(os.path.join(folder, index)):
            path = _member(folder, index, roots)
            weight_map, metadata = _read_index(path, suffix)
            names = list(dict.fromkeys(weight_map.values()))
            return names, weight_map, metadata, suffix == ".bin", [index, *names]
        if os.path.lexists(os.path.join(folder, single)):
            return [single], None, None, suffix == ".bin", [single]
    raise ModelLoadError(
        f"{folder} has no weights ({', '.join(WEIGHT_NAMES)}); pass a folder written by "
        "save_pretrained"
    )


def _load_folder(folder: str, options: LoadOptions) -> LoadedModel:
    roots = _allowed_roots(folder)
    names, weight_map, index_metadata, bin_files, read_names = _weight_files(folder, roots)
    has_config = os.path.lexists(os.path.join(folder, CONFIG))
    config_path = _member(folder, CONFIG, roots) if has_config else None
    if config_path is None and options.arch is None:
        raise ModelLoadError(
            f"{folder} has no {CONFIG}, so its architecture is unknown; add the "
            "config.json that save_pretrained wrote, or pass --arch package.module:callable that builds the model"
        )
    meta = options.meta is True
    state, files, pending = _read_weights(folder, names, roots, bin_files=bin_files)
    if weight_map is not None:
        _check_index(folder, weight_map, state)
    module, what, built_by = _build(options.arch, config_path, folder, meta=meta)
    converted = False
    try:
        _fit(module, state, folder, what, built_by, meta=meta, pending=pending)
    except ModelLoadError:
        if built_by is None or config_path is None:
            raise
        from freezedsl.loaders.hfconfig import from_pretrained, split_hf_arch

        theirs = from_pretrained(folder, config_path, split_hf_arch(options.arch)[1])
        if theirs is None:
            raise
        module, converted, meta = theirs, True, False  # a real model: meta would need the same conversion
    skip = {*read_names, FOLDER_MANIFEST}
    copied = [n for n in sorted(os.listdir(folder)) if n not in skip and os.path.isfile(os.path.join(folder, n))]
    for name in copied:
        _member(folder, name, roots)  # a copied file must not be a link out of the folder
    layout = HfLayout(folder, files, ST_INDEX if weight_map is not None else None, index_metadata, copied, converted)
    manifest = _folder_manifest(folder, roots)
    return _loaded(module, "hf_folder", folder, options, what, layout, manifest, meta)


def _check_index(folder: str, weight_map: dict[str, str], state: dict[str, torch.Tensor]) -> None:
    """Every tensor the index lists must be in its weight files (a lying index is refused)."""
    index = os.path.join(folder, ST_INDEX if os.path.lexists(os.path.join(folder, ST_INDEX)) else BIN_INDEX)
    missing = [k for k in weight_map if k not in state]
    if missing:
        raise ModelLoadError(
            f"{index} lists {len(missing)} tensor(s) that its weight files do not hold "
            f"({', '.join(one_line(k, 80) for k in missing[:3])}); save the model again"
        )


def _load_file(path: str, options: LoadOptions, config: str | None) -> LoadedModel:
    from freezedsl.loaders import stfiles

    meta = options.meta is True
    state, described = stfiles.read(path, meta=True)
    if options.arch is None and config is None:
        raise ModelLoadError(
            f"{path} holds a safetensors state dict ({len(state)} tensors) but no architecture; pass "
            "--arch package.module:callable (e.g. torchvision.models:resnet18), or --model-config "
            "config.json for a Hugging Face model (optionally with --arch transformers:ClassName)"
        )
    module, what, built_by = _build(options.arch, config, None, meta=meta)
    _fit(module, state, path, what, built_by, meta=meta, pending=[path])
    layout = HfLayout(None, [described])
    from freezedsl.manifest import sidecar_manifest

    manifest = sidecar_manifest(path)
    return _loaded(module, "safetensors", path, options, what, layout, manifest, meta)


def build_and_fit(
    state: dict[str, torch.Tensor], path: str, arch: str | None, config: str | None, *, meta: bool
) -> tuple[nn.Module, str]:
    """(module, architecture label) for a torch.save state dict whose model is described by
    ``--model-config`` or named ``--arch transformers:ClassName``."""
    module, what, built_by = _build(arch, config, None, meta=meta)
    _fit(module, state, path, what, built_by, meta=meta)
    return module, what


def _build(
    arch: str | None, config_path: str | None, folder: str | None, *, meta: bool
) -> tuple[nn.Module, str, str | None]:
    """(module, architecture label, what built it when that was a config)."""
    from freezedsl.loaders.arch import build_arch
    from freezedsl.loaders.hfconfig import build_from_config, split_hf_arch

    is_class, class_name = split_hf_arch(arch)
    if arch is not None and not is_class:
        if config_path is not None and folder is None:
            raise UsageError(
                f"--model-config is used with --arch transformers:ClassName (or alone); '{arch}' "
                "builds the model itself"
            )
        return build_arch(arch, meta=meta), arch, None
    if config_path is None:
        raise UsageError(
            f"--arch {arch} builds a transformers class from a config: pass --model-config "
            "config.json too"
        )
    module, what = build_from_config(config_path, class_name, meta=meta)
    return module, what.split(" ", 1)[0], what


def _fit(
    module: nn.Module,
    state: dict[str, torch.Tensor],
    path: str,
    arch: str,
    built_by: str | None,
    *,
    meta: bool,
    pending: list[str] | None = None,
) -> None:
    """Check every key, shape and dtype first; then copy the values in.

    ``pending`` safetensors files (whose ``state`` holds meta tensors from their headers)
    are read one at a time and copied, so the peak memory is the model plus one file,
    not the model plus every file.
    """
    from freezedsl.loaders import stfiles
    from freezedsl.loaders.statedict import check_fit, load_into, rename_to_model

    renamed = rename_to_model(state, module)
    check_fit(renamed, module, path, arch, built_by=built_by)
    if meta:
        return
    what = built_by or f"--arch '{arch}'"
    if not pending:
        load_into(module, renamed, path, what)
    else:
        for file in pending:
            tensors, _ = stfiles.read(file, meta=False)
            load_into(module, rename_to_model(tensors, module), file, what, strict=False)
            del tensors
    _keep_file_dtypes(module, renamed)


def _keep_file_dtypes(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Hold each floating tensor in the dtype its file stores it in (a bf16 checkpoint
    stays bf16: memory estimates and the written output match the input)."""
    seen: set[int] = set()
    named = [*module.named_parameters(remove_duplicate=False), *module.named_buffers(remove_duplicate=False)]
    for name, tensor in named:
        stored = state.get(name)
        if stored is None or id(tensor) in seen:
            continue
        seen.add(id(tensor))
        if stored.dtype != tensor.dtype and stored.is_floating_point() and tensor.is_floating_point():
            with torch.no_grad():
                tensor.data = tensor.data.to(stored.dtype)


def _folder_manifest(folder: str, roots: list[str]) -> dict[str, Any] | None:
    if not os.path.lexists(os.path.join(folder, FOLDER_MANIFEST)):
        return None
    from freezedsl.manifest import load_manifest

    return load_manifest(_member(folder, FOLDER_MANIFEST, roots))


def _loaded(
    module: nn.Module,
    kind: Any,
    source: str,
    options: LoadOptions,
    what: str,
    layout: HfLayout,
    manifest: dict[str, Any] | None,
    meta: bool,
) -> LoadedModel:
    if options.map_location != "cpu" and not meta:
        module = module.to(options.map_location)
    if options.apply_manifest and manifest is not None:
        from freezedsl.manifest import apply_manifest

        try:
            apply_manifest(module, manifest, strict=True)
        except ModelLoadError as exc:
            raise ModelLoadError(f"{source}: the stored freeze manifest does not fit: {exc}") from None
    on_meta = meta and any(p.is_meta for p in module.parameters())
    loaded = LoadedModel(module, kind, source, what, on_meta, manifest=manifest)
    loaded.layout = layout
    return loaded
