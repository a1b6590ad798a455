"""Atomic writes under interruption: ``apply -o`` and ``fmt`` never leave a torn file.

In-process (CliRunner): the writer is made to fail part-way -- ``torch.save`` /
``torch.jit.save`` write some bytes and then raise KeyboardInterrupt (Ctrl-C), an
OSError (disk full) or a RuntimeError; ``os.fsync`` / ``os.replace`` raise at the last
moment. Every time the old output must stay byte-identical, a new output must not
appear, and no temporary file may be left in the directory.

Real processes: a ``sitecustomize`` on PYTHONPATH (no change to freezedsl) pauses the
real ``.venv/bin/freezedsl`` at the ``fsync`` of its temporary file -- the moment the
new checkpoint is complete but not yet renamed over the old one. The test then sends
SIGINT or SIGKILL. This is deterministic, unlike racing a signal against a large save.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

from freezedsl.cli import main

from ._support import (
    CNN,
    FREEZEDSL,
    ModelFiles,
    assert_no_traceback,
    diff_snapshots,
    first_line,
    snapshot,
)

OLD = b"OLD CHECKPOINT BYTES " * 64
PARTIAL = b"PK\x03\x04 half a checkpoint " * 256


def _work(tmp_path: Path, model_files: ModelFiles, *, existing: bool = True) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "s.frz").write_text("freeze features\n")
    (work / "t.frz").write_text("freeze 0\n")
    shutil.copyfile(model_files["cnn.pt"], work / "model.pt")
    if existing:
        (work / "out.pt").write_bytes(OLD)
    return work


#: (id, argv after "apply", which saver to break) -- one per kind of saved model.
KINDS = [
    ("state-dict", ["s.frz", "model.pt", "--arch", CNN], "torch.save"),
    ("architecture", ["s.frz", CNN], "torch.save"),
    ("pickled-module", ["t.frz", "{m}/tiny_pickled.pt", "--trust-pickle"], "torch.save"),
    ("torchscript", ["t.frz", "{m}/tiny_ts.pt", "--trust-pickle"], "torch.jit.save"),
]


def _breaking_saver(exc: BaseException) -> Callable[..., None]:
    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        f.write(PARTIAL)  # some bytes reach the temporary file first
        f.flush()
        raise exc

    return save


def _break(monkeypatch: pytest.MonkeyPatch, saver: str, exc: BaseException) -> None:
    if saver == "torch.save":
        monkeypatch.setattr(torch, "save", _breaking_saver(exc))
    else:
        monkeypatch.setattr(torch.jit, "save", _breaking_saver(exc))


FAILURES = [
    (
        "ctrl-c",
        KeyboardInterrupt(),
        130,
        "freezedsl: interrupted (files are written atomically: each is complete or untouched)",
    ),
    (
        "disk-full",
        OSError(errno.ENOSPC, "No space left on device"),
        2,
        "cannot write out.pt: No space left on device",
    ),
    ("writer-bug", RuntimeError("boom"), 2, "internal error: RuntimeError: boom"),
]


@pytest.mark.parametrize("existing", [True, False], ids=["output-exists", "new-output"])
@pytest.mark.parametrize(
    ("exc", "code", "message"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES]
)
@pytest.mark.parametrize(("argv", "saver"), [k[1:] for k in KINDS], ids=[k[0] for k in KINDS])
def test_failure_while_saving_leaves_nothing_behind(
    argv: list[str],
    saver: str,
    exc: BaseException,
    code: int,
    message: str,
    existing: bool,
    model_files: ModelFiles,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    work = _work(tmp_path, model_files, existing=existing)
    monkeypatch.chdir(work)
    _break(monkeypatch, saver, exc)
    before = snapshot(work)
    args = ["apply", *(a.replace("{m}", str(model_files.root)) for a in argv), "-o", "out.pt", "-q"]

    result = CliRunner().invoke(main, args)

    assert result.exit_code == code, result.stderr
    assert message in first_line(result.stderr)
    assert_no_traceback(result.stdout, result.stderr)
    assert diff_snapshots(before, snapshot(work)) == []  # old file intact, no new file, no temp


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_interrupt_after_the_complete_write(
    step: str, model_files: ModelFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C between the last byte and the rename: the old file still wins."""
    work = _work(tmp_path, model_files)
    monkeypatch.chdir(work)
    real = getattr(os, step)

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        if step == "fsync" and not os.path.isfile(os.readlink(f"/proc/self/fd/{args[0]}")):
            return real(*args, **kwargs)  # the directory fsync after the rename
        raise KeyboardInterrupt

    if not os.path.isdir("/proc/self/fd") and step == "fsync":
        pytest.skip("needs /proc/self/fd")
    monkeypatch.setattr(os, step, interrupted)
    before = snapshot(work)
    result = CliRunner().invoke(
        main, ["apply", "s.frz", "model.pt", "--arch", CNN, "-o", "out.pt", "-q"]
    )
    assert result.exit_code == 130, result.stderr
    assert diff_snapshots(before, snapshot(work)) == []


def test_fmt_interrupted_keeps_the_rule_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "u.frz").write_text("freeze   features ,classifier\n")

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    before = snapshot(tmp_path)
    result = CliRunner().invoke(main, ["fmt", "u.frz"])
    assert result.exit_code == 130
    assert diff_snapshots(before, snapshot(tmp_path)) == []


def test_fmt_interrupted_between_files_tells_the_truth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("a.frz", "b.frz"):
        (tmp_path / name).write_text("freeze   features ,classifier\n")
    real_replace = os.replace
    calls: list[str] = []

    def second_interrupted(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(os.fspath(dst))
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", second_interrupted)
    before = snapshot(tmp_path)
    result = CliRunner().invoke(main, ["fmt", "a.frz", "b.frz"])
    assert result.exit_code == 130
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    changed = diff_snapshots(before, snapshot(tmp_path))
    assert changed == [] or "nothing was written" not in result.stderr, (changed, result.stderr)


# --------------------------------------------------------------------- real signals

PAUSE_HOOK = textwrap.dedent(
    '''
    """Test hook: pause freezedsl at the fsync of its temporary output file."""
    import os
    import time

    _mark = os.environ.get("FREEZEDSL_TEST_PAUSE_MARK")
    if _mark:
        # A suite run in the background (make test &, nohup) hands its children an
        # ignored SIGINT, and Python then installs no KeyboardInterrupt handler.
        import signal

        signal.signal(signal.SIGINT, signal.default_int_handler)
        _real_fsync = os.fsync

        def _paused_fsync(fd):
            try:
                name = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                name = ""
            if name.endswith(".tmp"):
                with open(_mark, "w") as fh:  # tell the test: the temp file is complete
                    fh.write(name)
                time.sleep(120)
            return _real_fsync(fd)

        os.fsync = _paused_fsync
    '''
)

needs_real_process = pytest.mark.skipif(
    not FREEZEDSL.exists() or not os.path.isdir("/proc/self/fd"),
    reason="needs the installed console script and /proc",
)


def _start_paused_apply(work: Path, hook_dir: Path) -> subprocess.Popen[str]:
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(PAUSE_HOOK)
    mark = work.parent / "paused.mark"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(hook_dir), os.environ.get("PYTHONPATH")])),
        "FREEZEDSL_TEST_PAUSE_MARK": str(mark),
        "NO_COLOR": "1",
    }
    env.pop("FREEZEDSL_DEBUG", None)
    proc = subprocess.Popen(
        [str(FREEZEDSL), "apply", "s.frz", "model.pt", "--arch", CNN, "-o", "out.pt", "-q"],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not mark.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"freezedsl never reached the save (rc={proc.returncode}): {err[-2000:]}")
        time.sleep(0.02)
    return proc


def _temps(work: Path) -> list[str]:
    return sorted(n for n in os.listdir(work) if n.endswith(".tmp"))


@needs_real_process
@pytest.mark.slow
def test_sigint_during_save_keeps_old_output(model_files: ModelFiles, tmp_path: Path) -> None:
    work = _work(tmp_path, model_files)
    proc = _start_paused_apply(work, tmp_path / "hook")
    assert len(_temps(work)) == 1  # the complete new checkpoint, not yet renamed
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert first_line(err) == (
        "freezedsl: interrupted (files are written atomically: each is complete or untouched)"
    )
    assert_no_traceback(out, err)
    assert (work / "out.pt").read_bytes() == OLD
    assert _temps(work) == []


@needs_real_process
@pytest.mark.slow
def test_sigkill_during_save_keeps_old_output(model_files: ModelFiles, tmp_path: Path) -> None:
    """SIGKILL cannot be handled: the old output survives, the temp file is orphaned.

    The orphan is a hidden ``.out.pt.<hex>.tmp`` next to the output; nothing removes
    it later (documented in docs/errors.md). Its name never collides with a later run.
    """
    work = _work(tmp_path, model_files)
    before = snapshot(work)
    proc = _start_paused_apply(work, tmp_path / "hook")
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert (work / "out.pt").read_bytes() == OLD
    orphans = _temps(work)
    assert len(orphans) == 1 and orphans[0].startswith(".out.pt.")
    assert [c for c in diff_snapshots(before, snapshot(work)) if not c.endswith(orphans[0])] == []
    # a later run is not confused by the orphan
    again = CliRunner().invoke(
        main,
        [
            "apply",
            str(work / "s.frz"),
            str(work / "model.pt"),
            "--arch",
            CNN,
            "-o",
            str(work / "out.pt"),
            "-q",
        ],
    )
    assert again.exit_code == 0, again.stderr
    assert (work / "out.pt").read_bytes() != OLD
    assert _temps(work) == orphans  # nothing cleans the orphan up (docs/errors.md says so)
