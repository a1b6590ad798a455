"""Bounded ``weights_only`` loading: read the pickle's opcodes before building anything.

``torch.load(weights_only=True)`` refuses globals outside an allow-list, so a hostile
checkpoint cannot run code. It can still cost unbounded time or memory with globals
that *are* allowed: a 798-byte pickle whose dict key is 60 levels of tuples that share
their items (memo references) makes hashing the key take about 2**60 steps, and a
387-byte pickle calls ``bytearray(3 << 30)``. :func:`scan_pickle` walks the opcodes
(a walk over the opcodes that executes nothing) over a model of the unpickler's
stack that keeps, per object, only its *expanded size* (how many objects a recursive
walk of it -- hashing, comparing, printing, saving -- visits), its nesting depth and
the largest integer inside it. The file is refused, before torch sees it, when

* an object's expanded size exceeds :data:`EXPANDED_BASE` + :data:`EXPANDED_PER_BYTE`
  times the pickle's size in bytes (plain checkpoints stay far below: sharing in them
  is a dtype or storage referenced by each tensor);
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
import os
import pickle
import re
import zipfile

import torch

from freezedsl.errors import ModelLoadError
from freezedsl.loaders.base import exc_text, one_line, quiet

__all__ = [
    "ALLOC_BASE",
    "EXPANDED_BASE",
    "EXPANDED_PER_BYTE",
    "MAX_DEPTH",
    "PickledObject",
    "load_trusted",
    "load_weights_only",
    "scan_pickle",
]

#: Objects a recursive walk of one unpickled object may visit: this plus
#: :data:`EXPANDED_PER_OP` per opcode of the pickle.
EXPANDED_BASE = 1_000_000
EXPANDED_PER_BYTE = 4
#: Deepest nesting of containers in a checkpoint (real ones nest under 20 levels).
MAX_DEPTH = 200
#: Largest integer argument of an allocating call, beyond the file's size in bytes.
ALLOC_BASE = 16 << 20

# Calls whose memory grows with an integer argument: bytearray(n), torch.FloatTensor(n),
# a storage of n elements. Tensor *rebuild* functions are not among them: torch checks
# their sizes against the storage they view.
_ALLOCATES = re.compile(r"^(builtins|__builtin__|_codecs)\.|Tensor$|Storage$|\.Parameter$")


class _Obj:
    """What the scan knows about one object on the simulated stack."""

    __slots__ = ("depth", "name", "size", "top_int")

    def __init__(self, size: int = 1, depth: int = 0, top_int: int = 0, name: str | None = None) -> None:
        self.size = size
        self.depth = depth
        self.top_int = top_int
        self.name = name  # the global's dotted name, for a GLOBAL


class _Refused(Exception):
    pass


_CONST = _Obj()  # strings, floats, None, booleans: never containers, never mutated
# Opcodes of torch's weights_only unpickler, by byte. Anything else ends the scan
# (torch refuses it with its own error).
_FIXED_ARG = {ord("K"): 1, ord("M"): 2, ord("J"): 4, ord("G"): 8}
_INT_ARG = {ord("K"): (1, False), ord("M"): (2, False), ord("J"): (4, True)}


def _refuse_size(limit: int, pos: int) -> _Refused:
    return _Refused(
        f"its pickle builds an object that shares its parts so often that walking it would "
        f"visit over {limit:,} objects (at byte {pos}); a checkpoint never needs that"
    )


def _scan_one(data: bytes, start: int, path: str, alloc_limit: int) -> int:
    """Scan the pickle that starts at ``data[start]``; return the offset after its STOP.

    A hand-written walk over the opcodes torch's ``weights_only`` unpickler accepts
    (``pickletools.genops`` is several times slower than unpickling itself).
    """
    size_limit = EXPANDED_BASE + EXPANDED_PER_BYTE * (len(data) - start)
    stack: list[_Obj] = []
    marks: list[int] = []
    memo: dict[int, _Obj] = {}
    pos = start
    end = len(data)
    from_bytes = int.from_bytes

    def pop() -> _Obj:
        if len(stack) <= (marks[-1] if marks else 0):
            raise _Refused(f"its pickle takes an item from an empty stack at byte {pos}")
        return stack.pop()

    def top() -> _Obj:
        if len(stack) <= (marks[-1] if marks else 0):
            raise _Refused(f"its pickle takes an item from an empty stack at byte {pos}")
        return stack[-1]

    def pop_mark() -> list[_Obj]:
        if not marks:
            raise _Refused(f"its pickle closes a group that was never opened at byte {pos}")
        floor = marks.pop()
        items = stack[floor:]
        del stack[floor:]
        return items

    def combine(items: list[_Obj], into: _Obj | None = None) -> _Obj:
        size = (into.size if into is not None else 1) + sum(i.size for i in items)
        depth = max([into.depth - 1 if into is not None else 0, *(i.depth for i in items)]) + 1
        big = max([into.top_int if into is not None else 0, *(i.top_int for i in items)])
        if size > size_limit:
            raise _refuse_size(size_limit, pos)
        if depth > MAX_DEPTH:
            raise _Refused(f"its pickle nests objects more than {MAX_DEPTH} levels deep (at byte {pos})")
        if into is None:
            return _Obj(size, depth, big)
        into.size, into.depth, into.top_int = size, depth, big
        return into

    def check_alloc(name: str | None, args: _Obj) -> None:
        if name and _ALLOCATES.search(name) and args.top_int > alloc_limit:
            raise _Refused(
                f"its pickle asks {name} for {args.top_int:,} units of memory (at byte {pos}), "
                f"more than the file's size allows (limit {alloc_limit:,})"
            )

    while pos < end:
        op = data[pos]
        pos += 1
        if op in _INT_ARG:
            width, signed = _INT_ARG[op]
            stack.append(_Obj(top_int=abs(from_bytes(data[pos : pos + width], "little", signed=signed))))
            pos += width
        elif op == 0x58:  # X BINUNICODE
            pos += 4 + from_bytes(data[pos : pos + 4], "little")
            stack.append(_CONST)
        elif op in (0x71, 0x72):  # q BINPUT, r LONG_BINPUT
            width = 1 if op == 0x71 else 4
            memo[from_bytes(data[pos : pos + width], "little")] = top()
            pos += width
        elif op in (0x68, 0x6A):  # h BINGET, j LONG_BINGET
            width = 1 if op == 0x68 else 4
            index = from_bytes(data[pos : pos + width], "little")
            pos += width
            found = memo.get(index)
            if found is None:
                raise _Refused(f"its pickle reads memo entry {index} that was never written (at byte {pos})")
            stack.append(found)
        elif op in (0x7D, 0x5D, 0x8F):  # } EMPTY_DICT, ] EMPTY_LIST, EMPTY_SET
            stack.append(_Obj())
        elif op in (0x4E, 0x88, 0x89, 0x29):  # N, NEWTRUE, NEWFALSE, ) EMPTY_TUPLE
            stack.append(_CONST)
        elif op == 0x47:  # G BINFLOAT
            pos += 8
            stack.append(_CONST)
        elif op == 0x55:  # U SHORT_BINSTRING
            pos += 1 + data[pos]
            stack.append(_CONST)
        elif op == 0x8A:  # LONG1
            n = data[pos]
            value = from_bytes(data[pos + 1 : pos + 1 + n], "little", signed=True)
            pos += 1 + n
            stack.append(_Obj(top_int=abs(value)))
        elif op == 0x28:  # ( MARK
            marks.append(len(stack))
        elif op == 0x74:  # t TUPLE
            stack.append(combine(pop_mark()))
        elif op in (0x85, 0x86, 0x87):  # TUPLE1..3
            items = [pop() for _ in range(op - 0x84)]
            stack.append(combine(items))
        elif op == 0x63:  # c GLOBAL: "module\nname\n"
            first = data.find(b"\n", pos)
            second = data.find(b"\n", first + 1) if first >= 0 else -1
            if second < 0:
                return end
            name = data[pos:first].decode("utf-8", "replace") + "." + data[first + 1 : second].decode("utf-8", "replace")
            pos = second + 1
            stack.append(_Obj(name=name))
        elif op in (0x52, 0x81):  # R REDUCE, NEWOBJ
            args = pop()
            call = pop()
            check_alloc(call.name, args)
            stack.append(combine([args]))
        elif op == 0x51:  # Q BINPERSID
            pid = pop()
            if pid.top_int > alloc_limit:
                raise _Refused(
                    f"its pickle declares a storage of {pid.top_int:,} elements (at byte {pos}), "
                    f"more than the file's size allows (limit {alloc_limit:,})"
                )
            stack.append(_Obj())
        elif op in (0x61, 0x62):  # a APPEND, b BUILD
            item = pop()
            combine([item], into=top())
        elif op == 0x73:  # s SETITEM
            item_value = pop()
            item_key = pop()
            combine([item_key, item_value], into=top())
        elif op in (0x65, 0x75):  # e APPENDS, u SETITEMS
            items = pop_mark()
            combine(items, into=top())
        elif op == 0x80:  # PROTO
            pos += 1
        elif op == 0x2E:  # . STOP
            pop()
            return pos
        else:  # an opcode the weights_only unpickler refuses itself
            return end
    return end


def _pickles(path: str, fmt: str) -> list[bytes]:
    """The bytes torch.load will unpickle (data.pkl, or the whole legacy file)."""
    size = os.path.getsize(path)
    if fmt != "zip":
        with open(path, "rb") as fh:
            return [fh.read()]
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        for info in infos:
            if info.compress_type != zipfile.ZIP_STORED and info.file_size > 4 * size + ALLOC_BASE:
                raise _Refused(
                    f"its zip entry {one_line(info.filename)} expands from "
                    f"{info.compress_size:,} to {info.file_size:,} bytes"
                )
        for info in infos:
            if info.filename == "data.pkl" or info.filename.endswith("/data.pkl"):
                if info.file_size > 4 * size + ALLOC_BASE:
                    raise _Refused(f"its data.pkl claims {info.file_size:,} bytes")
                with archive.open(info) as fh:
                    return [fh.read()]
    return []


def scan_pickle(path: str, fmt: str) -> None:
    """Refuse (one-line :class:`ModelLoadError`) a pickle whose loading is unbounded.

    A legacy file is several pickles in a row (magic number, protocol, system info,
    the object, storage keys) followed by raw storage bytes; the five are scanned.
    """
    try:
        alloc_limit = ALLOC_BASE + os.path.getsize(path)
        for data in _pickles(path, fmt):
            pos = 0
            for _ in range(5 if fmt != "zip" else 1):
                if pos >= len(data):
                    break
                pos = _scan_one(data, pos, path, alloc_limit)
    except _Refused as exc:
        raise ModelLoadError(f"{path} is refused as malformed or hostile: {exc}") from None
    except (IndexError, ValueError, zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError):
        return  # malformed in a way torch reports itself (as truncated or corrupt)


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
