"""Architecture strings: ``package.module:callable``, imported and called on purpose.

An architecture string runs code exactly as ``python -c "import package.module;
package.module.callable()"`` would: that is its point (a module in the current
directory is found too, as ``python -c`` finds it; see :func:`_import`). A MODEL that names an existing
path -- a dangling symlink included -- is therefore always a file, never an
architecture, so a file called ``os:system('...')`` is read as bytes, not run.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import importlib
import inspect
import io
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from freezedsl.errors import ModelLoadError
from freezedsl.loaders.base import exc_text, one_line

_ARCH_RE = re.compile(
    r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)"
    r":(?P<attr>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)"
    r"(?:\((?P<args>.*)\))?$",
    re.DOTALL,
)
ARCH_FORM = "expected 'package.module:callable' (e.g. torchvision.models:resnet18)"


def is_arch_spec(spec: str) -> bool:
    """True for a string that is not a path and reads as ``package.module:callable``.

    ``lexists`` rather than ``exists``: a dangling symlink is still a file name the user
    gave, and must never be imported and called.
    """
    return ":" in spec and not os.path.lexists(spec) and _ARCH_RE.match(spec.strip()) is not None


def _parse_call_args(arch: str, args: str) -> tuple[list[Any], dict[str, Any]]:
    """Literal arguments of ``callable(...)``; parsed with ``ast``, never evaluated."""
    try:
        tree = ast.parse(f"f({args})", mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
        raise ModelLoadError(
            f"cannot parse the arguments of architecture '{one_line(arch)}': {reason}; "
            "expected literals such as callable(num_classes=10, name='x')"
        ) from None
    call = tree.body
    assert isinstance(call, ast.Call)
    not_literal = ModelLoadError(
        f"the arguments of architecture '{one_line(arch)}' must be Python literals (numbers, "
        "strings, True/False/None, tuples, lists, dicts), e.g. callable(num_classes=10)"
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


class _DownloadBlocked(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


@contextlib.contextmanager
def _no_downloads() -> Iterator[None]:
    """Building an architecture never downloads: torch.hub's downloader raises instead
    (torchvision's and timm's pretrained weights all come through it)."""
    import torch.hub

    def refuse(url: str, *args: object, **kwargs: object) -> None:
        raise _DownloadBlocked(str(url))

    real = torch.hub.download_url_to_file
    torch.hub.download_url_to_file = refuse
    said = io.StringIO()  # torch.hub prints "Downloading: ..." before it calls the downloader
    try:
        with contextlib.redirect_stderr(said):
            yield
    finally:
        torch.hub.download_url_to_file = real


def _offline_defaults(target: Any, kwargs: dict[str, Any], notes: list[str] | None) -> dict[str, Any]:
    """``weights_backbone=None`` for builders that would otherwise fetch a pretrained
    backbone (torchvision detection and segmentation models), unless the user chose."""
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return kwargs
    if "weights_backbone" in params and "weights_backbone" not in kwargs:
        default = params["weights_backbone"].default
        if default is not None and default is not inspect.Parameter.empty:
            kwargs = {**kwargs, "weights_backbone": None}
            if notes is not None:
                notes.append("passed weights_backbone=None so the backbone is not downloaded")
    return kwargs


def _import(module_name: str) -> Any:
    """Import ``module_name``; a module in the current directory is found too.

    ``python -c`` and ``python -m`` put the current directory on ``sys.path``; the
    ``freezedsl`` console script does not, so ``--arch mymodel:build`` next to the user's
    ``mymodel.py`` would fail only when run through it. The current directory is
    appended (not prepended) and only after a failed import of that very name, so an
    installed package always wins over a same-named file in the directory.
    """
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        top = module_name.split(".", 1)[0]
        cwd = os.getcwd()
        here = os.path.isfile(os.path.join(cwd, top + ".py")) or os.path.isdir(os.path.join(cwd, top))
        if exc.name != top or not here or cwd in sys.path:
            raise
    sys.path.append(cwd)
    importlib.invalidate_caches()
    return importlib.import_module(module_name)


def build_arch(
    arch: str, *, meta: bool, device: str | None = None, notes: list[str] | None = None
) -> nn.Module:
    """Build ``package.module:callable`` or ``package.module:callable(k=literal, ...)``.

    With ``meta`` the module is created under ``torch.device("meta")``: shapes and names
    without memory or initialisation time, which is all rule compilation needs. A
    builder that cannot run on meta (torchvision's RegNets copy tensors while building)
    is built on ``device`` (default CPU) instead, and a note saying so is appended to
    ``notes``. Nothing is downloaded: see :func:`_no_downloads`.
    """
    spec = arch.strip()
    match = _ARCH_RE.match(spec)
    if match is None:
        raise ModelLoadError(f"'{one_line(arch)}' is not an architecture; {ARCH_FORM}")
    module_name, attr_path = match["module"], match["attr"]
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    if match["args"] is not None:
        args, kwargs = _parse_call_args(arch, match["args"])
    try:
        target: Any = _import(module_name)
    except ImportError as exc:
        raise ModelLoadError(
            f"cannot import module '{module_name}' for architecture '{arch}': {one_line(exc)}; "
            f"{ARCH_FORM}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any import-time failure of user code
        raise ModelLoadError(
            f"importing module '{module_name}' for architecture '{arch}' failed: {exc_text(exc)}"
        ) from None
    owner = module_name
    for part in attr_path.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(target) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"did you mean '{module_name}:{close[0]}'?" if close else ARCH_FORM
            raise ModelLoadError(f"'{owner}' has no attribute '{part}' (architecture '{arch}'); {hint}")
        target = getattr(target, part)
        owner = f"{owner}.{part}"
    if not callable(target):
        raise ModelLoadError(
            f"architecture '{arch}' names a {type(target).__name__}, not a callable that returns "
            "an nn.Module"
        )
    kwargs = _offline_defaults(target, kwargs, notes)
    try:
        module = _call(target, args, kwargs, "meta" if meta else device)
    except _DownloadBlocked as blocked:
        raise ModelLoadError(
            f"building architecture '{arch}' tried to download {blocked.url}; freezedsl never "
            "downloads: pass weights=None (and weights_backbone=None, or pretrained=False) "
            "in the architecture's arguments"
        ) from None
    except Exception as exc:  # noqa: BLE001 - the user's builder may raise anything
        if not meta:
            raise ModelLoadError(f"building architecture '{arch}' failed: {exc_text(exc)}") from None
        try:
            module = _call(target, args, kwargs, device)
        except Exception:  # noqa: BLE001 - report the first failure, it is the clearer one
            raise ModelLoadError(f"building architecture '{arch}' failed: {exc_text(exc)}") from None
        if notes is not None:
            notes.append(
                f"'{arch}' cannot be built on the meta device ({exc_text(exc)}); built it on "
                f"{device or 'cpu'} instead, which takes real memory"
            )
    if not isinstance(module, nn.Module):
        raise ModelLoadError(
            f"architecture '{arch}' returned a {type(module).__name__}, not an nn.Module; "
            "name a model class or a function that builds one"
        )
    return module


def _call(target: Any, args: list[Any], kwargs: dict[str, Any], device: str | None) -> Any:
    with _no_downloads(), torch.device(device) if device else contextlib.nullcontext():
        return target(*args, **kwargs)
