"""Shared helpers for the robustness tests: model files, snapshots, CPU guards, the CLI.

Everything here is about *observing* freezedsl from the outside: what the command line
prints, which exit code it returns and whether any file changed. Nothing here patches
freezedsl itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import random
import signal
import stat
import struct
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

#: The console script next to the interpreter running the tests (``.venv/bin/freezedsl``).
FREEZEDSL = Path(sys.executable).with_name("freezedsl")

#: Architecture of the checkpoints the catalogue loads (24,058 parameters, meta-cheap).
CNN = "freezedsl.testing:small_cnn"


def tiny_model() -> nn.Sequential:
    """The brief's tiny model: names ``0.weight``, ``0.bias``, ``2.weight``, ``2.bias``."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class ModelFiles:
    """Model files built once per session (all inputs: tests must never change them)."""

    root: Path

    def __getitem__(self, name: str) -> Path:
        return self.root / name


def build_model_files(root: Path) -> ModelFiles:
    """Write every model file the catalogue and the atomic-write tests read."""
    from freezedsl.testing import small_cnn

    root.mkdir(parents=True, exist_ok=True)
    tiny = tiny_model()
    torch.save(tiny.state_dict(), root / "tiny_sd.pt")
    torch.save(tiny, root / "tiny_pickled.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(tiny), str(root / "tiny_ts.pt"))
    torch.manual_seed(0)
    cnn = small_cnn()
    torch.save(cnn.state_dict(), root / "cnn.pt")
    torch.save({"model": cnn.state_dict(), "epoch": 3}, root / "cnn_ckpt.pt")
    whole = (root / "cnn.pt").read_bytes()
    (root / "cnn_truncated.pt").write_bytes(whole[: len(whole) // 2])
    (root / "empty.pt").write_bytes(b"")
    (root / "text.pt").write_text("these are not the weights you are looking for\n")
    (root / "random.pt").write_bytes(b"\x13\x37" + random.Random(0).randbytes(4094))
    with zipfile.ZipFile(root / "not_torch.zip.pt", "w") as archive:
        archive.writestr("hello.txt", "hi")
    header = b'{"__metadata__":{}}'
    (root / "weights.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    torch.save(cnn.state_dict(), root / "cnn_legacy.pt", _use_new_zipfile_serialization=False)
    legacy = (root / "cnn_legacy.pt").read_bytes()
    (root / "cnn_legacy_truncated.pt").write_bytes(legacy[: len(legacy) // 2])
    (root / "plain_pickle.pkl").write_bytes(pickle.dumps({"epoch": 3, "lr": 0.1}))
    torch.save([torch.zeros(2)], root / "tensor_list.pt")
    torch.save({}, root / "empty_dict.pt")
    torch.save(
        {"state_dict": cnn.state_dict(), "freezedsl_manifest": "yes"}, root / "bad_manifest.pt"
    )
    (root / "models_dir").mkdir(exist_ok=True)
    return ModelFiles(root)


# ----------------------------------------------------------------------- snapshots


def snapshot(root: Path) -> dict[str, tuple[str, str]]:
    """Every entry under ``root``: kind and content hash (files), target (links).

    Two equal snapshots mean nothing was written, renamed, replaced or left behind
    (temporary files included) -- the "nothing half-written" half of the error rule.
    """
    out: dict[str, tuple[str, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", "")
            elif stat.S_ISREG(st.st_mode):
                out[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
            elif stat.S_ISFIFO(st.st_mode):
                out[rel] = ("fifo", "")
            else:
                out[rel] = ("other", oct(st.st_mode))
    return out


def diff_snapshots(before: Mapping[str, object], after: Mapping[str, object]) -> list[str]:
    changes = [f"+ {k}" for k in sorted(after.keys() - before.keys())]
    changes += [f"- {k}" for k in sorted(before.keys() - after.keys())]
    changes += [f"~ {k}" for k in sorted(before.keys() & after.keys()) if before[k] != after[k]]
    return changes


# ------------------------------------------------------------------------- output


def first_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert lines, "expected an error message on stderr, got nothing"
    return lines[0]


def assert_no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text, text[-3000:]


# ------------------------------------------------------------------------ guards


class Hang(BaseException):
    """Raised by :func:`cpu_limit`; a BaseException so no ``except Exception`` eats it."""


@contextlib.contextmanager
def cpu_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` of *CPU* time (SIGVTALRM).

    CPU rather than wall time so a busy shared machine does not fail the test, and
    ITIMER_VIRTUAL rather than ITIMER_REAL because freezedsl's own regex budget uses
    ITIMER_REAL and switches itself off when that timer is already running. Python's
    regex engine checks for signals while it backtracks, so a runaway ``re.search``
    is interrupted too.
    """

    def on_timer(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds} s of CPU time")

    previous = signal.signal(signal.SIGVTALRM, on_timer)
    signal.setitimer(signal.ITIMER_VIRTUAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)


# ------------------------------------------------------------------- subprocesses


def run_cli(
    args: Sequence[str],
    *,
    cwd: Path,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    preexec_fn: object = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real console script (a fresh interpreter, as a user would)."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    full_env.pop("FREEZEDSL_DEBUG", None)
    return subprocess.run(
        [str(FREEZEDSL), *args],
        cwd=cwd,
        env=full_env,
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec_fn,  # type: ignore[arg-type]
        check=False,
    )
