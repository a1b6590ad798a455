"""Atomic file writes (torch-free, so ``fmt`` can use them without importing torch)."""

from __future__ import annotations

import os
import tempfile
from typing import IO, Callable


def atomic_write(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], None]) -> None:
    """Write through a temp file in the same folder, fsync, then rename over ``path``.

    On any exception, KeyboardInterrupt included, the temp file is removed and an
    existing ``path`` is left byte for byte as it was.
    """
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix=".freezedsl-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if os.path.exists(target):
            try:
                os.chmod(tmp, os.stat(target).st_mode & 0o7777)
            except OSError:
                pass
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
