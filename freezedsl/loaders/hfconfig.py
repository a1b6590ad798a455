"""Hugging Face architectures from a ``config.json``, without running a repository's code.

A ``save_pretrained`` folder names its model class in ``config.json``
(``"architectures": ["BertForSequenceClassification"]``); that class is looked up in
the installed ``transformers`` package only. A config that asks for the repository's
own code (``auto_map``, read with ``trust_remote_code=True`` by transformers) is refused
before transformers sees it: transformers would otherwise prompt on a terminal, and
running a folder's Python files is exactly what freezedsl never does. Such a model is
built by the user's own code instead: ``--arch mymodule:build``.

``transformers`` and ``safetensors`` are optional (the ``hf`` extra); they are imported
here, only when a Hugging Face file is given, and a missing one is one line naming
``pip install freezedsl[hf]``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from freezedsl.errors import ModelLoadError
from freezedsl.fsutil import unreadable_reason
from freezedsl.loaders.base import exc_text, one_line

#: A config.json is a few kilobytes; anything this large is not one.
MAX_CONFIG_BYTES = 16 << 20
#: ``--arch transformers:ClassName``: a transformers model class built from a config.
HF_ARCH_PREFIX = "transformers:"


def require(package: str, path: str) -> Any:
    """Import an optional Hugging Face package, or say in one line how to install it."""
    try:
        return importlib.import_module(package)
    except ImportError:
        raise ModelLoadError(
            f"{path} needs the Python package '{package}', which is not installed; "
            "install it with: pip install freezedsl[hf]"
        ) from None


@contextlib.contextmanager
def hf_quiet() -> Iterator[None]:
    """transformers' own chatter (config warnings, progress bars) never reaches the CLI."""
    transformers = importlib.import_module("transformers")
    hf_logging = transformers.utils.logging
    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logging.disable(logging.WARNING)
            try:
                yield
            finally:
                logging.disable(logging.NOTSET)
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def read_config(path: str) -> dict[str, Any]:
    """The JSON object in ``path``, refused in one line if it is not a config.json or
    asks for the repository's own code."""
    reason = unreadable_reason(path)
    if reason:
        raise ModelLoadError(f"{path} {reason}; expected a Hugging Face config.json")
    try:
        size = os.path.getsize(path)
        if size > MAX_CONFIG_BYTES:
            raise ModelLoadError(
                f"{path} is {size:,} bytes, too large for a config.json (limit {MAX_CONFIG_BYTES:,})"
            )
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise ModelLoadError(f"{path} does not exist; expected a Hugging Face config.json") from None
    except OSError as exc:
        raise ModelLoadError(f"{path} cannot be read: {exc.strerror or one_line(exc)}") from None
    except UnicodeDecodeError:
        raise ModelLoadError(f"{path} is not UTF-8 text; expected a Hugging Face config.json") from None
    except json.JSONDecodeError as exc:
        raise ModelLoadError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "expected a Hugging Face config.json"
        ) from None
    except RecursionError:
        raise ModelLoadError(f"{path} nests too deeply to be a config.json") from None
    if not isinstance(data, dict):
        raise ModelLoadError(
            f"{path} holds a JSON {type(data).__name__}, not an object; expected a Hugging Face config.json"
        )
    if "auto_map" in data:
        raise ModelLoadError(
            f"{path} asks for the model's own Python code (auto_map), which freezedsl never runs "
            "(that is transformers' trust_remote_code); build the model in your own module and "
            "pass --arch mymodule:build"
        )
    return data


def config_class_name(config: dict[str, Any], path: str) -> str:
    """The model class a config.json names in ``architectures``."""
    names = config.get("architectures")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ModelLoadError(
            f"{path} names no model class (\"architectures\": [\"BertModel\"] is missing); "
            "pass --arch transformers:ClassName"
        )
    if len(names) > 1:
        raise ModelLoadError(
            f"{path} names {len(names)} model classes ({', '.join(one_line(n) for n in names[:3])}); "
            "pass the one to build with --arch transformers:ClassName"
        )
    return names[0]


def model_class(name: str, where: str) -> type[nn.Module]:
    """A model class of the installed transformers package, by name (never remote code)."""
    transformers = require("transformers", where)
    shown = one_line(name, limit=80)
    if not name.isidentifier() or name.startswith("_"):
        raise ModelLoadError(f"{where}: '{shown}' is not a transformers model class name")
    try:
        cls = getattr(transformers, name)
    except Exception:  # noqa: BLE001 - AttributeError, or a lazy import that fails
        cls = None
    pretrained = getattr(transformers, "PreTrainedModel", None)
    if not (isinstance(cls, type) and pretrained is not None and issubclass(cls, pretrained)):
        raise ModelLoadError(
            f"{where} names the architecture '{shown}', which is not a model class of the "
            f"installed transformers {transformers.__version__}; freezedsl never runs a model's "
            "own code: upgrade transformers, or build the model yourself and pass --arch "
            "mymodule:build"
        )
    return cls


def load_config(path: str) -> Any:
    """transformers' config object for the config.json at ``path``, local files only."""
    read_config(path)  # refuses auto_map before transformers could prompt for it
    transformers = require("transformers", path)
    try:
        with hf_quiet():
            return transformers.AutoConfig.from_pretrained(
                path, local_files_only=True, trust_remote_code=False
            )
    except Exception as exc:  # noqa: BLE001 - transformers raises ValueError, KeyError, OSError...
        reason = one_line(str(exc).split("\n", 1)[0]) or type(exc).__name__
        raise ModelLoadError(f"{path} is not a usable Hugging Face config: {reason}") from None


def build_from_config(config_path: str, class_name: str | None, *, meta: bool) -> tuple[nn.Module, str]:
    """(model, description) for ``class_name`` (default: the config's architectures).

    On meta the model has shapes and names only; otherwise it is built on the CPU
    without random initialisation (every weight is loaded from the file next, and
    :func:`freezedsl.loaders.statedict.check_fit` refuses a file that misses one).
    """
    data = read_config(config_path)
    name = class_name or config_class_name(data, config_path)
    cls = model_class(name, config_path)
    config = load_config(config_path)
    transformers = require("transformers", config_path)
    what = f"transformers:{name} from {config_path}"
    try:
        with hf_quiet(), _no_init(transformers, meta):
            module = cls._from_config(config)  # type: ignore[attr-defined]
            # transformers ties weights while initialising them; no_init_weights skips both
            tie = getattr(module, "tie_weights", None)
            if callable(tie):
                tie()
    except Exception as exc:  # noqa: BLE001 - a config the class cannot build
        raise ModelLoadError(f"building {what} failed: {exc_text(exc)}") from None
    return module, what


@contextlib.contextmanager
def _no_init(transformers: Any, meta: bool) -> Iterator[None]:
    if meta:
        with torch.device("meta"):
            yield
        return
    init = getattr(transformers, "initialization", None) or importlib.import_module("transformers.initialization")
    no_init = getattr(init, "no_init_weights", None)
    with no_init() if no_init is not None else contextlib.nullcontext():
        yield


def split_hf_arch(arch: str | None) -> tuple[bool, str | None]:
    """(is a transformers class, class name) for ``--arch``; ``transformers:Auto`` is not."""
    if arch is None or not arch.strip().startswith(HF_ARCH_PREFIX):
        return False, None
    name = arch.strip()[len(HF_ARCH_PREFIX):]
    if "(" in name:
        return False, None  # transformers:fn(args): an ordinary architecture string
    return True, name


def from_pretrained(folder: str, config_path: str, class_name: str | None) -> nn.Module | None:
    """transformers' own loader, for checkpoints whose stored names are not the model's.

    transformers 5 renames and fuses some checkpoints while loading them (ViT's
    ``encoder.layer`` to ``layers``, Mixtral's per-expert ``w1``/``w2``/``w3`` into fused
    tensors) and reverses it in ``save_pretrained``; a plain key-by-key fit cannot see
    that. Only the installed class, only local files, no remote code. Returns None when
    transformers reports any missing, unexpected or mismatched weight, so the caller
    keeps its own (more precise) error.
    """
    data = read_config(config_path)
    cls = model_class(class_name or config_class_name(data, config_path), config_path)
    try:
        with hf_quiet():
            module, info = cls.from_pretrained(  # type: ignore[attr-defined]
                folder, local_files_only=True, trust_remote_code=False, output_loading_info=True
            )
    except Exception:  # noqa: BLE001 - a checkpoint transformers cannot load either
        return None
    if any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")):
        return None
    return module
