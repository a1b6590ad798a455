"""Hand-made hostile checkpoints: raw pickle opcodes, wrapped as torch.save files.

Each builder returns the bytes of a pickle (protocol 2, the opcodes torch's
``weights_only`` unpickler accepts) that is small but costly or malformed when
unpickled. :func:`torch_zip` wraps one as a ``torch.save`` zip archive; written as it
is, a pickle is read as torch's legacy (pre-1.6) format.
"""

from __future__ import annotations

import io
import struct
import zipfile


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(text: str) -> bytes:
    data = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE


def _long(value: int) -> bytes:
    data = value.to_bytes((value.bit_length() + 8) // 8 or 1, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data  # LONG1


def _put(i: int) -> bytes:
    return b"q" + bytes([i]) if i < 256 else b"r" + struct.pack("<I", i)


def _get(i: int) -> bytes:
    return b"h" + bytes([i]) if i < 256 else b"j" + struct.pack("<I", i)


PROTO = b"\x80\x02"
STOP = b"."


def shared_tuple_key(levels: int = 60) -> bytes:
    """A dict whose key is ``levels`` tuples deep, each holding the previous one twice:
    tiny on disk, 2**levels steps to hash."""
    body = b"]" + b"(" + b"N" + _put(0)  # a list collects the chain (no POP in weights_only)
    for i in range(1, levels + 1):
        body += _get(i - 1) + _get(i - 1) + b"\x86" + _put(i)  # TUPLE2
    body += b"e"  # APPENDS
    body += b"}" + _get(levels) + b"N" + b"s"  # EMPTY_DICT, key, None, SETITEM
    return PROTO + body + STOP


def shared_list(levels: int = 40) -> bytes:
    """Lists that hold the previous list twice: printing or saving it never ends."""
    body = b"N" + _put(0)
    for i in range(1, levels + 1):
        body += b"]" + b"(" + _get(i - 1) + _get(i - 1) + b"e" + _put(i)
    return PROTO + body + b"}" + _str("x") + _get(levels) + b"s" + STOP


def call_with_int(module: str, name: str, value: int, newobj: bool = False) -> bytes:
    """``module.name(value)``: an allow-listed call that allocates ``value`` units."""
    op = b"\x81" if newobj else b"R"  # NEWOBJ / REDUCE
    return PROTO + _global(module, name) + _long(value) + b"\x85" + op + STOP


def empty_stack() -> bytes:
    return PROTO + STOP


def pop_below_mark() -> bytes:
    return PROTO + b"(" + b"\x85" + STOP  # TUPLE1 right after MARK


def unknown_memo() -> bytes:
    return PROTO + _get(7) + STOP


def unknown_codec() -> bytes:
    return PROTO + _global("_codecs", "encode") + _str("x") + _str("no-such-codec") + b"\x86R" + STOP


def size_with_bad_attribute() -> bytes:
    """``torch.Size()`` given slot state: setting an attribute on a tuple fails."""
    state = b"N" + b"}" + _str("bogus") + b"K\x01" + b"s" + b"\x86"  # (None, {"bogus": 1})
    return PROTO + _global("torch", "Size") + b")" + b"R" + state + b"b" + STOP


def deep_lists(depth: int = 5000) -> bytes:
    return PROTO + b"]" * depth + b"a" * (depth - 1) + STOP


def deep_tuple_key(depth: int = 3000) -> bytes:
    """A state-dict-like dict whose key is a tuple nested ``depth`` levels."""
    key = b"N" + b"\x85" * depth
    return PROTO + b"}" + key + b"N" + b"s" + STOP


def storage_record(numel: int) -> bytes:
    """A tensor whose storage record declares ``numel`` elements (the zip holds none)."""
    pid = b"(" + _str("storage") + _global("torch", "FloatStorage") + _str("0") + _str("cpu") + _long(numel) + b"t"
    rebuild = _global("torch._utils", "_rebuild_tensor_v2")
    args = b"(" + pid + b"Q" + b"K\x00" + b"K\x01\x85" + b"K\x01\x85" + b"\x89" + _global("collections", "OrderedDict") + b")R" + b"t"
    return PROTO + b"}" + _str("w") + rebuild + args + b"R" + b"s" + STOP


def torch_zip(pickle_bytes: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    """Wrap ``pickle_bytes`` as a torch.save zip archive (stored, like torch writes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickle_bytes)
        archive.writestr("archive/byteorder", "little")
        for name, data in (extra or {}).items():
            archive.writestr(f"archive/{name}", data)
        archive.writestr("archive/version", "3\n")
    return buf.getvalue()


def zip_bomb(size: int = 1 << 30) -> bytes:
    """A torch-looking zip whose storage entry inflates from a few KiB to ``size`` bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", storage_record(size // 4))
        with archive.open("archive/data/0", "w", force_zip64=True) as fh:
            chunk = bytes(1 << 20)
            for _ in range(size >> 20):
                fh.write(chunk)
        archive.writestr("archive/version", "3\n")
    return buf.getvalue()
