"""Writing a Hugging Face folder or ``.safetensors`` file back in the layout it was read.

* A ``.safetensors`` file becomes a ``.safetensors`` file with the same keys, dtypes and
  metadata, plus the sidecar ``OUT.freeze.json`` a bare state dict gets.
* A ``save_pretrained`` folder becomes a folder with the same weight files holding the
  same keys (shards and ``model.safetensors.index.json`` included), every other file
  of the input folder copied as it is (``config.json`` byte for byte, tokenizer files...),
  and the freeze in ``OUT/freezedsl_manifest.json``. ``pytorch_model*.bin`` weights are
  written as safetensors under the names save_pretrained gives them
  (``model.safetensors``, ``model-00001-of-00002.safetensors``), keys unchanged.

Keys are the input's, so tied weights are stored the way the input stored them (GPT-2
keeps ``transformer.wte.weight`` and omits ``lm_head.weight``; transformers ties them
again on load). A folder is written into a temporary folder beside ``OUT`` and renamed
into place, so ``OUT`` is never half-written; an existing ``OUT`` is replaced only if it
is empty or a folder freezedsl wrote (it holds ``freezedsl_manifest.json``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from typing import Any

import torch
from torch import nn

from freezedsl.errors import ModelLoadError, UsageError
from freezedsl.fsutil import _die_of, _signals_raise, atomic_write, atomic_write_text
from freezedsl.loaders.base import LoadedModel, canonical_name, one_line, sidecar_path
from freezedsl.loaders.hffiles import FOLDER_MANIFEST, HfLayout


def check_folder_target(out: str, source: str | None = None) -> None:
    """Why ``out`` cannot become a model folder, said before any work is done."""
    real = os.path.realpath(out)
    parent = os.path.dirname(real.rstrip(os.sep)) or os.sep
    if source is not None and os.path.exists(source) and os.path.exists(out) and os.path.samefile(source, out):
        raise UsageError(f"-o {out} is the input folder; write the frozen model to a new folder")
    if source is not None and _inside(real, os.path.realpath(source)):
        raise UsageError(f"-o {out} is inside the input folder {source}; write it elsewhere")
    if not os.path.isdir(parent):
        raise ModelLoadError(f"cannot write {out}: directory {os.path.dirname(out.rstrip('/')) or '.'} does not exist; create it first")
    if os.path.lexists(out):
        if not os.path.isdir(out):
            raise ModelLoadError(
                f"cannot write {out}: it exists and is not a folder; the input is a model folder, "
                "so the output is one too (pass a new folder name)"
            )
        entries = os.listdir(out)
        if entries and FOLDER_MANIFEST not in entries:
            raise ModelLoadError(
                f"cannot write {out}: the folder exists and was not written by freezedsl "
                f"(no {FOLDER_MANIFEST}); pass a new or empty folder so nothing of yours is replaced"
            )
    if not os.access(parent, os.W_OK):
        raise ModelLoadError(f"cannot write {out}: directory {os.path.dirname(real) or '.'} is not writable (permission denied)")


def _inside(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def _tensors_for(module: nn.Module, keys: list[str], dtypes: dict[str, torch.dtype], out: str) -> dict[str, torch.Tensor]:
    """The model's current tensor for each key the input file held, in the file's dtype."""
    state = module.state_dict()
    by_canonical: dict[str, str] = {}
    for key in state:
        by_canonical.setdefault(canonical_name(key), key)
    tensors: dict[str, torch.Tensor] = {}
    for key in keys:
        found = key if key in state else by_canonical.get(canonical_name(key))
        if found is None:
            raise UsageError(
                f"cannot write {out}: the model has no tensor for {one_line(key, 80)}, which the "
                "input stored (did a convert statement rename it?)"
            )
        tensor = state[found]
        wanted = dtypes.get(key)
        if wanted is not None and tensor.dtype != wanted:
            tensor = tensor.to(wanted)
        tensors[key] = tensor
    return tensors


def save_safetensors(loaded: LoadedModel, out: str, manifest: dict[str, Any]) -> None:
    """``.safetensors`` -> ``.safetensors`` (same keys, dtypes, metadata) + ``OUT.freeze.json``."""
    from freezedsl.loaders import stfiles

    layout: HfLayout = loaded.layout
    described = layout.files[0]
    tensors = _tensors_for(loaded.module, described.keys, described.dtypes, out)
    atomic_write(out, stfiles.writer(tensors, described.metadata, out))
    atomic_write_text(sidecar_path(out), json.dumps(manifest, indent=2) + "\n")


def save_folder(loaded: LoadedModel, out: str, manifest: dict[str, Any]) -> None:
    """A save_pretrained folder -> the same layout in a new folder, renamed into place."""
    from freezedsl.loaders import stfiles

    layout: HfLayout = loaded.layout
    assert layout.folder is not None
    check_folder_target(out, layout.folder)
    shown = out.rstrip("/") or out
    real = os.path.realpath(shown)
    parent = os.path.dirname(real)
    tmp = os.path.join(parent, f".{os.path.basename(real)}.{secrets.token_hex(4)}.tmp")
    with _signals_raise() as caught:
        try:
            os.mkdir(tmp)
            if layout.converted:
                _save_pretrained(loaded.module, tmp, layout)
            weight_map: dict[str, str] = {}
            for described in [] if layout.converted else layout.files:
                tensors = _tensors_for(loaded.module, described.keys, described.dtypes, shown)
                _write_file(os.path.join(tmp, described.name), stfiles.writer(tensors, described.metadata, shown))
                weight_map.update(dict.fromkeys(described.keys, described.name))
            if layout.index_name is not None and not layout.converted:
                index = {"metadata": layout.index_metadata or {}, "weight_map": dict(sorted(weight_map.items()))}
                _write_text(os.path.join(tmp, layout.index_name), json.dumps(index, indent=2) + "\n")
            for name in layout.copied:
                shutil.copyfile(os.path.join(layout.folder, name), os.path.join(tmp, name))
            _write_text(os.path.join(tmp, FOLDER_MANIFEST), json.dumps(manifest, indent=2) + "\n")
            _swap_in(tmp, real)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if caught:
                _die_of(caught[0])
            if isinstance(exc, OSError):
                raise ModelLoadError(f"cannot write {shown}: {exc.strerror or one_line(exc)}") from None
            raise


def _save_pretrained(module: nn.Module, tmp: str, layout: HfLayout) -> None:
    """Weights whose stored names transformers converts on load are written by
    ``save_pretrained``, which converts them back: the input's shard size, safetensors,
    and nothing but weight files (the input's config.json and other files are copied)."""
    from freezedsl.loaders.hfconfig import hf_quiet

    assert layout.folder is not None
    sizes = [os.path.getsize(os.path.join(layout.folder, f.name)) for f in layout.files
             if os.path.exists(os.path.join(layout.folder, f.name))]
    shard = max(sizes) + (1 << 20) if layout.index_name is not None and sizes else "1000GB"
    with hf_quiet():
        module.save_pretrained(tmp, max_shard_size=shard)  # type: ignore[operator]
    for name in os.listdir(tmp):
        if not name.endswith(".safetensors") and name != "model.safetensors.index.json":
            os.unlink(os.path.join(tmp, name))


def _write_file(path: str, writer: Any) -> None:
    with open(path, "wb") as fh:
        writer(fh)
        fh.flush()
        os.fsync(fh.fileno())


def _write_text(path: str, text: str) -> None:
    data = text.encode("utf-8")
    _write_file(path, lambda fh: fh.write(data))


def _swap_in(tmp: str, target: str) -> None:
    """Rename the finished folder into place; a previous output is moved aside first
    and removed only once the new one is in place (restored if the rename fails)."""
    if not os.path.lexists(target):
        os.rename(tmp, target)
        return
    if not os.listdir(target):
        os.rename(tmp, target)  # rename(2) replaces an empty folder
        return
    old = f"{tmp}.old"
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
