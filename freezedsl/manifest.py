"""The freeze manifest: requires_grad flags persisted beside or inside a checkpoint.

A state dict stores values only, so the result of ``freezedsl apply`` would be lost on
the next ``load_state_dict``. The manifest records every parameter's requires_grad
(under every name, tied aliases included) plus the hash of the rules that produced it,
and :func:`apply_manifest` restores it all-or-nothing. Names are compared in their
canonical form (:func:`freezedsl.loaders.base.canonical_name`), so a manifest written for a
DDP- or ``torch.compile``-wrapped model fits the plain one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import IO, Any

import torch
from torch import nn

from freezedsl.errors import ModelLoadError, UsageError
from freezedsl.fsutil import atomic_write, unreadable_reason
from freezedsl.loaders.base import canonical_name, sidecar_path

__all__ = ["FORMAT", "apply_manifest", "load_manifest", "make_manifest", "restore_freeze", "save_manifest"]

FORMAT = "freezedsl-manifest/1"
_FORMAT_PREFIX = "freezedsl-manifest/"
_MAX_LISTED = 3


def _named_parameters(module: nn.Module) -> Iterable[tuple[str, nn.Parameter]]:
    """Every name of every parameter, tied aliases included."""
    try:
        return list(module.named_parameters(remove_duplicate=False))
    except TypeError:  # ScriptModules do not take remove_duplicate
        return list(module.named_parameters())


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (", ..." if len(names) > _MAX_LISTED else "")


def make_manifest(
    module: nn.Module,
    *,
    rules_text: str | None = None,
    rules_path: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Snapshot ``module``'s requires_grad flags; the rules hash ties them to their cause.

    Without ``rules_text`` the hash is taken of the file at ``rules_path`` (if readable).
    Counts are over distinct parameters (a tied pair counts once); names list every alias.
    """
    if rules_text is None and rules_path is not None:
        try:
            with open(rules_path, encoding="utf-8") as fh:
                rules_text = fh.read()
        except OSError:
            rules_text = None
    digest = (
        hashlib.sha256(rules_text.encode("utf-8")).hexdigest() if rules_text is not None else None
    )
    flags: dict[str, bool] = {}
    for name, param in _named_parameters(module):
        flags[canonical_name(name)] = bool(param.requires_grad)
    unique = {id(p): p for p in module.parameters()}.values()
    frozen = [p for p in unique if not p.requires_grad]
    trainable = [p for p in unique if p.requires_grad]
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "rules_sha256": digest,
        "rules_path": rules_path,
        "requires_grad": flags,
        "frozen_count": len(frozen),
        "trainable_count": len(trainable),
        "frozen_numel": sum(p.numel() for p in frozen),
        "trainable_numel": sum(p.numel() for p in trainable),
        "torch_version": str(torch.__version__),  # TorchVersion would need pickle
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    stats = _stats_frozen(module)
    if stats:
        manifest["stats_frozen"] = stats
    if extra:
        manifest["extra"] = dict(extra)
    return manifest


def _named_modules(module: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(canonical_name(n), m) for n, m in module.named_modules()]


def _stats_frozen(module: nn.Module) -> list[str]:
    """Norm layers whose running statistics ``freeze stats`` pinned (kept in eval mode)."""
    from freezedsl.application import stats_frozen

    return [name for name, m in _named_modules(module) if name and stats_frozen(m)]


def _validate(manifest: object, where: str) -> dict[str, bool]:
    """The requires_grad table of a well-formed manifest; one-line error otherwise."""
    if not isinstance(manifest, dict):
        raise ModelLoadError(
            f"{where} is a {type(manifest).__name__}, not a freezedsl manifest (a JSON object)"
        )
    fmt = manifest.get("format")
    if fmt != FORMAT:
        if isinstance(fmt, str) and fmt.startswith(_FORMAT_PREFIX):
            raise ModelLoadError(
                f"{where} has format '{fmt}', which this freezedsl cannot read; expected "
                f"'{FORMAT}' (upgrade freezedsl or re-run the rules)"
            )
        raise ModelLoadError(
            f"{where} is not a freezedsl manifest (format {fmt!r}); expected format '{FORMAT}'"
        )
    table = manifest.get("requires_grad")
    if not isinstance(table, dict) or not all(
        isinstance(k, str) and isinstance(v, bool) for k, v in table.items()
    ):
        raise ModelLoadError(
            f"{where} has a malformed 'requires_grad' entry; expected an object mapping "
            "parameter names to true/false"
        )
    return table


def apply_manifest(module: nn.Module, manifest: dict[str, Any], *, strict: bool = True) -> None:
    """Set requires_grad from ``manifest``, all or nothing.

    Everything is checked before any flag changes, so a bad manifest never leaves the
    model half-frozen: the format, every manifest name exists in the model, tied aliases
    agree, and (``strict``) every model parameter is covered.
    """
    table = _validate(manifest, "the manifest")
    by_name: dict[str, nn.Parameter] = {}
    for name, param in _named_parameters(module):
        by_name.setdefault(canonical_name(name), param)

    wanted: dict[str, bool] = {}
    for name, flag in table.items():
        canon = canonical_name(name)
        if wanted.setdefault(canon, flag) != flag:
            raise ModelLoadError(
                f"the manifest gives {canon} both true and false (under two names); "
                "write it again with make_manifest"
            )
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise ModelLoadError(
            f"the manifest names {len(unknown)} parameter(s) the model does not have "
            f"({_listed(unknown)}); it was made for a different model"
        )
    if strict:
        uncovered = [n for n in by_name if n not in wanted]
        if uncovered:
            raise ModelLoadError(
                f"the manifest does not cover {len(uncovered)} model parameter(s) "
                f"({_listed(uncovered)}); it was made for a different model (apply it "
                "non-strictly to leave those unchanged)"
            )

    decided: dict[int, tuple[str, bool]] = {}
    for name, flag in wanted.items():
        param = by_name[name]
        first = decided.setdefault(id(param), (name, flag))
        if first[1] != flag:
            raise ModelLoadError(
                f"the manifest sets tied parameters {first[0]} and {name} differently "
                f"({str(first[1]).lower()} vs {str(flag).lower()}); tied names share one "
                "tensor, so give them the same value"
            )

    stats = manifest.get("stats_frozen", [])
    if not isinstance(stats, list) or not all(isinstance(n, str) for n in stats):
        raise ModelLoadError("the manifest's 'stats_frozen' is not a list of module names")
    modules = dict(_named_modules(module))
    missing = [n for n in stats if n not in modules]
    if missing:
        raise ModelLoadError(
            f"the manifest freezes the statistics of {len(missing)} module(s) the model does not "
            f"have ({_listed(missing)}); it was made for a different model"
        )

    for name, flag in wanted.items():
        by_name[name].requires_grad_(flag)
    _pin_stats([modules[n] for n in stats])


def _pin_stats(norms: list[nn.Module]) -> None:
    """Keep these norm layers in eval mode across ``model.train()``, as ``freeze stats`` does."""
    from freezedsl.application import STATS_ATTR, keep_eval, stats_frozen

    for m in norms:
        if not stats_frozen(m):
            handle = m.register_forward_pre_hook(keep_eval)
            setattr(m, STATS_ATTR, handle.id)
            m.training = False


def restore_freeze(module: nn.Module, path: str | os.PathLike[str], *, strict: bool = True) -> dict[str, Any]:
    """Reapply the freeze that ``freezedsl apply -o PATH`` stored, in one call.

    ``path`` is the written model file or its manifest: the sidecar ``PATH.freeze.json``
    beside a bare state dict or ``.safetensors`` file, ``PATH/freezedsl_manifest.json``
    in a Hugging Face model folder, or the ``freezedsl_manifest`` entry of a checkpoint
    dict (read with ``weights_only=True``). Returns the manifest that was applied.
    """
    from freezedsl.loaders.base import TORCHSCRIPT_MANIFEST, sidecar_path

    shown = os.fspath(path)
    side = shown if shown.endswith(".json") else sidecar_path(shown)
    if os.path.isdir(shown):  # a model folder written by apply -o keeps it inside
        side = os.path.join(shown, TORCHSCRIPT_MANIFEST)
        if not os.path.exists(side):
            raise ModelLoadError(
                f"{shown} is a folder without {TORCHSCRIPT_MANIFEST}; write it with freezedsl apply -o"
            )
    if os.path.exists(side):
        manifest = load_manifest(side)
    else:
        manifest = _manifest_in_checkpoint(shown)
    apply_manifest(module, manifest, strict=strict)
    return manifest


def _manifest_in_checkpoint(path: str) -> dict[str, Any]:
    from freezedsl.loaders.base import MANIFEST_KEY
    from freezedsl.loaders.kinds import check_model_path, sniff
    from freezedsl.loaders.unpickle import PickledObject, load_weights_only

    check_model_path(path)
    try:
        obj = load_weights_only(path, sniff(path), "cpu")
    except PickledObject as found:
        raise ModelLoadError(
            f"{path} is a pickled object ({found.global_name}); load it with "
            "freezedsl.loading.load_model(path, trust_pickle=True), which applies its manifest"
        ) from None
    manifest = obj.get(MANIFEST_KEY) if isinstance(obj, dict) else None
    if manifest is None:
        raise ModelLoadError(
            f"{path} holds no freeze manifest and has no {os.path.basename(path)}.freeze.json "
            "beside it; write it with freezedsl apply -o"
        )
    _validate(manifest, f"the manifest in {path}")
    return dict(manifest)


def save_manifest(manifest: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``manifest`` as JSON, atomically (an interrupted save keeps the old one)."""
    _validate(manifest, "the manifest to save")
    try:
        data = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"the manifest cannot be written as JSON ({exc}); keep 'extra' to plain "
            "strings, numbers, lists and dicts"
        ) from None

    def writer(fh: IO[bytes]) -> None:
        fh.write(data)

    atomic_write(path, writer)


def sidecar_manifest(path: str) -> dict[str, Any] | None:
    """The ``PATH.freeze.json`` that ``apply -o`` writes beside a file that cannot hold it
    (a bare state dict, a .safetensors file), or None when there is none."""
    side = sidecar_path(path)
    if not os.path.lexists(side):
        return None
    reason = unreadable_reason(side)
    if reason:
        raise ModelLoadError(f"{side} {reason}; remove it or write the manifest again")
    return load_manifest(side)


def load_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a manifest written by :func:`save_manifest`."""
    shown = os.fspath(path)
    try:
        with open(shown, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise ModelLoadError(f"manifest {shown} does not exist") from None
    except IsADirectoryError:
        raise ModelLoadError(f"manifest {shown} is a directory; pass the .json file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ModelLoadError(f"manifest {shown} cannot be read: {reason}") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelLoadError(
            f"manifest {shown} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}); write it again with save_manifest"
        ) from None
    _validate(manifest, f"manifest {shown}")
    return dict(manifest)
