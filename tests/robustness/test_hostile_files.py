"""Hostile and malformed model files: nothing runs, everything ends fast, one clear line.

Every row of :data:`HOSTILE` is a file (built from raw pickle opcodes by
:mod:`.hostile`, or a real file torch writes) given as MODEL to ``plan``, ``show`` or
``apply``. Each must end within a few seconds of CPU time with exit code 2, one line on
stderr that contains the expected words, no traceback, no "internal error", and no file
written. docs/errors.md ("Hostile model files") lists the same inputs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from freezedsl.cli import main
from freezedsl.errors import ModelLoadError
from freezedsl.loading import load_model

from . import hostile as h
from ._support import FREEZEDSL, ModelFiles, cpu_limit, diff_snapshots, snapshot

CNN = "freezedsl.testing:small_cnn"
LIN = "torch.nn:Linear(2, 2)"


@dataclass(frozen=True)
class Hostile:
    id: str
    make: Callable[[Path], None]  # writes "m.pt" (or the path the argv names) in the folder
    expected: str
    argv: tuple[str, ...] = ("plan", "r.frz", "m.pt", "--arch", CNN)


def _bytes(data: bytes) -> Callable[[Path], None]:
    def make(work: Path) -> None:
        (work / "m.pt").write_bytes(data)

    return make


def _saved(obj: object, **kwargs: object) -> Callable[[Path], None]:
    def make(work: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.save(obj, work / "m.pt", **kwargs)  # type: ignore[arg-type]

    return make


def _both(id: str, data: bytes, expected: str) -> list[Hostile]:
    """The pickle as a torch.save zip archive and as a legacy (pre-1.6) file."""
    return [
        Hostile(f"{id}-zip", _bytes(h.torch_zip(data)), expected),
        Hostile(f"{id}-legacy", _bytes(data), expected),
    ]


def _scripted(work: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(nn.Linear(2, 2)), str(work / "m.pt"))


def _link(target: str, name: str = "m.pt") -> Callable[[Path], None]:
    def make(work: Path) -> None:
        os.symlink(target, work / name)

    return make


def _fifo(work: Path) -> None:
    os.mkfifo(work / "m.pt")


def _lazy(work: Path) -> None:
    torch.save(nn.LazyLinear(3).state_dict(), work / "m.pt")


def _complex(work: Path) -> None:
    torch.save({"weight": torch.zeros(2, 2, dtype=torch.complex64), "bias": torch.zeros(2)}, work / "m.pt")


def _linear_with(weight: torch.Tensor) -> Callable[[Path], None]:
    def make(work: Path) -> None:
        torch.save({"weight": weight, "bias": torch.zeros(2)}, work / "m.pt")

    return make


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    _QINT8 = torch.quantize_per_tensor(torch.ones(2, 2), 0.1, 0, torch.qint8)


def _ansi_keys(work: Path) -> None:
    torch.save({"\x1b[2J\x1b[31mweight": torch.zeros(2, 2), "bias": torch.zeros(2)}, work / "m.pt")


REFUSED = "is refused as malformed or hostile"
CORRUPT = "is truncated or corrupt"
LIN_ARGV = ("plan", "r.frz", "m.pt", "--arch", LIN)

HOSTILE: list[Hostile] = [
    *_both("shared-tuple-key-60", h.shared_tuple_key(60), "shares its parts so often"),
    *_both("shared-tuple-key-25", h.shared_tuple_key(25), "shares its parts so often"),
    *_both("shared-lists", h.shared_list(40), "shares its parts so often"),
    *_both("bytearray-3gib", h.call_with_int("builtins", "bytearray", 3 << 30), "builtins.bytearray"),
    *_both("bytearray-2gib-binint", h.call_with_int("builtins", "bytearray", (1 << 31) - 1), "builtins.bytearray"),
    *_both("floattensor-newobj", h.call_with_int("torch", "FloatTensor", 10**10, newobj=True), "torch.FloatTensor"),
    *_both("tensor-reduce", h.call_with_int("torch", "Tensor", 10**11), "torch.Tensor"),
    *_both("storage-record-1e12", h.storage_record(10**12), "declares a storage"),
    *_both("empty-stack", h.empty_stack(), "empty stack"),
    *_both("pop-below-mark", h.pop_below_mark(), "empty stack"),
    *_both("unknown-memo", h.unknown_memo(), "never written"),
    *_both("unknown-codec", h.unknown_codec(), "LookupError"),
    *_both("size-bad-attribute", h.size_with_bad_attribute(), "AttributeError"),
    *_both("deep-lists", h.deep_lists(5000), "levels deep"),
    *_both("deep-tuple-key", h.deep_tuple_key(3000), "levels deep"),
    *_both("deep-lists-250", h.deep_lists(250), "levels deep"),
    Hostile("storage-record-missing-data", _bytes(h.torch_zip(h.storage_record(1))), CORRUPT),
    Hostile("zip-bomb-entry", _bytes(h.zip_bomb(64 << 20)), "expands from"),
    Hostile("torchscript-untrusted", _scripted, "is a TorchScript archive: loading it runs", ("plan", "r.frz", "m.pt")),
    Hostile("torchscript-untrusted-show", _scripted, "TorchScript archive", ("show", "m.pt")),
    Hostile("torchscript-untrusted-apply", _scripted, "TorchScript archive", ("apply", "r.frz", "m.pt", "-o", "o.pt")),
    Hostile("torchscript-untrusted-lint", _scripted, "TorchScript archive", ("lint", "r.frz", "--model", "m.pt")),
    Hostile("dangling-link-named-like-arch", _link("/nonexistent/target", "os:system"),
            "is a symlink to a missing file", ("show", "os:system")),
    Hostile("link-to-proc-environ", _link("/proc/self/environ"), "special filesystem /proc"),
    Hostile("link-to-dev-zero", _link("/dev/zero"), "special filesystem /dev"),
    Hostile("link-to-dev-urandom-show", _link("/dev/urandom"), "special filesystem /dev", ("show", "m.pt")),
    Hostile("fifo-model", _fifo, "is a FIFO (named pipe)"),
    Hostile("lazy-linear-state-dict", _lazy, "UninitializedParameter", ("show", "m.pt", "--arch", "torch.nn:LazyLinear(3)")),
    Hostile("lazy-linear-arch", _bytes(b""), "uninitialized lazy", ("show", "torch.nn:LazyLinear(3)")),
    Hostile("complex-into-real", _complex, "would drop the imaginary part", LIN_ARGV),
    Hostile("qint8-into-float", _linear_with(_QINT8), "file quantized qint8 vs model float32", LIN_ARGV),
    Hostile("sparse-into-dense", _linear_with(torch.ones(2, 2).to_sparse()), "file sparse_coo vs model strided", LIN_ARGV),
    Hostile("bits8-into-float", _linear_with(torch.zeros(2, 2, dtype=torch.bits8)), "bits8 (raw bits", LIN_ARGV),
    Hostile("ansi-escape-keys", _ansi_keys, "\\x1b[2J", LIN_ARGV),
    Hostile("list-manifest-torchscript", _bytes(b""), "not an object",
            ("plan", "r.frz", "ts_list.pt", "--trust-pickle")),
    Hostile("deep-manifest-torchscript", _bytes(b""), "nests too deeply",
            ("plan", "r.frz", "ts_deep.pt", "--trust-pickle")),
    Hostile("output-trailing-slash", _bytes(b""), "ends with '/'", ("apply", "r.frz", CNN, "-o", "newdir/")),
    Hostile("output-name-too-long-dir", _bytes(b""), "does not exist", ("apply", "r.frz", CNN, "-o", "x/" + "a" * 253)),
]


def _ts_with_manifest(path: Path, text: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(nn.Linear(2, 2)), str(path), _extra_files={"freezedsl_manifest.json": text})


def test_at_least_forty_hostile_inputs() -> None:
    assert len(HOSTILE) >= 40
    assert len({c.id for c in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize("c", HOSTILE, ids=[c.id for c in HOSTILE])
def test_hostile_file(c: Hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FREEZEDSL_DEBUG", raising=False)
    (work / "r.frz").write_text("freeze all\n")
    c.make(work)
    if "ts_list.pt" in c.argv:
        _ts_with_manifest(work / "ts_list.pt", "[1, 2]")
    if "ts_deep.pt" in c.argv:
        _ts_with_manifest(work / "ts_deep.pt", "[" * 100_000 + "]" * 100_000)
    jit_load = torch.jit.load
    monkeypatch.setattr(torch.jit, "load", _forbidden if "--trust-pickle" not in c.argv else jit_load)
    before = snapshot(work)
    with cpu_limit(30):
        result = CliRunner().invoke(main, list(c.argv))
    assert isinstance(result.exception, SystemExit) or result.exception is None, repr(result.exception)
    lines = result.stderr.splitlines()
    assert lines, result.stdout
    assert result.exit_code == 2, result.stderr
    assert c.expected in lines[0], lines[0]
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert "\x1b" not in result.stderr + result.stdout
    assert diff_snapshots(before, snapshot(work)) == []


def _forbidden(*args: object, **kwargs: object) -> None:
    raise AssertionError("torch.jit.load ran on an untrusted file")


# ------------------------------------------------------------------ the Python API


def test_torchscript_needs_trust_in_the_api(tmp_path: Path) -> None:
    _scripted(tmp_path)
    with pytest.raises(ModelLoadError, match="TorchScript archive: loading it runs"):
        load_model(str(tmp_path / "m.pt"))
    assert load_model(str(tmp_path / "m.pt"), trust_pickle=True).kind == "torchscript"


def test_dangling_symlink_is_never_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    name = "os:system('touch PWNED')"
    os.symlink("/nonexistent", name)
    with pytest.raises(ModelLoadError, match="symlink to a missing file"):
        load_model(name)
    assert not (tmp_path / "PWNED").exists()


def test_real_checkpoints_pass_the_scan(tmp_path: Path) -> None:
    """The bound refuses no real checkpoint: tied weights, views, nested extras."""
    from freezedsl.testing import gpt_decoder, small_cnn

    gpt = gpt_decoder(vocab_size=50, hidden=16, layers=1, heads=2, max_len=16)
    torch.save({"model": gpt.state_dict(), "cfg": {"a": [[[1, 2]]] * 50}, "epoch": 1}, tmp_path / "g.pt")
    load_model(str(tmp_path / "g.pt"), arch="freezedsl.testing:gpt_decoder(vocab_size=50, hidden=16, layers=1, heads=2, max_len=16)")
    cnn = small_cnn()
    torch.save(cnn.state_dict(), tmp_path / "c.pt", _use_new_zipfile_serialization=False)
    load_model(str(tmp_path / "c.pt"), arch=CNN)


# ------------------------------------------------------------------ signals while writing


@pytest.mark.slow
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_signal_while_writing_leaves_no_temp_file(tmp_path: Path, model_files: ModelFiles, signame: str) -> None:
    """A signal in the middle of ``torch.save`` removes the temporary file, then ends
    the process with that signal (as if unhandled)."""
    (tmp_path / "r.frz").write_text("freeze features\n")
    code = (
        "import os, signal, torch, sys\n"
        "real = torch.save\n"
        "def slow(obj, f, *a, **k):\n"
        "    f.write(b'partial'); f.flush(); os.kill(os.getpid(), signal." + signame + ")\n"
        "    real(obj, f, *a, **k)\n"
        "torch.save = slow\n"
        "from freezedsl.cli import main\n"
        f"sys.argv = ['freezedsl', 'apply', 'r.frz', {CNN!r}, '-o', 'out.pt', '-q']\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == -getattr(signal, signame), proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.frz"]
    assert FREEZEDSL.exists()


def test_ctrl_c_inside_torch_save_is_an_interrupt(tmp_path: Path) -> None:
    """Ctrl-C raised inside torch's zip writer comes back as RuntimeError from C++; it
    must still read as an interrupt (exit 130), not an internal error."""
    (tmp_path / "r.frz").write_text("freeze features\n")
    code = (
        "import os, signal, torch, sys\n"
        "real = torch.save\n"
        "def slow(obj, f, *a, **k):\n"
        "    w = f.write\n"
        "    def write(b):\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        return w(b)\n"
        "    f.write = write\n"
        "    real(obj, f, *a, **k)\n"
        "torch.save = slow\n"
        "from freezedsl.cli import main\n"
        f"sys.argv = ['freezedsl', 'apply', 'r.frz', {CNN!r}, '-o', 'out.pt', '-q']\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 130, proc.stderr
    assert "interrupted" in proc.stderr and "internal error" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.frz"]


def test_long_output_name_uses_a_short_temp_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.frz").write_text("freeze features\n")
    out = "a" * 240 + ".pt"  # legal (253 bytes); the old temp name added 14
    result = CliRunner().invoke(main, ["apply", "r.frz", CNN, "-o", out, "-q"])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / out).exists()


# ------------------------------------------------------------------ printing names


class _AnsiNames(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_parameter("w\x1b[2J\u202ex", nn.Parameter(torch.zeros(2)))


def test_printers_escape_control_characters() -> None:
    """show, plan --explain and error lines print names with escapes written out."""
    from freezedsl.api import Rules
    from freezedsl.errors import SelectionError
    from freezedsl.planning.index import build_index
    from freezedsl.planning.tree import render_tree

    model = _AnsiNames()
    tree = render_tree(build_index(model), params=True)
    from freezedsl.syntax.parser import parse

    plan = Rules(parse("freeze all\n")).plan(model)
    explained = plan.render(explain=True)
    for text in (tree, explained):
        assert "\x1b" not in text and "\u202e" not in text
        assert "w\\x1b[2J\\u202ex" in text
    err = SelectionError("bad \x1b[31mname", path="r.frz", line=1, col=3, source_line="a\x1bb c")
    rendered = err.render()
    assert "\x1b" not in rendered
    assert rendered.splitlines()[1] == "  a\\x1bb c" and rendered.splitlines()[2] == "       ^"


# ------------------------------------------------------------------ stale plans


@pytest.mark.parametrize("replace", ["module", "parameter"])
def test_stale_plan_is_refused(replace: str) -> None:
    from freezedsl.api import Rules
    from freezedsl.application import apply_plan
    from freezedsl.errors import FreezeError
    from freezedsl.syntax.parser import parse

    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    plan = Rules(parse("freeze all\n")).plan(model)
    if replace == "module":
        model[1] = nn.Linear(2, 2)
    else:
        model[1].weight = nn.Parameter(torch.zeros(2, 2))
    with pytest.raises(FreezeError, match="1.weight was replaced since the plan was made"):
        apply_plan(plan)
    assert all(p.requires_grad for p in model.parameters())  # nothing applied
    apply_plan(Rules(parse("freeze all\n")).plan(model))  # a fresh plan applies
    assert not any(p.requires_grad for p in model.parameters())


def test_weight_norm_miss_suggests_the_parametrized_names() -> None:
    from torch.nn.utils.parametrizations import weight_norm

    from freezedsl.api import Rules
    from freezedsl.errors import SelectionError
    from freezedsl.syntax.parser import parse

    model = nn.Sequential(weight_norm(nn.Linear(2, 2)), nn.Linear(2, 2))
    with pytest.raises(SelectionError) as excinfo:
        Rules(parse("freeze 0.weight\n")).plan(model)
    text = str(excinfo.value)
    assert "'0.parametrizations.weight.original0'" in text and "'1.weight'" not in text
    plan = Rules(parse("freeze 0.parametrizations.weight.original0\n")).plan(model)
    assert plan.ok


# ------------------------------------------------------------------ rule files, --config, lint's walk


def test_rule_file_link_into_proc_is_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FREEZEDSL_SECRET_MARK", "s3cr3t-value")
    os.symlink("/proc/self/environ", "e.frz")
    result = CliRunner().invoke(main, ["check", "e.frz"])
    assert result.exit_code == 2
    assert "special filesystem /proc" in result.stderr.splitlines()[0]
    assert "s3cr3t" not in result.stderr + result.stdout


def test_lint_walk_skips_links_out_of_the_tree_and_fifos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FREEZEDSL_SECRET_MARK", "s3cr3t-value")
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "ok.frz").write_text("freeze all\n")
    os.symlink("/proc/self/environ", tmp_path / "tree" / "env.frz")
    (tmp_path / "outside.frz").write_text("freeze (\n")  # a syntax error, if it were read
    os.symlink(tmp_path / "outside.frz", tmp_path / "tree" / "out.frz")
    os.mkfifo(tmp_path / "tree" / "pipe.frz")
    with cpu_limit(30):
        result = CliRunner().invoke(main, ["lint", "tree"])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "s3cr3t" not in result.stdout + result.stderr
    assert "out.frz" not in result.stdout + result.stderr


def test_fifo_config_is_named_as_a_fifo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ok.frz").write_text("freeze all\n")
    os.mkfifo(tmp_path / "cfg.toml")
    with cpu_limit(30):
        result = CliRunner().invoke(main, ["lint", "--config", "cfg.toml", "ok.frz"])
    assert result.exit_code == 2
    assert "is a FIFO (named pipe)" in result.stderr.splitlines()[0]
