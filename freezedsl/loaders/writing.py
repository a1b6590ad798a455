"""Writing a model back in the kind it was read, atomically, never over its source.

* A bare state dict (``{name: tensor}``, as ``torch.save(model.state_dict())`` writes)
  stays a bare state dict with the same keys, ``module.`` prefix included, so
  ``model.load_state_dict(torch.load(OUT))`` works exactly as it did on the input. A
  state dict cannot hold ``requires_grad``, so the freeze goes into a sidecar manifest
  ``OUT.freeze.json`` (see :func:`sidecar_path`), which :func:`freezedsl.restore_freeze`
  reapplies in one call and :func:`freezedsl.loading.load_model` reapplies by itself.
* An architecture has no file to mirror: its weights are written as a bare state dict
  with a sidecar too (they are freshly initialised, which the CLI says).
* A checkpoint dict (weights under ``state_dict``/``model``/...) keeps its other
  entries and gains a ``freezedsl_manifest`` entry: scripts that index it by key are
  unaffected by one more key.
* Hugging Face folders and ``.safetensors`` files are written in the layout they were
  read (:mod:`freezedsl.loaders.hfwrite`).
* Pickles and TorchScript carry ``requires_grad`` themselves; a pickled checkpoint dict
  or a TorchScript extra file also gets the manifest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import IO, Any

import torch

from freezedsl.errors import UsageError
from freezedsl.fsutil import atomic_write, atomic_write_text, check_target
from freezedsl.loaders.base import (
    MANIFEST_KEY,
    TORCHSCRIPT_MANIFEST,
    LoadedModel,
    one_line,
    quiet,
    sidecar_path,
)


def _plain(manifest: dict[str, Any], out: str) -> dict[str, Any]:
    """Round-trip through JSON so the saved manifest loads under ``weights_only``
    (a ``TorchVersion`` or numpy scalar would make the checkpoint need pickle)."""
    try:
        plain = json.loads(json.dumps(manifest))
    except (TypeError, ValueError, RecursionError) as exc:
        raise UsageError(
            f"cannot write {out}: the manifest is not plain JSON data ({one_line(exc)})"
        ) from None
    assert isinstance(plain, dict)
    return plain


def _made(module: torch.nn.Module) -> dict[str, Any]:
    from freezedsl.manifest import make_manifest

    return make_manifest(module)


def writes_sidecar(loaded: LoadedModel) -> bool:
    """True when saving ``loaded`` writes a bare state dict plus ``OUT.freeze.json``."""
    return loaded.kind in ("arch", "safetensors") or (loaded.kind == "state_dict" and loaded.checkpoint_key is None)


def save_model(
    loaded: LoadedModel, out: str | os.PathLike[str], *, manifest: dict[str, Any] | None = None
) -> None:
    """Write ``loaded`` back in its own kind (see the module docstring), atomically.

    Without ``manifest`` one is made from the module's current flags wherever one is
    needed or was loaded, so a stored manifest never contradicts the weights it sits by.
    """
    out_s = os.fspath(out)
    if loaded.on_meta:
        raise UsageError(
            f"cannot write {out_s}: the model was built on the meta device (no weights); "
            "load it with meta=False to build real weights before saving"
        )
    module = loaded.module
    if loaded.kind == "hf_folder":
        from freezedsl.loaders.hfwrite import save_folder

        save_folder(loaded, out_s, _plain(manifest or _made(module), out_s))
        return
    sidecar = writes_sidecar(loaded)
    targets = [out_s, sidecar_path(out_s)] if sidecar else [out_s]
    for target in targets:
        if (
            loaded.kind != "arch"
            and os.path.exists(loaded.source)
            and os.path.exists(target)
            and os.path.samefile(loaded.source, target)
        ):
            raise UsageError(
                f"the output {target} is the input file; write to a new path so the original "
                "stays intact"
            )
        check_target(target)
    if manifest is None and (loaded.kind in ("state_dict", "arch", "safetensors") or loaded.manifest):
        manifest = _made(module)
    if manifest is not None:
        manifest = _plain(manifest, out_s)
    if loaded.kind == "safetensors":
        from freezedsl.loaders.hfwrite import save_safetensors

        assert manifest is not None
        save_safetensors(loaded, out_s, manifest)
        return
    writer: Callable[[IO[bytes]], None]
    if loaded.kind == "torchscript":
        files = {} if manifest is None else {TORCHSCRIPT_MANIFEST: json.dumps(manifest)}

        def writer(fh: IO[bytes]) -> None:
            with quiet():
                torch.jit.save(module, fh, _extra_files=files)

    elif loaded.kind == "pickle":
        payload: object = module
        if loaded.checkpoint_key is not None:
            ckpt: dict[str, object] = {loaded.checkpoint_key: module, **loaded.extra}
            if manifest is not None:
                ckpt[MANIFEST_KEY] = manifest
            payload = ckpt

        def writer(fh: IO[bytes]) -> None:
            torch.save(payload, fh)

    elif sidecar:
        state = {loaded.key_prefix + k: v for k, v in module.state_dict().items()}

        def writer(fh: IO[bytes]) -> None:
            torch.save(state, fh)

    else:
        key = loaded.checkpoint_key or "state_dict"
        weights = {loaded.key_prefix + k: v for k, v in module.state_dict().items()}
        data = {key: weights, **loaded.extra, MANIFEST_KEY: manifest}

        def writer(fh: IO[bytes]) -> None:
            torch.save(data, fh)

    if not (sidecar and manifest is not None):
        atomic_write(out_s, writer)
        return
    # The weights first (a signal or failure there leaves both old files as they were),
    # then the small sidecar, so a new sidecar never sits beside old weights.
    atomic_write(out_s, writer)
    atomic_write_text(sidecar_path(out_s), json.dumps(manifest, indent=2) + "\n")
