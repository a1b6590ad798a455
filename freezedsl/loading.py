"""Load and save models without running code the user did not agree to run.

A MODEL on the command line is one of: an architecture ``package.module:callable``, a
state dict or checkpoint file (needs ``--arch``), a pickled ``nn.Module`` (needs
``--trust-pickle``, because unpickling can run arbitrary code) or a TorchScript archive.
The file kind is found by sniffing bytes and zip entry names and by ``torch.load(...,
weights_only=True)``, which refuses unknown globals before executing any of them, so a
hostile file is reported, never run. Every failure is a one-line :class:`ModelLoadError`
or :class:`UsageError` naming the file; torch's multi-paragraph messages never leak.

Saving writes the same kind that was loaded, through :func:`atomic_write`, so an
interrupted save never leaves a half-written checkpoint where a good one was.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import importlib
import json
import os
import pickle
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import torch
from torch import nn

from freezedsl.errors import ModelLoadError, UsageError
from freezedsl.fsutil import atomic_write

__all__ = [
    "MANIFEST_KEY",
    "STATE_DICT_KEYS",
    "LoadedModel",
    "atomic_write",
    "build_arch",
    "canonical_name",
    "load_model",
    "save_model",
]

#: Checkpoint entries that may hold the model's weights, in the order they are tried.
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module")
#: Checkpoint entry that holds a freezedsl manifest (see :mod:`freezedsl.manifest`).
MANIFEST_KEY = "freezedsl_manifest"
#: Name of the manifest inside a TorchScript archive (``_extra_files``).
TORCHSCRIPT_MANIFEST = "freezedsl_manifest.json"

_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_INNER_WRAPPERS = ("._orig_mod.", "._checkpoint_wrapped_module.", "._fsdp_wrapped_module.")
_ARCH_RE = re.compile(
    r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)"
    r":(?P<attr>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)"
    r"(?:\((?P<args>.*)\))?$",
    re.DOTALL,
)
_ARCH_FORM = "expected 'package.module:callable' (e.g. torchvision.models:resnet18)"
_MAX_LISTED = 3

Kind = Literal["pickle", "state_dict", "torchscript", "arch"]


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


# --------------------------------------------------------------------------- names


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


# ------------------------------------------------------------------- architectures


def _is_arch_spec(spec: str) -> bool:
    return ":" in spec and not os.path.exists(spec) and _ARCH_RE.match(spec.strip()) is not None


def _one_line(text: object, limit: int = 200) -> str:
    """Squash an exception text into one short line for an error message."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _exc_text(exc: BaseException) -> str:
    text = _one_line(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _parse_call_args(arch: str, args: str) -> tuple[list[Any], dict[str, Any]]:
    """Literal arguments of ``callable(...)``; parsed with ``ast``, never evaluated."""
    try:
        tree = ast.parse(f"f({args})", mode="eval")
    except SyntaxError as exc:
        raise ModelLoadError(
            f"cannot parse the arguments of architecture '{arch}': {exc.msg}; "
            "expected literals such as callable(num_classes=10, name='x')"
        ) from None
    call = tree.body
    assert isinstance(call, ast.Call)
    not_literal = ModelLoadError(
        f"the arguments of architecture '{arch}' must be Python literals (numbers, strings, "
        "True/False/None, tuples, lists, dicts), e.g. callable(num_classes=10)"
    )
    if any(isinstance(n, ast.Starred) for n in call.args) or any(
        kw.arg is None for kw in call.keywords
    ):
        raise not_literal
    try:
        positional = [ast.literal_eval(node) for node in call.args]
        keywords = {str(kw.arg): ast.literal_eval(kw.value) for kw in call.keywords}
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise not_literal from None
    return positional, keywords


def build_arch(arch: str, *, meta: bool) -> nn.Module:
    """Build ``package.module:callable`` or ``package.module:callable(k=literal, ...)``.

    With ``meta`` the module is created under ``torch.device("meta")``: shapes and names
    without memory or initialisation time, which is all rule compilation needs.
    """
    spec = arch.strip()
    match = _ARCH_RE.match(spec)
    if match is None:
        raise ModelLoadError(f"'{arch}' is not an architecture; {_ARCH_FORM}")
    module_name, attr_path = match["module"], match["attr"]
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    if match["args"] is not None:
        args, kwargs = _parse_call_args(arch, match["args"])
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelLoadError(
            f"cannot import module '{module_name}' for architecture '{arch}': {_one_line(exc)}; "
            f"{_ARCH_FORM}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any import-time failure of user code
        raise ModelLoadError(
            f"importing module '{module_name}' for architecture '{arch}' failed: {_exc_text(exc)}"
        ) from None
    owner = module_name
    for part in attr_path.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(target) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"did you mean '{module_name}:{close[0]}'?" if close else _ARCH_FORM
            raise ModelLoadError(f"'{owner}' has no attribute '{part}' (architecture '{arch}'); {hint}")
        target = getattr(target, part)
        owner = f"{owner}.{part}"
    if not callable(target):
        raise ModelLoadError(
            f"architecture '{arch}' names a {type(target).__name__}, not a callable that returns "
            "an nn.Module"
        )
    try:
        with torch.device("meta") if meta else contextlib.nullcontext():
            module = target(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the user's builder may raise anything
        raise ModelLoadError(f"building architecture '{arch}' failed: {_exc_text(exc)}") from None
    if not isinstance(module, nn.Module):
        raise ModelLoadError(
            f"architecture '{arch}' returned a {type(module).__name__}, not an nn.Module; "
            "name a model class or a function that builds one"
        )
    return module


# -------------------------------------------------------------------- file sniffing


def _sniff(path: str) -> Literal["zip", "torchscript", "legacy"]:
    """Classify a file by its bytes alone; raise the one-line error for unusable files."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        raise ModelLoadError(
            f"{path} does not exist; expected a model file or an architecture like "
            "torchvision.models:resnet18"
        ) from None
    except IsADirectoryError:
        raise ModelLoadError(f"{path} is a directory; {_directory_hint(path)}") from None
    except PermissionError:
        raise ModelLoadError(f"{path} cannot be read: permission denied") from None
    except OSError as exc:
        raise ModelLoadError(f"{path} cannot be read: {exc.strerror or _one_line(exc)}") from None
    if not head:
        raise ModelLoadError(
            f"{path} is empty (0 bytes); expected a file written by torch.save or torch.jit.save"
        )
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, EOFError):
            raise ModelLoadError(
                f"{path} is truncated or corrupt (its zip directory cannot be read); "
                "save it again or copy it completely"
            ) from None
        if any(re.match(r"^[^/]+/code/", n) or n.endswith("/constants.pkl") for n in names):
            return "torchscript"
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return "zip"
        raise ModelLoadError(
            f"{path} is a zip archive but not a PyTorch file (no data.pkl inside); expected "
            "a file written by torch.save or torch.jit.save"
        )
    if head[:1] == b"\x80":  # pickle protocol 2+: torch.save's legacy (pre-1.6) format
        return "legacy"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 1 << 30:
        raise ModelLoadError(
            f"{path} looks like a safetensors file, which freezedsl does not read yet; "
            "convert it with torch.save(safetensors.torch.load_file(path), 'model.pt')"
        )
    looks = "text" if _is_text(head) else "unknown binary data"
    raise ModelLoadError(
        f"{path} is not a PyTorch file (it holds {looks}); expected a state dict or "
        "checkpoint written by torch.save, or a TorchScript archive"
    )


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch >= 32 or ch in b"\t\r\n" for ch in head)


def _directory_hint(path: str) -> str:
    try:
        entries = sorted(os.listdir(path))
    except OSError:
        entries = []
    found = [e for e in entries if e.endswith((".pt", ".pth", ".bin", ".ckpt"))]
    if found:
        shown = ", ".join(os.path.join(path, e) for e in found[:_MAX_LISTED])
        return f"pass one of its model files ({shown})"
    return "pass a model file written by torch.save or torch.jit.save"


# ----------------------------------------------------------------------- torch.load


class _PickledObject(Exception):
    """The file needs a global that ``weights_only`` loading refuses to import."""

    def __init__(self, global_name: str) -> None:
        super().__init__(global_name)
        self.global_name = global_name


def _torch_reason(exc: BaseException) -> str:
    """The informative tail of torch's (very long) load error."""
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1].split("Check the documentation", 1)[0]
    return _one_line(text) or type(exc).__name__


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hide torch's deprecation chatter (jit, load): the CLI speaks for itself."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _load_weights_only(path: str, fmt: str, map_location: str) -> object:
    try:
        with _quiet():
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        name = _unsafe_global(path, fmt, exc)
        if name:
            raise _PickledObject(name) from None
        raise ModelLoadError(_corrupt(path, fmt, exc)) from None
    except (EOFError, RuntimeError, ValueError, KeyError, TypeError, OSError) as exc:
        if isinstance(exc, RuntimeError) and "device" in str(exc).lower():
            raise ModelLoadError(
                f"{path} cannot be loaded onto '{map_location}': {_torch_reason(exc)}"
            ) from None
        raise ModelLoadError(_corrupt(path, fmt, exc)) from None


def _unsafe_global(path: str, fmt: str, exc: BaseException) -> str | None:
    """The global that made ``weights_only`` refuse the file, found without importing it.

    torch names the first one it met (the outer class, e.g. ResNet rather than its
    BasicBlock) in wording that varies between versions and cases; if that is not
    found, zip checkpoints are scanned opcode by opcode, which executes nothing.
    """
    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
    if found:
        return found[1]
    if fmt == "zip":
        with contextlib.suppress(Exception):
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
            if names:
                return str(names[0])
    return None


def _corrupt(path: str, fmt: str, exc: BaseException) -> str:
    text = str(exc)
    # torch.save's legacy format starts with a pickled magic number (protocol 2, no
    # FRAME opcode); pickle.dumps() output fails on the magic number or on FRAME (149).
    if fmt == "legacy" and not isinstance(exc, EOFError) and (
        "magic number" in text or "Unsupported operand 149" in text
    ):
        return (
            f"{path} is a Python pickle but not a torch.save file ({_torch_reason(exc)}); "
            "save the model with torch.save"
        )
    return f"{path} is truncated or corrupt ({_torch_reason(exc)}); save it again"


def _load_trusted(path: str, map_location: str) -> object:
    try:
        with _quiet():
            return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - unpickling runs arbitrary code
        raise ModelLoadError(
            f"{path} could not be unpickled even with --trust-pickle: {_exc_text(exc)}"
        ) from None


def _pickle_refused(path: str, global_name: str) -> ModelLoadError:
    return ModelLoadError(
        f"{path} is a pickled Python object (it references {global_name}); unpickling it "
        "can run arbitrary code. Pass --trust-pickle only if you trust where the file came "
        "from, or save a state dict (torch.save(model.state_dict(), ...)) and pass --arch."
    )


# ------------------------------------------------------------------- state dicts


def _is_state_dict(obj: object) -> bool:
    if not isinstance(obj, Mapping) or not obj:
        return False
    return all(
        isinstance(k, str) and (isinstance(v, torch.Tensor) or k.endswith("_extra_state"))
        for k, v in obj.items()
    ) and any(isinstance(v, torch.Tensor) for v in obj.values())


def _describe(obj: object) -> str:
    if isinstance(obj, Mapping):
        keys = ", ".join(repr(k) for k in list(obj)[:_MAX_LISTED])
        more = ", ..." if len(obj) > _MAX_LISTED else ""
        return f"a dict with keys {keys}{more}" if obj else "an empty dict"
    return f"a {type(obj).__name__}"


def _split_checkpoint(
    obj: object, path: str
) -> tuple[dict[str, torch.Tensor], dict[str, object], dict[str, Any] | None, str | None]:
    """(state dict, other entries, manifest, key the state dict was under)."""
    if _is_state_dict(obj):
        assert isinstance(obj, Mapping)
        return dict(obj), {}, None, None
    if isinstance(obj, Mapping):
        for key in STATE_DICT_KEYS:
            if key in obj and _is_state_dict(obj[key]):
                extra = {k: v for k, v in obj.items() if k not in (key, MANIFEST_KEY)}
                manifest = obj.get(MANIFEST_KEY)
                if manifest is not None and not isinstance(manifest, dict):
                    raise ModelLoadError(
                        f"{path} has a '{MANIFEST_KEY}' entry that is a "
                        f"{type(manifest).__name__}, not a dict; remove it or save it again"
                    )
                return dict(obj[key]), extra, manifest, key
        nested = [k for k, v in obj.items() if _is_state_dict(v)]
        if nested:
            raise ModelLoadError(
                f"{path} keeps its weights under {nested[0]!r}; expected them under one of "
                f"{', '.join(repr(k) for k in STATE_DICT_KEYS)} (re-save with "
                f"ckpt['state_dict'] = ckpt.pop({nested[0]!r}))"
            )
        if not any(isinstance(v, torch.Tensor) for v in obj.values()):
            raise ModelLoadError(
                f"{path} holds {_describe(obj)} but no tensors; expected a state dict or a "
                "checkpoint with a 'state_dict' entry"
            )
    raise ModelLoadError(
        f"{path} holds {_describe(obj)}, not a state dict; expected a dict of tensors or a "
        "checkpoint with a 'state_dict' entry"
    )


def _rename_to_model(state: dict[str, torch.Tensor], module: nn.Module) -> dict[str, torch.Tensor]:
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


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (", ..." if len(names) > _MAX_LISTED else "")


def _count(items: list[str], noun: str) -> str:
    plural = noun + ("es" if noun.endswith("h") else "s")
    return f"{len(items)} {noun if len(items) == 1 else plural}"


def _check_fit(state: dict[str, torch.Tensor], module: nn.Module, path: str, arch: str) -> None:
    """Compare keys and shapes first, so the error lists them in one line."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: file {_shape(v)} vs model {_shape(expected[k])}"
        for k, v in state.items()
        if k in expected
        and isinstance(v, torch.Tensor)
        and isinstance(expected[k], torch.Tensor)
        and v.shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"{_count(missing, 'missing key')} ({_listed(missing)})")
    if unexpected:
        problems.append(f"{_count(unexpected, 'unexpected key')} ({_listed(unexpected)})")
    if mismatched:
        problems.append(f"{_count(mismatched, 'shape mismatch')} ({_listed(mismatched)})")
    if problems:
        raise ModelLoadError(
            f"{path} does not fit --arch '{arch}': {'; '.join(problems)}; check that --arch "
            "builds the model that was saved (same class and arguments)"
        )


def _load_state(state: dict[str, torch.Tensor], path: str, arch: str, *, meta: bool) -> nn.Module:
    # Built on CPU and filled by copying, not on meta with load_state_dict(assign=True):
    # assigning replaces each Parameter separately, which unties tied weights (a GPT's
    # lm_head and embedding) and leaves non-persistent buffers on meta.
    module = build_arch(arch, meta=meta)
    state = _rename_to_model(state, module)
    _check_fit(state, module, path, arch)
    if not meta:
        try:
            module.load_state_dict(state, strict=True)
        except Exception as exc:  # noqa: BLE001 - custom _load_from_state_dict hooks
            raise ModelLoadError(f"{path} does not fit --arch '{arch}': {_exc_text(exc)}") from None
    return module


# ----------------------------------------------------------------------- load_model


def load_model(
    spec: str,
    *,
    arch: str | None = None,
    trust_pickle: bool = False,
    meta: bool | None = None,
    map_location: str = "cpu",
    apply_manifest: bool = True,
) -> LoadedModel:
    """Load MODEL (an architecture or a file) without unpickling untrusted code.

    ``meta``: for an architecture spec, build on the meta device (``None`` means yes).
    For a state dict file ``True`` checks that the weights fit but keeps the module on
    meta; ``None``/``False`` load the weights. Pickles and TorchScript always carry
    their weights. ``apply_manifest`` restores requires_grad from a manifest stored in
    the file, because a state dict cannot carry it.
    """
    if _is_arch_spec(spec):
        if arch is not None:
            raise UsageError(
                f"--arch is only used with a state dict file; '{spec}' is already an "
                "architecture, pass it alone"
            )
        on_meta = meta is not False
        module = build_arch(spec, meta=on_meta)
        return LoadedModel(module, "arch", spec, spec, on_meta)

    path = spec
    _check_device(map_location)
    fmt = _sniff(path)
    if fmt == "torchscript":
        if arch is not None:
            raise UsageError(
                f"--arch is only used with a state dict; {path} is a TorchScript archive "
                "that carries its own architecture"
            )
        return _load_torchscript(path, map_location, apply_manifest)

    try:
        obj = _load_weights_only(path, fmt, map_location)
    except _PickledObject as found:
        if not trust_pickle:
            raise _pickle_refused(path, found.global_name) from None
        obj = _load_trusted(path, map_location)
        loaded = _as_pickled_module(obj, path)
        if loaded is not None:
            if arch is not None:
                raise UsageError(
                    f"--arch is only used with a state dict; {path} holds a pickled "
                    f"{type(loaded.module).__name__} that carries its own architecture"
                )
            if apply_manifest and loaded.manifest is not None:
                _apply(loaded.module, loaded.manifest, path)
            return loaded
        # A trusted checkpoint that only needed pickle for its extras (an argparse
        # Namespace, numpy arrays...): continue as a state dict.

    state, extra, manifest, key = _split_checkpoint(obj, path)
    if arch is None:
        raise ModelLoadError(
            f"{path} holds a state dict ({len(state)} tensors) but no architecture; pass "
            "--arch package.module:callable (e.g. torchvision.models:resnet18)"
        )
    on_meta = meta is True
    module = _load_state(state, path, arch, meta=on_meta)
    if apply_manifest and manifest is not None:
        _apply(module, manifest, path)
    return LoadedModel(module, "state_dict", spec, arch, on_meta, extra, manifest, key)


def _check_device(map_location: str) -> None:
    try:
        device = torch.device(map_location)
    except (RuntimeError, TypeError, ValueError):
        raise UsageError(
            f"map_location '{map_location}' is not a device; expected e.g. 'cpu' or 'cuda:0'"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            f"map_location '{map_location}' needs CUDA, which this machine does not have; "
            "load onto 'cpu'"
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
        f"{path} holds {_describe(obj)}, not a model; expected a pickled nn.Module, a "
        "checkpoint with one under 'model', or a state dict"
    )


def _load_torchscript(path: str, map_location: str, apply_manifest: bool) -> LoadedModel:
    files: dict[str, Any] = {TORCHSCRIPT_MANIFEST: ""}
    try:
        with _quiet():
            module = torch.jit.load(path, map_location=map_location, _extra_files=files)
    except Exception as exc:  # noqa: BLE001 - jit raises many unrelated types
        raise ModelLoadError(
            f"{path} is a TorchScript archive that cannot be loaded: {_exc_text(exc)}"
        ) from None
    manifest: dict[str, Any] | None = None
    raw = files.get(TORCHSCRIPT_MANIFEST)
    if raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise ModelLoadError(
                f"{path} has a {TORCHSCRIPT_MANIFEST} that is not valid JSON; save it again"
            ) from None
        manifest = parsed if isinstance(parsed, dict) else None
    if apply_manifest and manifest is not None:
        _apply(module, manifest, path)
    return LoadedModel(module, "torchscript", path, None, False, {}, manifest)


# ---------------------------------------------------------------------------- saving


def _plain(manifest: dict[str, Any], out: str) -> dict[str, Any]:
    """Round-trip through JSON so the saved manifest loads under ``weights_only``
    (a ``TorchVersion`` or numpy scalar would make the checkpoint need pickle)."""
    try:
        plain = json.loads(json.dumps(manifest))
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"cannot write {out}: the manifest is not plain JSON data ({_one_line(exc)})"
        ) from None
    assert isinstance(plain, dict)
    return plain


def save_model(
    loaded: LoadedModel, out: str | os.PathLike[str], *, manifest: dict[str, Any] | None = None
) -> None:
    """Write ``loaded`` back in its own kind, atomically, never over its source file.

    State dicts cannot carry requires_grad, so state-dict/arch saves are checkpoints
    ``{"state_dict" (or the key it came from), **extra, "freezedsl_manifest"}``.
    Pickles and TorchScript keep requires_grad in the file itself; the manifest goes
    into a pickled checkpoint dict (a bare pickled module has no place for it: use
    :func:`freezedsl.manifest.save_manifest` beside it) or a TorchScript extra file.
    Without ``manifest`` one is made from the module's current flags wherever one is
    needed or was loaded, so a stored manifest never contradicts the weights it sits by.
    """
    out_s = os.fspath(out)
    if loaded.on_meta:
        raise UsageError(
            f"cannot write {out_s}: the model was built on the meta device (no weights); "
            "load it with meta=False to build real weights before saving"
        )
    if (
        loaded.kind != "arch"
        and os.path.exists(loaded.source)
        and os.path.exists(out_s)
        and os.path.samefile(loaded.source, out_s)
    ):
        raise UsageError(
            f"the output {out_s} is the input file; write to a new path so the original "
            "stays intact"
        )
    module = loaded.module
    if manifest is None and (loaded.kind in ("state_dict", "arch") or loaded.manifest):
        from freezedsl.manifest import make_manifest

        manifest = make_manifest(module)
    if manifest is not None:
        manifest = _plain(manifest, out_s)
    writer: Callable[[IO[bytes]], None]
    if loaded.kind == "torchscript":
        files = {} if manifest is None else {TORCHSCRIPT_MANIFEST: json.dumps(manifest)}

        def writer(fh: IO[bytes]) -> None:
            with _quiet():
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

    else:
        key = loaded.checkpoint_key or "state_dict"
        data = {key: module.state_dict(), **loaded.extra, MANIFEST_KEY: manifest}

        def writer(fh: IO[bytes]) -> None:
            torch.save(data, fh)

    atomic_write(out_s, writer)
