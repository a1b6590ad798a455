"""Safe file reads and atomic writes, torch-free so ``check``/``fmt`` can use them.

Reading: :func:`unreadable_reason` says why a path must not be read as a file at all --
a FIFO (opening it blocks forever), a device, a socket, or anything on a kernel
filesystem such as ``/proc`` (``/proc/self/environ`` is a "regular file" holding the
environment's secrets). Every reader (models, rule files, ``--config``, lint's file
walk) asks it first. Writing: :func:`atomic_write` (temp file, fsync, rename).
"""

from __future__ import annotations

import contextlib
import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time that check/fmt do not spend
    from collections.abc import Callable, Iterator
    from typing import IO, NoReturn

from freezedsl.errors import ModelLoadError

#: Kernel filesystems whose files are views of the system, never user data.
_SPECIAL_FS = frozenset(
    {"proc", "sysfs", "devtmpfs", "devpts", "debugfs", "tracefs", "securityfs", "cgroup",
     "cgroup2", "configfs", "bpf", "pstore", "efivarfs", "mqueue", "fusectl", "binfmt_misc"}
)
_SPECIAL_ROOTS = ("/proc", "/sys", "/dev")
_special_mounts: tuple[str, ...] | None = None


def _special_roots() -> tuple[str, ...]:
    """/proc, /sys, /dev and every mount point of a kernel filesystem (read once)."""
    global _special_mounts
    if _special_mounts is None:
        found = set(_SPECIAL_ROOTS)
        with contextlib.suppress(OSError, ValueError), open(
            "/proc/self/mounts", encoding="utf-8", errors="replace"
        ) as fh:
            for line in fh:
                fields = line.split()
                if len(fields) >= 3 and fields[2] in _SPECIAL_FS:
                    found.add(fields[1].replace("\\040", " "))
        _special_mounts = tuple(sorted(found))
    return _special_mounts


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def unreadable_reason(path: str | os.PathLike[str], *, dir_ok: bool = False) -> str | None:
    """Why ``path`` must not be read as a file, or None when it may (or does not exist).

    Never opens the path (opening a FIFO blocks). Symlinks are followed to decide,
    so a link into ``/proc`` is refused like ``/proc`` itself. A path that does not
    exist gives None: the caller words "not found" in its own terms.
    """
    shown = os.fspath(path)
    try:
        st = os.stat(shown)
    except (OSError, ValueError):
        return None
    real = os.path.realpath(shown)
    for root in _special_roots():
        if real == root or real.startswith(root.rstrip("/") + "/"):
            return f"is on the special filesystem {root} (a view of the running system, not a file to read)"
    if stat.S_ISDIR(st.st_mode):
        return None if dir_ok else "is a directory"
    if not stat.S_ISREG(st.st_mode):
        return f"is {_kind(st.st_mode)}, not a regular file"
    return None


def _one_line(text: object, limit: int = 200) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def check_target(shown: str, *, probe: bool = False) -> tuple[str, str]:
    """Why ``shown`` cannot be written, before any work is done; returns (target, folder).

    A path ending in ``/`` names a directory, so it is refused rather than written as a
    file named after its last folder. ``probe`` also creates and removes the temporary
    file the write will use, so a read-only folder or an over-long name fails now, not
    after a model was loaded.
    """
    if shown.endswith(("/", os.sep)) or (os.altsep and shown.endswith(os.altsep)):
        raise ModelLoadError(
            f"cannot write {shown}: it ends with '/', so it names a directory; pass a file path "
            f"such as {shown.rstrip('/' + os.sep)}/model.pt"
        )
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
    if probe:
        tmp, fd = _create_temp(shown, directory, os.path.basename(target))
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return target, directory


class _Signalled(BaseException):
    """SIGTERM or SIGHUP arrived while a temporary file existed: clean up, then die of it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _signals_raise() -> Iterator[list[int]]:
    """While writing, SIGINT/SIGTERM/SIGHUP raise, and the caught signal is recorded.

    torch.save calls back into Python from C++: an exception raised there comes back as
    a ``RuntimeError`` from its zip writer. The list this yields holds the signal that
    arrived, so the caller reports it as what it was (an interrupt), whatever exception
    type carried it out. Only the main thread may set handlers; elsewhere nothing changes.
    """
    import signal
    import threading

    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def on_signal(signum: int, frame: object) -> None:
        caught.append(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise _Signalled(signum)

    wanted = [signal.SIGINT, *(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))]
    previous = {}
    for signum in wanted:
        old = signal.getsignal(signum)
        if signum == signal.SIGINT and old is not signal.default_int_handler:
            continue  # the embedding program handles Ctrl-C its own way
        if signum != signal.SIGINT and old not in (signal.SIG_DFL, None):
            continue  # someone else handles it (an ignored SIGHUP under nohup included)
        previous[signum] = signal.signal(signum, on_signal)
    try:
        yield caught
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def atomic_write(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], None]) -> None:
    """Write via a temp file in the same directory, fsync, then ``os.replace``.

    Readers see the old file or the complete new one, never a torn write; on any
    exception (KeyboardInterrupt included) and on SIGTERM/SIGHUP the temp file is
    removed and the old file is untouched; the signal then ends the process as it would
    have. OS errors become one-line :class:`ModelLoadError`; the writer's own exceptions
    propagate unchanged, except that any exception caused by Ctrl-C is a
    ``KeyboardInterrupt``.
    """
    shown = os.fspath(path)
    target, directory = check_target(shown)
    try:
        old_mode: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        old_mode = None
    with _signals_raise() as caught:
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
            if caught:
                _die_of(caught[0])
            if isinstance(exc, OSError):
                raise ModelLoadError(
                    f"cannot write {shown}: {exc.strerror or _one_line(exc)}"
                ) from None
            if isinstance(exc, RecursionError):
                raise ModelLoadError(
                    f"cannot write {shown}: the object to save is nested too deeply to serialize"
                ) from None
            raise
    _fsync_dir(directory)


def _die_of(signum: int) -> NoReturn:
    """Re-deliver a caught signal with its default action (exit status as if unhandled)."""
    import signal

    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    raise _Signalled(signum)  # pragma: no cover - the kill ends the process first


# A temp name adds ".", "." + 8 hex digits and ".tmp" (14 characters) to the target's.
_TEMP_EXTRA = 14


def _create_temp(shown: str, directory: str, base: str) -> tuple[str, int]:
    # os.open with mode 0o666 lets the umask decide permissions, as for a plain open();
    # tempfile.mkstemp would make every saved model private (0600).
    import secrets

    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        name_max = os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        name_max = 255
    stem = base if len(base.encode("utf-8", "surrogateescape")) + _TEMP_EXTRA <= name_max else "fz"
    for _ in range(100):
        tmp = os.path.join(directory, f".{stem}.{secrets.token_hex(4)}.tmp")
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
