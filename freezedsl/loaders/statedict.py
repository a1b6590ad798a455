"""Fitting a state dict to the architecture that should hold it.

Checkpoints come as a bare ``{name: tensor}`` or under one of :data:`STATE_DICT_KEYS`
next to other entries (epoch, optimizer...). Names saved from a wrapped model
(DDP's ``module.``, ``torch.compile``'s ``_orig_mod.``) are matched by their canonical
form; keys, shapes and lossy dtypes are compared before any value is copied, so a
mismatch is one line listing what differs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from freezedsl.errors import ModelLoadError
from freezedsl.loaders.arch import build_arch
from freezedsl.loaders.base import (
    MANIFEST_KEY,
    MAX_LISTED,
    STATE_DICT_KEYS,
    canonical_name,
    exc_text,
    listed,
    one_line,
    quiet,
)
from freezedsl.safetext import printable

Split = tuple[dict[str, torch.Tensor], dict[str, object], "dict[str, Any] | None", "str | None"]


def is_state_dict(obj: object) -> bool:
    if not isinstance(obj, Mapping) or not obj:
        return False
    return all(
        isinstance(k, str) and (isinstance(v, torch.Tensor) or k.endswith("_extra_state"))
        for k, v in obj.items()
    ) and any(isinstance(v, torch.Tensor) for v in obj.values())


def describe(obj: object) -> str:
    """A few words for what a file holds (keys shown short and printable)."""
    if isinstance(obj, Mapping):
        keys = ", ".join(printable(_short_repr(k)) for k in list(obj)[:MAX_LISTED])
        more = ", ..." if len(obj) > MAX_LISTED else ""
        return f"a dict with keys {keys}{more}" if obj else "an empty dict"
    return f"a {type(obj).__name__}"


def _short_repr(key: object, limit: int = 60) -> str:
    text = repr(key) if isinstance(key, (str, int, float, bool)) or key is None else f"<{type(key).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def split_checkpoint(obj: object, path: str) -> Split:
    """(state dict, other entries, manifest, key the state dict was under)."""
    if is_state_dict(obj):
        assert isinstance(obj, Mapping)
        return dict(obj), {}, None, None
    if isinstance(obj, Mapping):
        for key in STATE_DICT_KEYS:
            if key in obj and is_state_dict(obj[key]):
                extra = {k: v for k, v in obj.items() if k not in (key, MANIFEST_KEY)}
                manifest = obj.get(MANIFEST_KEY)
                if manifest is not None and not isinstance(manifest, dict):
                    raise ModelLoadError(
                        f"{path} has a '{MANIFEST_KEY}' entry that is a "
                        f"{type(manifest).__name__}, not a dict; remove it or save it again"
                    )
                return dict(obj[key]), extra, manifest, key
        nested = [k for k, v in obj.items() if is_state_dict(v)]
        if nested:
            shown = printable(_short_repr(nested[0]))
            raise ModelLoadError(
                f"{path} keeps its weights under {shown}; expected them under one of "
                f"{', '.join(repr(k) for k in STATE_DICT_KEYS)} (re-save with "
                f"ckpt['state_dict'] = ckpt.pop({shown}))"
            )
        if not any(isinstance(v, torch.Tensor) for v in obj.values()):
            raise ModelLoadError(
                f"{path} holds {describe(obj)} but no tensors; expected a state dict or a "
                "checkpoint with a 'state_dict' entry"
            )
    raise ModelLoadError(
        f"{path} holds {describe(obj)}, not a state dict; expected a dict of tensors or a "
        "checkpoint with a 'state_dict' entry"
    )


def common_prefix(state: Mapping[str, object]) -> str:
    """The wrapper prefix (``module.``, ``_orig_mod.``) every key carries, or ''."""
    for prefix in ("module.", "_orig_mod."):
        if state and all(k.startswith(prefix) for k in state):
            return prefix
    return ""


def rename_to_model(state: dict[str, torch.Tensor], module: nn.Module) -> dict[str, torch.Tensor]:
    """Map wrapped names (DDP, torch.compile) and omitted tied aliases onto the model's."""
    model_keys = list(module.state_dict().keys())
    wanted = set(model_keys)
    by_canonical: dict[str, str | None] = {}
    for key in model_keys:
        canon = canonical_name(key)
        by_canonical[canon] = None if canon in by_canonical else key  # None: ambiguous
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        target = key if key in wanted else by_canonical.get(canonical_name(key)) or key
        if target in renamed:  # two checkpoint keys for one model key: keep them visible
            target = key
        renamed[target] = value
    # Tied parameters: a checkpoint may store one name of the tied group only.
    groups: dict[int, list[str]] = {}
    for name, param in module.named_parameters(remove_duplicate=False):
        groups.setdefault(id(param), []).append(name)
    for names in groups.values():
        present = [n for n in names if n in renamed]
        if present:
            for name in names:
                renamed.setdefault(name, renamed[present[0]])
    return renamed


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(d) for d in t.shape) or "scalar"


def _count(items: list[str], noun: str) -> str:
    plural = noun + ("es" if noun.endswith("h") else "s")
    return f"{len(items)} {noun if len(items) == 1 else plural}"


_BITS = {getattr(torch, n) for n in ("bits8", "bits16", "bits1x8", "bits2x4", "bits4x2") if hasattr(torch, n)}


def _incompatible(file: torch.Tensor, model: torch.Tensor) -> str | None:
    """Why ``file`` cannot be copied into ``model`` as it is, said before torch tries
    (torch warns and drops a complex value's imaginary part; for quantized, sparse and
    raw-bits tensors its reason comes last in a paragraph-long message)."""
    if file.layout != model.layout:
        return f"file {file.layout} vs model {model.layout}".replace("torch.", "")
    if file.is_quantized != model.is_quantized:
        kind = "quantized " if file.is_quantized else ""
        return f"file {kind}{file.dtype} vs model {model.dtype}; dequantize or quantize the model first".replace("torch.", "")
    if file.dtype in _BITS and file.dtype != model.dtype:
        return f"file {file.dtype} (raw bits, not convertible) vs model {model.dtype}".replace("torch.", "")
    if file.is_complex() and not model.is_complex():
        return f"file {file.dtype} vs model {model.dtype}; loading would drop the imaginary part".replace("torch.", "")
    return None


def check_fit(
    state: dict[str, torch.Tensor], module: nn.Module, path: str, arch: str, *, built_by: str | None = None
) -> None:
    """Compare keys, shapes and dtypes first, so the error lists them in one line.

    ``built_by`` names what built ``module`` when that was not ``--arch`` (a Hugging
    Face class from a config.json).
    """
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    pairs = [
        (k, v, expected[k])
        for k, v in state.items()
        if k in expected and isinstance(v, torch.Tensor) and isinstance(expected[k], torch.Tensor)
    ]
    mismatched = [f"{k}: file {_shape(v)} vs model {_shape(e)}" for k, v, e in pairs if v.shape != e.shape]
    lossy = [f"{k}: {why}" for k, v, e in pairs if (why := _incompatible(v, e))]
    problems = []
    if missing:
        problems.append(f"{_count(missing, 'missing key')} ({listed(missing)})")
    if unexpected:
        problems.append(f"{_count(unexpected, 'unexpected key')} ({listed(unexpected)})")
    if mismatched:
        problems.append(f"{_count(mismatched, 'shape mismatch')} ({listed(mismatched)})")
    if lossy:
        problems.append(f"{_count(lossy, 'incompatible tensor')} ({listed(lossy)})")
    if problems:
        if built_by is not None:
            raise ModelLoadError(
                f"{path} does not fit {built_by}: {'; '.join(problems)}; check that the config "
                "describes the model that was saved"
            )
        raise ModelLoadError(
            f"{path} does not fit --arch '{arch}': {'; '.join(problems)}; check that --arch "
            "builds the model that was saved (same class and arguments)"
        )


def load_state(
    state: dict[str, torch.Tensor], path: str, arch: str, *, meta: bool, notes: list[str] | None = None
) -> nn.Module:
    # Built on CPU and filled by copying, not on meta with load_state_dict(assign=True):
    # assigning replaces each Parameter separately, which unties tied weights (a GPT's
    # lm_head and embedding) and leaves non-persistent buffers on meta.
    module = build_arch(arch, meta=meta, notes=notes)
    state = rename_to_model(state, module)
    check_fit(state, module, path, arch)
    if not meta:
        load_into(module, state, path, f"--arch '{arch}'")
    return module


def load_into(module: nn.Module, state: dict[str, torch.Tensor], path: str, what: str, *, strict: bool = True) -> None:
    """Copy ``state`` (already checked by :func:`check_fit`) into ``module``'s tensors;
    ``strict=False`` for one part of a checkpoint whose whole was checked."""
    try:
        with quiet():
            module.load_state_dict(state, strict=strict)
    except Exception as exc:  # noqa: BLE001 - custom _load_from_state_dict hooks
        raise ModelLoadError(f"{path} does not fit {what}: {_load_reason(exc)}") from None


def _load_reason(exc: BaseException) -> str:
    """The reason in torch's load_state_dict error, which comes after a long preamble
    ("While copying the parameter named ..., an exception occurred : (...)")."""
    text = str(exc)
    found = re.search(r'parameter named "([^"]+)".*?an exception occurred : \((.*)\)', text, re.DOTALL)
    if found:
        return f"{printable(found[1])}: {one_line(found[2].strip().rstrip(',').strip(chr(39) + chr(34)))}"
    return exc_text(exc)
