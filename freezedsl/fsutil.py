"""Atomic file writes, torch-free so ``fmt`` can use them without importing torch."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from typing import IO

from freezedsl.errors import ModelLoadError


def _one_line(text: object, limit: int = 200) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def check_target(shown: str) -> tuple[str, str]:
    """Why ``shown`` cannot be written, before any work is done; returns (target, folder)."""
    target = os.path.realpath(shown)  # write through a symlink, not over it
    directory = os.path.dirname(target)
    if os.path.isdir(target):
        raise ModelLoadError(f"cannot write {shown}: it is a directory; pass a file path")
    if os.path.exists(target) and not os.path.isfile(target):
        raise ModelLoadError(
            f"cannot write {shown}: it exists and is not a regular file (a device, pipe or socket); "
            "pass the path of a new or regular file"
        )
    if not os.path.isdir(directory):
        shown_dir = os.path.dirname(shown) or "."
        if os.path.exists(directory):
            raise ModelLoadError(f"cannot write {shown}: {shown_dir} is a file, not a directory")
        raise ModelLoadError(f"cannot write {shown}: directory {shown_dir} does not exist; create it first")
    return target, directory


def atomic_write(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], None]) -> None:
    """Write via a temp file in the same directory, fsync, then ``os.replace``.

    Readers see the old file or the complete new one, never a torn write; on any
    exception (KeyboardInterrupt included) the temp file is removed and the old file is
    untouched. OS errors become one-line :class:`ModelLoadError`; the writer's own
    exceptions propagate unchanged.
    """
    shown = os.fspath(path)
    target, directory = check_target(shown)
    try:
        old_mode: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        old_mode = None
    tmp, fd = _create_temp(shown, directory, os.path.basename(target))
    try:
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if old_mode is not None:
            os.chmod(tmp, old_mode)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise ModelLoadError(
                f"cannot write {shown}: {exc.strerror or _one_line(exc)}"
            ) from None
        raise
    _fsync_dir(directory)


def _create_temp(shown: str, directory: str, base: str) -> tuple[str, int]:
    # os.open with mode 0o666 lets the umask decide permissions, as for a plain open();
    # tempfile.mkstemp would make every saved model private (0600).
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.tmp")
        try:
            return tmp, os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        except PermissionError:
            raise ModelLoadError(
                f"cannot write {shown}: directory {os.path.dirname(shown) or '.'} is not "
                "writable (permission denied)"
            ) from None
        except OSError as exc:
            raise ModelLoadError(
                f"cannot write {shown}: {exc.strerror or _one_line(exc)}"
            ) from None
    raise ModelLoadError(f"cannot write {shown}: could not create a temporary file")


def _fsync_dir(directory: str) -> None:
    """Persist the rename itself (best effort; not every platform allows it)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    data = text.encode("utf-8")

    def writer(fh: IO[bytes]) -> None:
        fh.write(data)

    atomic_write(path, writer)
