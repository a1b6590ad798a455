"""Small helpers shared by the syntax and planning layers (torch-free)."""

from __future__ import annotations

import contextlib
import gc
import operator

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any, TypeVar, dataclass_transform

    _T = TypeVar("_T")
else:  # typing costs a few milliseconds of start-up; only type checkers need it here

    def dataclass_transform(**kwargs):
        return lambda fn: fn


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while allocating many small acyclic objects."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# ------------------------------------------------------------------ frozen records
#
# The syntax tree and error spans are frozen dataclasses in all but name. Decorating
# classes with @dataclass costs a module import (dataclasses pulls in inspect) plus a
# generated-and-compiled set of methods per class: together more than half of what a
# bare interpreter takes to start, paid by every ``freezedsl check`` and ``fmt``.
# ``frozen_record`` gives the same classes -- same __init__ (compiled on first use),
# __repr__, __eq__, __hash__, __match_args__, frozen attributes -- and still answers
# dataclasses.fields()/replace()/asdict(): ``__dataclass_fields__`` is computed on
# first access from a real dataclass twin. tests/core/test_startup.py compares each
# record with @dataclass(frozen=True) applied to the same class body.

_MISSING: Any = object()


class _Factory:
    """The default of a field with a default_factory, in the generated __init__."""

    def __repr__(self) -> str:
        return "<factory>"


_HAS_FACTORY: Any = _Factory()


class RecordField:
    """What ``field()`` returns: one field's options, as for dataclasses.field()."""

    __slots__ = ("compare", "default", "default_factory", "kw_only", "repr")

    def __init__(
        self, default: Any, default_factory: Any, repr: bool, compare: bool, kw_only: bool
    ) -> None:
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare
        self.kw_only = kw_only


def field(
    *,
    default: Any = _MISSING,
    default_factory: Any = _MISSING,
    repr: bool = True,
    compare: bool = True,
    kw_only: bool = False,
) -> Any:
    """dataclasses.field() for :func:`frozen_record` classes (the options used here)."""
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return RecordField(default, default_factory, repr, compare, kw_only)


def _key_getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    if len(names) > 1:
        return operator.attrgetter(*names)
    if len(names) == 1:
        get = operator.attrgetter(names[0])
        return lambda obj: (get(obj),)
    return lambda obj: ()


class _DataclassInfo:
    """``__dataclass_fields__`` / ``__dataclass_params__``: built on first access."""

    def __init__(self, attr: str) -> None:
        self.attr = attr

    def __get__(self, obj: Any, owner: type) -> Any:
        twin = _dataclass_twin(owner)
        for attr in ("__dataclass_fields__", "__dataclass_params__"):
            setattr(owner, attr, getattr(twin, attr))
        return getattr(twin, self.attr)


def _dataclass_twin(cls: type) -> type:
    """@dataclass(frozen=True) applied to a copy of the record's class body."""
    import dataclasses

    fields: tuple[tuple[str, str, RecordField], ...] = cls.__record_fields__  # type: ignore[attr-defined]
    ns: dict[str, Any] = {"__annotations__": {}, "__module__": cls.__module__, "__qualname__": cls.__qualname__}
    for name, annotation, spec in fields:
        ns["__annotations__"][name] = annotation
        ns[name] = dataclasses.field(
            default=dataclasses.MISSING if spec.default is _MISSING else spec.default,
            default_factory=dataclasses.MISSING if spec.default_factory is _MISSING else spec.default_factory,
            repr=spec.repr,
            compare=spec.compare,
            kw_only=spec.kw_only,
        )
    return dataclasses.dataclass(frozen=True)(type(cls.__name__, (), ns))


def _compile_init(cls: type) -> Callable[..., None]:
    """The __init__ @dataclass(frozen=True) would write, compiled on first use."""
    fields: tuple[tuple[str, str, RecordField], ...] = cls.__record_fields__  # type: ignore[attr-defined]
    ns: dict[str, Any] = {"__set": object.__setattr__, "__HAS_FACTORY": _HAS_FACTORY}
    params: list[str] = []
    kw_params: list[str] = []
    body: list[str] = []
    for name, _annotation, spec in fields:
        if spec.default_factory is not _MISSING:
            ns[f"__factory_{name}"] = spec.default_factory
            param = f"{name}=__HAS_FACTORY"
            value = f"__factory_{name}() if {name} is __HAS_FACTORY else {name}"
        elif spec.default is not _MISSING:
            ns[f"__default_{name}"] = spec.default
            param, value = f"{name}=__default_{name}", name
        else:
            param, value = name, name
        (kw_params if spec.kw_only else params).append(param)
        body.append(f"    __set(self, {name!r}, {value})")
    if kw_params:
        params += ["*", *kw_params]
    source = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(body) or "    pass") + "\n"
    exec(compile(source, f"<frozen_record {cls.__qualname__}>", "exec"), ns)  # noqa: S102 - our own source
    init: Callable[..., None] = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = {name: annotation for name, annotation, _spec in fields} | {"return": None}
    return init


class _LazyInit:
    """A record's ``__init__`` until first used: then the compiled one replaces it.

    Any access goes through ``__get__`` (instantiation, ``cls.__init__``,
    inspect.signature), so nobody sees this placeholder's own signature.
    """

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        init = _compile_init(self.cls)
        type.__setattr__(self.cls, "__init__", init)
        return init if obj is None else init.__get__(obj, owner)


class _LazyDoc:
    """@dataclass's docstring of an undocumented class (``Name(signature)``), on first read."""

    def __get__(self, obj: Any, owner: type) -> str:
        import inspect

        try:
            text_sig = str(inspect.signature(owner)).replace(" -> None", "")
        except (TypeError, ValueError):  # pragma: no cover - as in dataclasses
            text_sig = ""
        doc = owner.__name__ + text_sig
        type.__setattr__(owner, "__doc__", doc)
        return doc


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def frozen_record(cls: type[_T]) -> type[_T]:
    """``@dataclass(frozen=True)`` without importing dataclasses (see above).

    Supports what freezedsl's records use: annotated fields, plain defaults and
    :func:`field` with default, default_factory, repr, compare and kw_only.
    """
    own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 - not inspect: its import is the cost avoided
    if any(getattr(base, "__record_fields__", None) for base in cls.__mro__[1:]):
        raise TypeError(f"{cls.__name__}: frozen_record classes cannot inherit fields")
    fields: list[tuple[str, str, RecordField]] = []
    seen_default = False
    for name, annotation in own.items():
        if not isinstance(annotation, str) or annotation.startswith(("ClassVar", "InitVar", "typing.")):
            raise TypeError(f"{cls.__name__}.{name}: unsupported annotation {annotation!r}")
        value = cls.__dict__.get(name, _MISSING)
        spec = value if isinstance(value, RecordField) else RecordField(value, _MISSING, True, True, False)
        if isinstance(value, RecordField):
            if spec.default is _MISSING:
                if name in cls.__dict__:
                    delattr(cls, name)
            else:
                setattr(cls, name, spec.default)
        has_default = spec.default is not _MISSING or spec.default_factory is not _MISSING
        if not spec.kw_only:
            if seen_default and not has_default:
                raise TypeError(f"non-default argument {name!r} follows default argument")
            seen_default = seen_default or has_default
        fields.append((name, annotation, spec))
    for method in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__", "__post_init__"):
        if method in cls.__dict__:
            raise TypeError(f"{cls.__name__} defines {method}; frozen_record does not support that")

    record: Any = cls
    record.__record_fields__ = tuple(fields)
    names = frozenset(name for name, _, _ in fields)
    key = _key_getter(tuple(name for name, _, spec in fields if spec.compare))
    shown = tuple(name for name, _, spec in fields if spec.repr)

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{self.__class__.__qualname__}({inner})"

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return key(self) == key(other)
        return NotImplemented

    def __hash__(self: Any) -> int:
        return hash(key(self))

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            from dataclasses import FrozenInstanceError

            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            from dataclasses import FrozenInstanceError

            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    methods: dict[str, Any] = {
        "__repr__": __repr__,
        "__eq__": __eq__,
        "__hash__": __hash__,
        "__setattr__": __setattr__,
        "__delattr__": __delattr__,
    }
    for name, fn in methods.items():
        fn.__qualname__ = f"{cls.__qualname__}.{name}"
        setattr(cls, name, fn)
    attributes = {
        "__init__": _LazyInit(cls),
        "__match_args__": tuple(name for name, _, spec in fields if not spec.kw_only),
        "__dataclass_fields__": _DataclassInfo("__dataclass_fields__"),
        "__dataclass_params__": _DataclassInfo("__dataclass_params__"),
    }
    if not cls.__doc__:
        attributes["__doc__"] = _LazyDoc()
    for name, value in attributes.items():
        setattr(cls, name, value)
    return cls


def replace(obj: _T, **changes: Any) -> _T:
    """dataclasses.replace() for :func:`frozen_record` instances, without importing dataclasses."""
    fields: tuple[tuple[str, str, RecordField], ...] = type(obj).__record_fields__  # type: ignore[attr-defined]
    for name, _annotation, _spec in fields:
        if name not in changes:
            changes[name] = getattr(obj, name)
    return type(obj)(**changes)
