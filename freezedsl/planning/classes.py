"""Class names of modules and dtypes, as selectors and reports see them.

``type=`` matches a module's class *or a base class* by name, so the names of the whole
hierarchy are read once per class and cached; TorchScript modules are resolved to the
Python class they were scripted from when it is importable (nothing is imported).
"""

from __future__ import annotations

from typing import Any

SCRIPT_CLASSES = ("RecursiveScriptModule", "ScriptModule", "TopLevelTracedModule", "TracedModule")
_CLASS_CACHE: dict[type, tuple[tuple[str, ...], str]] = {}
_DTYPE_CACHE: dict[Any, tuple[str, bool]] = {}


def class_names(module: Any) -> tuple[tuple[str, ...], str]:
    """(class and base class names, dotted name) of a module."""
    cls = type(module)
    if cls.__name__ in SCRIPT_CLASSES:
        return _script_class_names(module, cls.__name__)  # per instance: not cached
    return class_info_of(cls)


def class_info_of(cls: type) -> tuple[tuple[str, ...], str]:
    cached = _CLASS_CACHE.get(cls)
    if cached is None:
        names = tuple(c.__name__ for c in cls.__mro__ if c.__name__ != "object")
        cached = _CLASS_CACHE[cls] = names, f"{cls.__module__}.{cls.__qualname__}"
    return cached


def _script_class_names(module: Any, wrapper: str) -> tuple[tuple[str, ...], str]:
    """The Python class a TorchScript module was scripted from, when it is importable.

    TorchScript keeps ``__torch__.pkg.mod.Class``; if ``pkg.mod`` is already imported
    (it usually is in the process that scripted or loaded the model) the real class
    gives base classes and the dotted name; nothing is imported here.
    """
    import sys

    original = str(getattr(module, "original_name", None) or wrapper)
    try:
        qualified = module._c._type().qualified_name()
    except Exception:  # noqa: BLE001 - private API; fall back to the short name
        qualified = ""
    qualified = qualified.removeprefix("__torch__.")
    mod_name, _, cls_name = qualified.rpartition(".")
    owner = sys.modules.get(mod_name) if mod_name else None
    real = getattr(owner, cls_name, None) if owner is not None else None
    if isinstance(real, type):
        names = tuple(c.__name__ for c in real.__mro__ if c.__name__ != "object")
        return names + (wrapper,), f"{real.__module__}.{real.__qualname__}"
    return (original, wrapper), qualified or original


def dtype_info(dtype: Any) -> tuple[str, bool]:
    """(short dtype name, whether tensors of it can require gradients)."""
    info = _DTYPE_CACHE.get(dtype)
    if info is None:
        can = bool(getattr(dtype, "is_floating_point", False) or getattr(dtype, "is_complex", False))
        info = (str(dtype).replace("torch.", ""), can)
        _DTYPE_CACHE[dtype] = info
    return info

