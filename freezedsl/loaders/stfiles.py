"""safetensors files, read and written with the ``safetensors`` library only.

The library validates the header (its length, JSON, every tensor's dtype, shape and
byte range inside the file) when the file is opened, so a truncated file or a header
that lies about its offsets is refused before a byte of data is read; its one-line
reason is reported as this file's. Reading is bounded by the file's size: tensors are
copied out of the memory-mapped file, never allocated from a header's claims.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import IO, Any

import torch

from freezedsl.errors import ModelLoadError
from freezedsl.fsutil import unreadable_reason
from freezedsl.loaders.base import one_line
from freezedsl.loaders.hfconfig import require

#: safetensors dtype names (``get_dtype()``) and torch's.
_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
    **{k: getattr(torch, v) for k, v in (("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2"),
                                          ("U16", "uint16"), ("U32", "uint32"), ("U64", "uint64"))
       if hasattr(torch, v)},
}


@dataclass
class StFile:
    """What one safetensors file held: its keys in order, their dtypes, its metadata."""

    name: str  # file name inside its folder (or the bare file's base name)
    keys: list[str]
    dtypes: dict[str, torch.dtype]
    metadata: dict[str, str] | None = field(default=None)


def _invalid(path: str, exc: BaseException) -> ModelLoadError:
    reason = one_line(str(exc)) or type(exc).__name__
    return ModelLoadError(
        f"{path} is not a valid safetensors file ({reason}); save it again or copy it completely"
    )


def read(path: str, *, meta: bool) -> tuple[dict[str, torch.Tensor], StFile]:
    """(tensors, description) of the safetensors file ``path``.

    With ``meta`` only the header is read: each tensor is an empty meta tensor of the
    stored shape and dtype, enough to check that the file fits a model.
    """
    reason = unreadable_reason(path)
    if reason:
        raise ModelLoadError(f"{path} {reason}; expected a safetensors file")
    safetensors = require("safetensors", path)
    tensors: dict[str, torch.Tensor] = {}
    dtypes: dict[str, torch.dtype] = {}
    try:
        with safetensors.safe_open(path, framework="pt", device="cpu") as fh:
            metadata = fh.metadata()
            keys = list(fh.keys())
            for key in keys:
                if meta:
                    piece = fh.get_slice(key)
                    dtype = _DTYPES.get(piece.get_dtype())
                    if dtype is None:
                        raise ModelLoadError(
                            f"{path}: tensor {one_line(key)} has dtype {piece.get_dtype()}, which torch "
                            "cannot hold"
                        )
                    tensors[key] = torch.empty(piece.get_shape(), dtype=dtype, device="meta")
                else:
                    tensors[key] = fh.get_tensor(key)
                dtypes[key] = tensors[key].dtype
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError, a dtype torch lacks
        raise _invalid(path, exc) from None
    return tensors, StFile(os.path.basename(path), keys, dtypes, dict(metadata) if metadata else None)


def writer(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None, where: str) -> Any:
    """A function that writes ``tensors`` as safetensors to an open file (for atomic_write).

    Two keys that share one storage (tied weights stored under both names) are written
    as two copies, as the file they came from held them; safetensors refuses shared
    storage. Everything is made contiguous and moved to the CPU first.
    """
    safetensors_torch = require("safetensors.torch", where)
    seen: set[tuple[int, int]] = set()
    plain: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        tensor = value.detach().to("cpu").contiguous()
        storage = (tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes())
        if tensor.numel() and storage in seen:
            tensor = tensor.clone()
        seen.add((tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes()))
        plain[key] = tensor

    def write(fh: IO[bytes]) -> None:
        fh.write(safetensors_torch.save(plain, metadata=metadata))

    return write
