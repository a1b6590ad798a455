"""Bounded ``weights_only`` loading: read the pickle's opcodes before building anything.

``torch.load(weights_only=True)`` refuses globals outside an allow-list, so a hostile
checkpoint cannot run code. It can still cost unbounded time or memory with globals
that *are* allowed: a 798-byte pickle whose dict key is 60 levels of tuples that share
their items (memo references) makes hashing the key take about 2**60 steps, and a
387-byte pickle calls ``bytearray(3 << 30)``. :func:`scan_pickle` walks the opcodes
(:func:`pickletools.genops`, which executes nothing) over a model of the unpickler's
stack that keeps, per object, only its *expanded size* (how many objects a recursive
walk of it -- hashing, comparing, printing, saving -- visits), its nesting depth and
the largest integer inside it. The file is refused, before torch sees it, when

* an object's expanded size exceeds :data:`EXPANDED_BASE` + :data:`EXPANDED_PER_OP`
  times the number of opcodes (plain checkpoints stay far below: sharing in them is
  a dtype or storage referenced by each tensor);
* objects nest deeper than :data:`MAX_DEPTH` levels;
* a call that allocates memory in proportion to an integer argument (``bytearray``,
  a tensor class, a storage) or a storage record gets an integer above
  :data:`ALLOC_BASE` plus the file's size in bytes (legitimate storage sizes are
  bounded by the bytes that hold them);
* the stack is popped when empty, or a memo entry is read that was never written.

Work is then linear in the file's size. Malformed pickles that pass the scan and still
fail inside torch (an unknown codec, an attribute that cannot be set...) are reported
as corrupt, never as an internal error.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import pickletools
import re
import zipfile
from collections.abc import Iterator
from typing import IO

import torch

from freezedsl.errors import ModelLoadError
from freezedsl.loaders.base import exc_text, one_line, quiet

__all__ = [
    "ALLOC_BASE",
    "EXPANDED_BASE",
    "EXPANDED_PER_OP",
    "MAX_DEPTH",
    "PickledObject",
    "load_trusted",
    "load_weights_only",
    "scan_pickle",
]

#: Objects a recursive walk of one unpickled object may visit: this plus
#: :data:`EXPANDED_PER_OP` per opcode of the pickle.
EXPANDED_BASE = 1_000_000
EXPANDED_PER_OP = 16
#: Deepest nesting of containers in a checkpoint (real ones nest under 20 levels).
MAX_DEPTH = 200
#: Largest integer argument of an allocating call, beyond the file's size in bytes.
ALLOC_BASE = 16 << 20

# Calls whose memory grows with an integer argument: bytearray(n), torch.FloatTensor(n),
# a storage of n elements. Tensor *rebuild* functions are not among them: torch checks
# their sizes against the storage they view.
_ALLOCATES = re.compile(r"^(builtins|__builtin__|_codecs)\.|Tensor$|Storage$|\.Parameter$")

_PUSH_ONE = frozenset(
    "INT BININT BININT1 BININT2 LONG LONG1 LONG4 STRING BINSTRING SHORT_BINSTRING BINBYTES "
    "SHORT_BINBYTES BINBYTES8 BYTEARRAY8 UNICODE SHORT_BINUNICODE BINUNICODE BINUNICODE8 "
    "FLOAT BINFLOAT NONE NEWTRUE NEWFALSE EMPTY_TUPLE EMPTY_LIST EMPTY_DICT EMPTY_SET "
    "PERSID EXT1 EXT2 EXT4 NEXT_BUFFER".split()
)
_INTS = frozenset("INT BININT BININT1 BININT2 LONG LONG1 LONG4".split())
_NO_STACK = frozenset("PROTO FRAME STOP READONLY_BUFFER".split())
_FROM_MARK = {"TUPLE": True, "LIST": True, "DICT": True, "FROZENSET": True, "INST": True, "OBJ": True}
_INTO_TOP_FROM_MARK = frozenset({"APPENDS", "SETITEMS", "ADDITEMS"})
_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


class _Obj:
    """What the scan knows about one object on the simulated stack."""

    __slots__ = ("depth", "name", "size", "top_int")

    def __init__(self, size: int = 1, depth: int = 0, top_int: int = 0, name: str | None = None) -> None:
        self.size = size
        self.depth = depth
        self.top_int = top_int
        self.name = name  # the global's dotted name, for a GLOBAL / STACK_GLOBAL


class _Refused(Exception):
    pass


class _Scan:
    def __init__(self, path: str, file_size: int, ops: int) -> None:
        self.path = path
        self.alloc_limit = ALLOC_BASE + file_size
        self.size_limit = EXPANDED_BASE + EXPANDED_PER_OP * ops
        self.stack: list[_Obj] = []
        self.marks: list[int] = []
        self.memo: dict[int, _Obj] = {}

    def pop(self, pos: int) -> _Obj:
        floor = self.marks[-1] if self.marks else 0
        if len(self.stack) <= floor:
            raise _Refused(f"its pickle takes an item from an empty stack at byte {pos}")
        return self.stack.pop()

    def pop_mark(self, pos: int) -> list[_Obj]:
        if not self.marks:
            raise _Refused(f"its pickle closes a group that was never opened at byte {pos}")
        floor = self.marks.pop()
        items = self.stack[floor:]
        del self.stack[floor:]
        return items

    def combine(self, items: list[_Obj], pos: int, into: _Obj | None = None) -> _Obj:
        size = (into.size if into else 1) + sum(i.size for i in items)
        depth = max([into.depth - 1 if into else 0, *(i.depth for i in items)]) + 1
        top = max([into.top_int if into else 0, *(i.top_int for i in items)])
        if size > self.size_limit:
            raise _Refused(
                f"its pickle builds an object that shares its parts so often that walking it "
                f"would visit over {self.size_limit:,} objects (at byte {pos}); a checkpoint "
                "never needs that"
            )
        if depth > MAX_DEPTH:
            raise _Refused(
                f"its pickle nests objects more than {MAX_DEPTH} levels deep (at byte {pos})"
            )
        if into is None:
            return _Obj(size, depth, top)
        into.size, into.depth, into.top_int = size, depth, top
        return into

    def check_alloc(self, call: _Obj, args: _Obj, pos: int, what: str | None = None) -> None:
        name = what or call.name
        if name and (what or _ALLOCATES.search(name)) and args.top_int > self.alloc_limit:
            raise _Refused(
                f"its pickle asks {name} for {args.top_int:,} units of memory (at byte {pos}), "
                f"more than the file's size allows (limit {self.alloc_limit:,})"
            )

    def step(self, name: str, arg: object, pos: int) -> None:
        if name in _PUSH_ONE:
            top = abs(arg) if name in _INTS and isinstance(arg, int) else 0
            self.stack.append(_Obj(top_int=top))
        elif name in _NO_STACK:
            if name == "STOP":
                self.pop(pos)
        elif name == "MARK":
            self.marks.append(len(self.stack))
        elif name in _FROM_MARK:
            self.stack.append(self.combine(self.pop_mark(pos), pos))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = [self.pop(pos) for _ in range(n)]
            self.stack.append(self.combine(items, pos))
        elif name == "GLOBAL":
            self.stack.append(_Obj(name=str(arg).replace(" ", ".")))
        elif name == "STACK_GLOBAL":
            attr, module = self.pop(pos), self.pop(pos)
            del attr, module  # names pushed as strings; not tracked by value
            self.stack.append(_Obj(name="<stack global>"))
        elif name in ("REDUCE", "NEWOBJ"):
            args, call = self.pop(pos), self.pop(pos)
            self.check_alloc(call, args, pos)
            self.stack.append(self.combine([args], pos))
        elif name == "NEWOBJ_EX":
            kwargs, args, call = self.pop(pos), self.pop(pos), self.pop(pos)
            self.check_alloc(call, args, pos)
            self.stack.append(self.combine([args, kwargs], pos))
        elif name == "BINPERSID":
            pid = self.pop(pos)
            self.check_alloc(pid, pid, pos, what="a storage record")
            self.stack.append(_Obj())
        elif name in ("APPEND", "BUILD"):
            item = self.pop(pos)
            self.combine([item], pos, into=self.peek(pos))
        elif name == "SETITEM":
            value, key = self.pop(pos), self.pop(pos)
            self.combine([key, value], pos, into=self.peek(pos))
        elif name in _INTO_TOP_FROM_MARK:
            items = self.pop_mark(pos)
            self.combine(items, pos, into=self.peek(pos))
        elif name in _PUTS:
            self.memo[int(arg)] = self.peek(pos)  # type: ignore[call-overload]
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = self.peek(pos)
        elif name in _GETS:
            found = self.memo.get(int(arg))  # type: ignore[call-overload]
            if found is None:
                raise _Refused(f"its pickle reads memo entry {arg} that was never written (at byte {pos})")
            self.stack.append(found)
        elif name == "POP":
            self.pop(pos)
        elif name == "POP_MARK":
            self.pop_mark(pos)
        elif name == "DUP":
            self.stack.append(self.peek(pos))
        else:  # an opcode the weights_only unpickler refuses anyway
            raise _Stop

    def peek(self, pos: int) -> _Obj:
        floor = self.marks[-1] if self.marks else 0
        if len(self.stack) <= floor:
            raise _Refused(f"its pickle takes an item from an empty stack at byte {pos}")
        return self.stack[-1]


class _Stop(Exception):
    """The scan met an opcode it does not model; torch's own checks take over."""


def _pickles(path: str, fmt: str) -> Iterator[tuple[IO[bytes], int]]:
    """The pickle streams torch.load will read, each with the bytes it may use."""
    size = os.path.getsize(path)
    if fmt == "zip":
        with zipfile.ZipFile(path) as archive:
            total = 0
            for info in archive.infolist():
                total += info.file_size
                if info.compress_type != zipfile.ZIP_STORED and info.file_size > 4 * size + ALLOC_BASE:
                    raise _Refused(
                        f"its zip entry {one_line(info.filename)} expands from "
                        f"{info.compress_size:,} to {info.file_size:,} bytes"
                    )
            for info in archive.infolist():
                if info.filename == "data.pkl" or info.filename.endswith("/data.pkl"):
                    with archive.open(info) as fh:
                        yield io.BytesIO(fh.read()), size
                    return
    else:  # legacy: magic number, protocol, sys info, the object, storage keys
        with open(path, "rb") as fh:
            for _ in range(5):
                if not fh.peek(1):
                    return
                yield fh, size


def scan_pickle(path: str, fmt: str) -> None:
    """Refuse (one-line :class:`ModelLoadError`) a pickle whose loading is unbounded."""
    try:
        for stream, size in _pickles(path, fmt):
            start = stream.tell()
            ops = _count_ops(stream)
            stream.seek(start)
            scan = _Scan(path, size, ops)
            try:
                for opcode, arg, pos in pickletools.genops(stream):
                    scan.step(opcode.name, arg, pos if pos is not None else -1)
                    if opcode.name == "STOP":
                        break
            except _Stop:
                return
    except _Refused as exc:
        raise ModelLoadError(f"{path} is refused as malformed or hostile: {exc}") from None
    except (ValueError, EOFError, zipfile.BadZipFile, OSError, UnicodeDecodeError, OverflowError):
        return  # malformed in a way torch reports itself (as truncated or corrupt)


def _count_ops(stream: IO[bytes]) -> int:
    count = 0
    with contextlib.suppress(ValueError, EOFError, UnicodeDecodeError, OverflowError):
        for opcode, _arg, _pos in pickletools.genops(stream):
            count += 1
            if opcode.name == "STOP":
                break
    return count


class PickledObject(Exception):
    """The file needs a global that ``weights_only`` loading refuses to import."""

    def __init__(self, global_name: str) -> None:
        super().__init__(global_name)
        self.global_name = global_name


def torch_reason(exc: BaseException) -> str:
    """The informative part of torch's (very long) load error, on one line."""
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1].split("Check the documentation", 1)[0]
    for boilerplate in ("Please file an issue", "This is an internal miniz error"):
        text = text.split(boilerplate, 1)[0]
    return one_line(text, limit=400) or type(exc).__name__


def load_weights_only(path: str, fmt: str, map_location: str) -> object:
    """``torch.load(weights_only=True)`` after :func:`scan_pickle`; one-line errors only."""
    scan_pickle(path, fmt)
    try:
        with quiet():
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        name = _unsafe_global(path, fmt, exc)
        if name:
            raise PickledObject(name) from None
        raise ModelLoadError(_corrupt(path, fmt, exc)) from None
    except RuntimeError as exc:
        if "device" in str(exc).lower() and "deserialize" in str(exc).lower():
            raise ModelLoadError(
                f"{path} cannot be loaded onto '{map_location}': {torch_reason(exc)}"
            ) from None
        raise ModelLoadError(_corrupt(path, fmt, exc)) from None
    except Exception as exc:  # noqa: BLE001 - see below
        # Every other failure of the allow-listed unpickler is a malformed file: an
        # empty stack (IndexError), an unknown codec (LookupError), an attribute that
        # cannot be set (AttributeError), a failed allocation (MemoryError)...
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
            f"{path} is a Python pickle but not a torch.save file ({torch_reason(exc)}); "
            "save the model with torch.save"
        )
    if isinstance(exc, MemoryError):
        return f"{path} asks for more memory than this machine has while loading; it is corrupt or hostile"
    reason = torch_reason(exc) if not isinstance(exc, RecursionError) else "nested too deeply"
    if type(exc).__name__ not in reason and not isinstance(exc, (pickle.UnpicklingError, RuntimeError, EOFError)):
        reason = f"{type(exc).__name__}: {reason}"
    return f"{path} is truncated or corrupt ({reason}); save it again"


def load_trusted(path: str, map_location: str) -> object:
    """``torch.load(weights_only=False)``: runs code from the file; only with consent."""
    try:
        with quiet():
            return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - unpickling runs arbitrary code
        raise ModelLoadError(
            f"{path} could not be unpickled even with --trust-pickle: {exc_text(exc)}"
        ) from None
