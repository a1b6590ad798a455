"""What a MODEL path holds, decided from its bytes alone (nothing is unpickled here)."""

from __future__ import annotations

import os
import re
import zipfile
from typing import Literal

from freezedsl.errors import ModelLoadError
from freezedsl.fsutil import unreadable_reason
from freezedsl.loaders.base import MAX_LISTED, one_line

FileKind = Literal["zip", "torchscript", "legacy"]


def check_model_path(path: str) -> None:
    """Refuse a path that must not be opened at all: missing, a FIFO, a device, a socket,
    or a file on a kernel filesystem (``/proc/self/environ`` is a regular file there)."""
    if not os.path.lexists(path):
        raise ModelLoadError(
            f"{path} does not exist; expected a model file or an architecture like "
            "torchvision.models:resnet18"
        )
    if not os.path.exists(path):
        raise ModelLoadError(
            f"{path} is a symlink to a missing file ({one_line(os.readlink(path))}); "
            "a path is always read as a file, never as an architecture"
        )
    reason = unreadable_reason(path, dir_ok=True)
    if reason:
        raise ModelLoadError(f"{path} {reason}; pass a model file written by torch.save")


def sniff(path: str) -> FileKind:
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
        raise ModelLoadError(f"{path} cannot be read: {exc.strerror or one_line(exc)}") from None
    if not head:
        raise ModelLoadError(
            f"{path} is empty (0 bytes); expected a file written by torch.save or torch.jit.save"
        )
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError):
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
    found = [e for e in entries if e.endswith((".pt", ".pth", ".bin", ".ckpt", ".safetensors"))]
    if found:
        shown = ", ".join(one_line(os.path.join(path, e)) for e in found[:MAX_LISTED])
        return f"pass one of its model files ({shown})"
    return "pass a model file written by torch.save or torch.jit.save"
