"""Run a child process so that nothing it starts outlives the caller.

``freezedsl lint train.py`` runs a script that may start anything: DataLoader workers,
``subprocess`` helpers, daemons that call ``setsid()`` and fork again. Whatever ends the
run -- the script finishing, the timeout, Ctrl-C, SIGTERM or SIGHUP sent to lint -- every
process the script started is ended and no pipe to lint's output is left open.

How, on Linux:

* lint makes itself a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``) for the
  run, so a process orphaned anywhere below it (a double-forked daemon in a new session
  included) is re-parented to lint instead of to init; the process tree under lint,
  read from ``/proc``, is then everything the run started;
* at the end of the run, on every path (``finally``), that tree is killed with SIGKILL
  until nothing new is left, and the zombies are reaped;
* SIGTERM and SIGHUP, whose default action would kill lint on the spot and leave the
  script running, are turned into :class:`Terminated` (a ``SystemExit`` with code
  128 + signal number) for the duration of the run, so the cleanup runs first;
* the child gets the read end of a *lifeline* pipe whose only writer is lint. The
  bootstrap watches it (``watch_lifeline``): when lint dies in a way it cannot clean up
  after (SIGKILL, the OOM killer), the read returns end-of-file and the child kills its
  own tree (it is a subreaper too) and exits. ``PR_SET_PDEATHSIG`` is not used for the
  child: it would kill the child before the child could end its own descendants.

Elsewhere (no ``/proc``, no ``prctl``) the run's process group is killed, as before.
Only the standard library is used; this module does not import torch.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, Any

__all__ = [
    "LIFELINE_ENV",
    "Terminated",
    "descendants",
    "fatal_signals_raise",
    "kill_tree",
    "run_supervised",
    "set_subreaper",
    "watch_lifeline",
]

#: Environment variable naming the lifeline file descriptor in the child.
LIFELINE_ENV = "FREEZEDSL_LIFELINE_FD"

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
#: Signals whose default action ends lint without cleanup; handled during a run.
_FATAL_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Terminated(SystemExit):
    """lint received SIGTERM or SIGHUP during a run; the run was ended first.

    A ``SystemExit`` so that it unwinds like one (``finally`` blocks run, temporary
    files go) and ends the program with the shell's code for that signal, 128 + N.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


# ---------------------------------------------------------------------- prctl


@functools.lru_cache(maxsize=1)
def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` (Linux), or ``None``."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return fn


def set_subreaper(on: bool) -> bool | None:
    """Make this process a child subreaper (or stop); the previous state, ``None`` if unsupported."""
    prctl = _prctl()
    if prctl is None:
        return None
    old = ctypes.c_int(0)
    if prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(old), 0, 0, 0) != 0:
        return None
    if prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        return None
    return bool(old.value)


# ---------------------------------------------------------------------- the process tree


def _processes() -> dict[int, tuple[int, str]] | None:
    """``pid -> (parent pid, state)`` of every process, from ``/proc``; ``None`` without it."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    out: dict[int, tuple[int, str]] = {}
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode("ascii", "replace")
        except OSError:  # it ended while we looked
            continue
        # "pid (comm) state ppid ...": comm may contain spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 2:
            out[int(entry)] = (int(fields[1]), fields[0])
    return out


def descendants(root: int, *, skip: frozenset[int] = frozenset()) -> list[tuple[int, str]] | None:
    """``(pid, state)`` of every process below ``root`` (children first), minus the subtrees
    of the ``skip`` children; ``None`` when ``/proc`` cannot be read."""
    table = _processes()
    if table is None:
        return None
    children: dict[int, list[int]] = {}
    for pid, (ppid, _state) in table.items():
        children.setdefault(ppid, []).append(pid)
    out: list[tuple[int, str]] = []
    todo = [pid for pid in children.get(root, []) if pid not in skip]
    while todo:
        pid = todo.pop()
        out.append((pid, table[pid][1]))
        todo.extend(children.get(pid, []))
    return out


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _reap(pid: int) -> None:
    """Collect the exit status of our own dead child (a re-parented orphan)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def kill_tree(
    root: int, *, skip: frozenset[int] = frozenset(), group: int | None = None, wait: float = 2.0
) -> int:
    """SIGKILL every process below ``root`` (and in process ``group``) until none is left.

    Repeats because a process may fork while its siblings are being killed. Dead
    children of this process are reaped. Returns how many processes were signalled.
    """
    me = os.getpid()
    killed: set[int] = set()
    deadline = time.monotonic() + wait
    while True:
        if group is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        tree = descendants(root, skip=skip)
        if tree is None:
            return len(killed)
        live = [pid for pid, state in tree if state not in ("Z", "X")]
        for pid, state in tree:
            if state in ("Z", "X"):
                if root == me:
                    _reap(pid)
            else:
                _signal(pid, signal.SIGKILL)
                killed.add(pid)
        # Below ourselves, done when nothing is left, zombies included: a dead process's
        # zombie children are re-parented to us (the subreaper) and reaped on the next pass.
        if not (tree if root == me else live) or time.monotonic() > deadline:
            return len(killed)
        time.sleep(0.005)


def signal_tree(
    root: int, sig: int, *, skip: frozenset[int] = frozenset(), group: int | None = None
) -> None:
    """Send ``sig`` once to every live process below ``root`` and to process ``group``."""
    if group is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, sig)
    for pid, state in descendants(root, skip=skip) or ():
        if state not in ("Z", "X"):
            _signal(pid, sig)


# ---------------------------------------------------------------------- signals


@contextlib.contextmanager
def fatal_signals_raise() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into :class:`Terminated` while the block runs.

    Only in the main thread and only where the signal still has its default action: a
    handler the program installed itself, or an ignored signal (``nohup``), is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: object) -> None:
        raise Terminated(signum)

    for sig in _FATAL_SIGNALS:
        if signal.getsignal(sig) == signal.SIG_DFL:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# ---------------------------------------------------------------------- output


def _output_fd() -> int | None:
    """Our stderr as a file descriptor the child can inherit, if it has one."""
    try:
        sys.stderr.flush()
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


def _pump(src: IO[bytes], dst: IO[str]) -> None:
    """Copy the child's output to a stderr without a file descriptor (e.g. under pytest)."""
    for raw in iter(src.readline, b""):
        with contextlib.suppress(Exception):
            dst.write(raw.decode(errors="replace"))
            dst.flush()
    src.close()


# ---------------------------------------------------------------------- running


def _our_children() -> frozenset[int]:
    tree = _processes() or {}
    me = os.getpid()
    return frozenset(pid for pid, (ppid, _state) in tree.items() if ppid == me)


def run_supervised(
    cmd: Sequence[str], *, env: Mapping[str, str], timeout: float, grace: float = 5.0
) -> tuple[int, bool]:
    """Run ``cmd`` in a new session; ``(exit status, timed out)``.

    Its output goes to our stderr. At the timeout the run gets SIGTERM, then SIGKILL
    after ``grace`` seconds. On every way out -- normal end, timeout, exception,
    KeyboardInterrupt, :class:`Terminated` -- everything the run started is killed
    (see the module docstring). Raises ``OSError`` when ``cmd`` cannot be started.
    """
    before = _our_children()  # a library caller's own children are not ours to kill
    was_reaper = set_subreaper(True)
    read_end, write_end = os.pipe()  # the lifeline: only we hold the write end
    os.set_inheritable(write_end, False)
    env = {**env, LIFELINE_ENV: str(read_end)}
    proc: subprocess.Popen[bytes] | None = None
    pump: threading.Thread | None = None
    timed_out = False
    try:
        with fatal_signals_raise():
            try:
                fd = _output_fd()
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=fd if fd is not None else subprocess.PIPE,
                    stderr=fd if fd is not None else subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                    pass_fds=(read_end,),
                )
                os.close(read_end)
                read_end = -1
                if proc.stdout is not None:
                    pump = threading.Thread(
                        target=_pump, args=(proc.stdout, sys.stderr), daemon=True
                    )
                    pump.start()
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    signal_tree(os.getpid(), signal.SIGTERM, skip=before, group=proc.pid)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=grace)
            finally:
                _end_run(proc, before)
    finally:
        if read_end >= 0:
            os.close(read_end)
        os.close(write_end)
        if was_reaper is not None:
            set_subreaper(was_reaper)
        if pump is not None:
            pump.join(timeout=2.0)
    assert proc is not None and proc.returncode is not None
    return proc.returncode, timed_out


def _end_run(proc: subprocess.Popen[bytes] | None, before: frozenset[int]) -> None:
    """Kill the child (if still running) and everything it started; reap them all.

    Runs while SIGTERM/SIGHUP are still handled, and shields itself from a second
    Ctrl-C or signal: an interrupted cleanup is exactly what must not happen.
    """
    pending: list[BaseException] = []
    for _ in range(3):
        try:
            if proc is not None and proc.returncode is None:
                _signal(proc.pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            kill_tree(os.getpid(), skip=before, group=proc.pid if proc is not None else None)
            break
        except (KeyboardInterrupt, Terminated) as exc:  # again while cleaning up: finish first
            pending.append(exc)
    if pending:
        raise pending[0]


def watch_lifeline(on_loss: Callable[[], None] | None = None) -> None:
    """In the child: end this process and its descendants when lint disappears.

    Reads the lifeline pipe named by :data:`LIFELINE_ENV` in a daemon thread; the read
    returns only when lint (its only writer) has exited. The variable is removed from
    the environment so the script and its children do not see it.
    """
    raw = os.environ.pop(LIFELINE_ENV, None)
    if raw is None or not raw.isdigit():
        return
    fd = int(raw)
    with contextlib.suppress(OSError):
        os.set_inheritable(fd, False)  # not passed on to programs the script executes
    set_subreaper(True)  # our orphans stay in our tree, so they can be found

    def watch() -> None:
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            return
        if on_loss is not None:
            with contextlib.suppress(Exception):
                on_loss()
        kill_tree(os.getpid(), wait=1.0)
        os._exit(128 + signal.SIGKILL)

    threading.Thread(target=watch, name="freezedsl-lifeline", daemon=True).start()
