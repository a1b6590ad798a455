"""Bad-input catalogue: every way a user can hold the command line wrong.

The rule (project standards): bad input gets ONE clear line first on stderr that names
the file/line/column or the parameter, says what was wrong and what would be right;
exit code 2 (1 for a failed ``expect`` or ``fmt --check``); no traceback; nothing
half-written -- no output file appears, an existing one stays byte-identical, inputs
never change, no temporary file is left behind.

Each row of :data:`CASES` is one input. :func:`test_bad_input` runs it in-process with
click's CliRunner inside a fresh directory and checks all of the above: the exit code,
a substring of the first stderr line (``absent``: a substring it must not contain),
the first line's length, the absence of a traceback, and that a snapshot (names, kinds,
content hashes) of the working directory and of the shared model files is unchanged.

Rows marked ``bug=`` are known violations, kept as strict xfails so that fixing one
turns its row red until the mark is removed. docs/errors.md is this table in prose.
A few tests at the end run the real ``.venv/bin/freezedsl`` in a subprocess.
"""

from __future__ import annotations

import os
import resource
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from freezedsl.cli import main

from ._support import (
    CNN,
    FREEZEDSL,
    ModelFiles,
    assert_no_traceback,
    diff_snapshots,
    first_line,
    run_cli,
    snapshot,
)

Setup = Callable[[Path, ModelFiles], None]

#: A first line longer than this is not "one clear line" (every correct message in the
#: table is under 400 characters).
MAX_FIRST_LINE = 1000

MAX_RULES = 1024 * 1024  # freezedsl.syntax.parser.MAX_SOURCE_BYTES


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]  # "{m}" is the shared model-file directory
    code: int
    first: str  # must occur in the first stderr line
    setup: tuple[Setup, ...] = ()
    stdin: str | None = None
    absent: str | None = None  # must NOT occur in the first stderr line
    bug: str | None = None  # known violation: strict xfail with this reason
    skip_unless: Callable[[], bool] | None = field(default=None, compare=False)


# ------------------------------------------------------------------ setup helpers


def text(name: str, content: str) -> Setup:
    def setup(tmp: Path, m: ModelFiles) -> None:
        (tmp / name).write_text(content, encoding="utf-8")

    return setup


def raw(name: str, content: bytes) -> Setup:
    def setup(tmp: Path, m: ModelFiles) -> None:
        (tmp / name).write_bytes(content)

    return setup


def copy(model: str, name: str) -> Setup:
    def setup(tmp: Path, m: ModelFiles) -> None:
        shutil.copyfile(m[model], tmp / name)

    return setup


def scripted_bn(name: str) -> Setup:
    """A TorchScript archive of a conv + BatchNorm2d model (``freeze stats`` / ``convert``)."""

    def setup(tmp: Path, m: ModelFiles) -> None:
        import warnings

        import torch
        from torch import nn

        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit.script is deprecated
            torch.jit.save(torch.jit.script(model), str(tmp / name))

    return setup


def symlink(name: str, target: str) -> Setup:
    def setup(tmp: Path, m: ModelFiles) -> None:
        os.symlink(target, tmp / name)

    return setup


def hardlink(name: str, target: str) -> Setup:
    def setup(tmp: Path, m: ModelFiles) -> None:
        os.link(tmp / target, tmp / name)

    return setup


def mkdir(name: str) -> Setup:
    def setup(tmp: Path, m: ModelFiles) -> None:
        (tmp / name).mkdir()

    return setup


def fifo(name: str) -> Setup:
    def setup(tmp: Path, m: ModelFiles) -> None:
        os.mkfifo(tmp / name)

    return setup


def too_big(name: str) -> Setup:
    def setup(tmp: Path, m: ModelFiles) -> None:
        (tmp / name).write_bytes(b"#" * (MAX_RULES + 8))

    return setup


def rules(content: str) -> tuple[Setup, ...]:
    """The usual setup: the rule text in ``s.frz``."""
    return (text("s.frz", content),)


def plan(content: str, model: str = CNN, *extra: str) -> dict[str, object]:
    """``freezedsl plan s.frz MODEL`` with ``content`` in s.frz."""
    return {"argv": ("plan", "s.frz", model, *extra), "setup": rules(content)}


def case(id: str, code: int, first: str, **kw: object) -> Case:
    if "argv" in kw:
        kw["argv"] = tuple(kw["argv"])  # type: ignore[arg-type]
    if "setup" in kw:
        kw["setup"] = tuple(kw["setup"])  # type: ignore[arg-type]
    return Case(id=id, code=code, first=first, **kw)  # type: ignore[arg-type]


TS = "{m}/tiny_ts.pt"
OLD = b"OLD CONTENTS: must survive every failed apply"
PYPROJECT = "pyproject.toml"
LINTED = (text("r.frz", "freeze features\n"),)

# ------------------------------------------------------------------------- the table

CASES: list[Case] = [
    # ---------------------------------------------------------------- rule files
    case(
        "rules-missing",
        2,
        "missing.frz: rule file not found: missing.frz; pass the path of a .frz file",
        argv=("plan", "missing.frz", CNN),
    ),
    case(
        "rules-directory",
        2,
        "rulesdir: rulesdir is a directory; pass the path of a .frz rule file",
        argv=("plan", "rulesdir", CNN),
        setup=(mkdir("rulesdir"),),
    ),
    case(
        "rules-nul-byte",
        2,
        "s.frz:1:8: unexpected control character U+0000; rule files are plain text",
        argv=("plan", "s.frz", CNN),
        setup=(raw("s.frz", b"freeze \x00all\n"),),
    ),
    case(
        "rules-binary-elf",
        2,
        "s.frz:1:1: unexpected control character U+007F",
        argv=("apply", "s.frz", CNN),
        setup=(raw("s.frz", b"\x7fELF\x02\x01\x01\x00" + bytes(64)),),
    ),
    case(
        "rules-latin1",
        2,
        "s.frz:2:6: rule file is not UTF-8 text (byte 0xe9); save it as UTF-8",
        argv=("plan", "s.frz", CNN),
        setup=(raw("s.frz", "freeze all\n# caf\xe9\n".encode("latin-1")),),
    ),
    case(
        "rules-utf16",
        2,
        "s.frz:1:1: rule file is not UTF-8 text (byte 0xff); save it as UTF-8",
        argv=("check", "s.frz"),
        setup=(raw("s.frz", "freeze all\n".encode("utf-16")),),
    ),
    case(
        "rules-device",
        2,
        "/dev/null: /dev/null is on the special filesystem /dev (a view of the running system, "
        "not a file to read); pass the path of a .frz rule file",
        argv=("check", "/dev/null"),
        skip_unless=lambda: os.path.exists("/dev/null"),
    ),
    case(
        "rules-over-16MiB",
        2,
        f"s.frz: rule file is {MAX_RULES + 8} bytes; the limit is {MAX_RULES}",
        argv=("check", "s.frz"),
        setup=(too_big("s.frz"),),
    ),
    case(
        "rules-100k-line-syntax-error",
        2,
        "s.frz:1:100009: expected ';' or a new line to end the statement, found ')'",
        **plan("freeze " + "a" * 100_000 + " )\n"),
    ),
    case(
        "rules-100k-unknown-path",
        2,
        "matches nothing in SmallCNN",
        **plan("freeze " + "a" * 100_000 + "\n"),
    ),
    case(
        "rules-10000-parens",
        2,
        "s.frz:1:208: parentheses nested deeper than 200 levels; simplify the selector",
        **plan("freeze " + "(" * 10_000 + "all" + ")" * 10_000 + "\n"),
    ),
    case(
        "rules-except-chain-1000",
        2,
        "s.frz:1:8: selector nests 301 levels deep (each except, ',' list and '?' is a level; "
        "the limit is 300); split it into several statements",
        **plan("freeze features" + " except classifier" * 1000 + "\n"),
    ),
    case(
        "rules-stdin-syntax-error",
        2,
        "<stdin>:1:9: expected a selector",
        argv=("check", "-"),
        stdin="freeze (\n",
    ),
    # ---------------------------------------------------------------- syntax errors
    case(
        "syntax-keyword-typo",
        2,
        "s.frz:1:1: expected a statement: freeze, unfreeze, expect, convert, lr, "
        "weight_decay or at, found 'freez'",
        **plan("freez all\n"),
    ),
    case(
        "syntax-uppercase-keyword",
        2,
        "s.frz:1:1: expected a statement",
        **plan("FREEZE all\n"),
        absent="Usage",
    ),
    case(
        "syntax-missing-selector",
        2,
        "s.frz:1:7: expected a selector (a path such as fc",
        **plan("freeze\n"),
    ),
    case("syntax-unclosed-paren", 2, "s.frz:1:17: expected", **plan("freeze (features\n")),
    case(
        "syntax-stray-paren",
        2,
        "s.frz:1:16: expected ';' or a new line to end the statement, found ')'",
        **plan("freeze features)\n"),
    ),
    case(
        "syntax-double-quoted-name",
        2,
        "quote module names with backticks: `my-name`",
        **plan('freeze "features"\n'),
    ),
    case(
        "syntax-bare-equals",
        2,
        "s.frz:1:17: unexpected character '='",
        **plan("freeze features = 1\n"),
    ),
    case(
        "syntax-share-over-100",
        2,
        "s.frz:1:18: share 200% is over 100%; a share runs from 0% to 100%",
        **plan("expect trainable 200%\n"),
    ),
    case(
        "syntax-empty-range",
        2,
        "s.frz:1:18: empty range 10%..1%: the lower bound is above the upper one; write 1%..10%",
        **plan("expect trainable 10%..1%\n"),
    ),
    case(
        "syntax-expect-state",
        2,
        "s.frz:1:8: expected 'trainable' or 'frozen' after 'expect', found 'maybe'",
        **plan("expect maybe features\n"),
    ),
    case(
        "syntax-slice-step-zero",
        2,
        "s.frz:1:19: slice step cannot be zero; use a step such as 1, 2 or -1",
        **plan("freeze features[::0]\n"),
    ),
    case(
        "syntax-unterminated-backtick",
        2,
        "s.frz:1:8: unexpected character '`'",
        **plan("freeze `my-block\n"),
    ),
    case(
        "syntax-unterminated-string",
        2,
        "s.frz:1:13: unexpected character '\"'",
        **plan('freeze name~"abc\n'),
    ),
    case(
        "syntax-partial-doublestar",
        2,
        "s.frz:1:8: '**' must be a whole path segment, not part of '**x'",
        **plan("freeze **x\n"),
    ),
    case(
        "syntax-negative-epoch",
        2,
        "s.frz:1:10: epoch -1 is not a count; write a number such as epoch 3",
        **plan("at epoch -1: freeze features\n"),
    ),
    case(
        "syntax-trailing-comma", 2, "s.frz:1:17: expected a selector", **plan("freeze features,\n")
    ),
    case(
        "syntax-double-comma",
        2,
        "s.frz:1:17: expected a selector",
        **plan("freeze features,,classifier\n"),
    ),
    case(
        "syntax-convert-target",
        2,
        "s.frz:1:21: cannot convert to Foo; the supported target is FrozenBatchNorm2d",
        **plan("convert features to Foo\n"),
    ),
    case(
        "syntax-decay-factor",
        2,
        "s.frz:1:10: decay factor 2 must be a plain number in (0, 1]",
        **plan("lr decay 2 over features\n"),
    ),
    case(
        "syntax-bare-carriage-return",
        2,
        "s.frz:1:16: unexpected character",
        **plan("freeze features\rfreeze classifier\n"),
    ),
    case(
        "syntax-suggests-to-after-freeze",
        2,
        "s.frz:1:17: unexpected character '@'",
        **plan("freeze features @\n"),
        absent="'to'",
    ),
    case(
        "syntax-suggests-rparen-without-paren",
        2,
        "s.frz:1:17: expected a selector",
        **plan("freeze features,\n"),
        absent="')'",
    ),
    case(
        "syntax-mixed-schedule-units",
        2,
        "s.frz:2:1: this file schedules by epoch and here by step; use one unit for every 'at'",
        argv=("check", "s.frz"),
        setup=rules("at epoch 1: freeze features\nat step 100: unfreeze features\n"),
    ),
    case(
        "syntax-bad-regex",
        2,
        's.frz:1:14: invalid regular expression "[unclosed": unterminated character set',
        **plan('freeze name~"[unclosed"\n'),
    ),
    case(
        "syntax-nested-repetition",
        2,
        's.frz:1:14: regular expression "(a+)+$" nests repetition',
        **plan('freeze name~"(a+)+$"\n'),
    ),
    case(
        "syntax-nested-repetition-type",
        2,
        "s.frz:1:14: regular expression",
        **plan('freeze type~"(\\w+)*Norm"\n'),
    ),
    case(
        "syntax-huge-index",
        2,
        "s.frz:1:",
        **plan("freeze children[" + "9" * 5000 + "]\n"),
    ),
    case(
        "syntax-huge-epoch",
        2,
        "s.frz:1:",
        argv=("check", "s.frz"),
        setup=rules("at epoch " + "9" * 5000 + ": freeze features\n"),
    ),
    case(
        "syntax-factor-overflow-plan",
        2,
        "s.frz:1:",
        **plan("lr 1e999999999 features\n"),
    ),
    case(
        "syntax-factor-overflow-fmt",
        2,
        "s.frz:1:",
        argv=("fmt", "--check", "s.frz"),
        setup=rules("lr 1e999999999 features\n"),
    ),
    # ---------------------------------------------------------------- selection errors
    case(
        "select-unknown-path-did-you-mean",
        2,
        "s.frz:1:8: featurs matches nothing in SmallCNN; did you mean "
        "'features'? (or write featurs? if it may match nothing)",
        **plan("freeze featurs\n"),
    ),
    case(
        "select-unknown-path-lists-names",
        2,
        "s.frz:2:8: layr4 matches nothing in SmallCNN; SmallCNN has: classifier, features",
        **plan("freeze features\nfreeze layr4\n"),
    ),
    case(
        "select-index-out-of-range",
        2,
        "s.frz:1:8: features[99] selects no child module: features has 6 "
        "child modules; valid indices are 0..5 or -6..-1",
        **plan("freeze features[99]\n"),
    ),
    case(
        "select-children-out-of-range",
        2,
        "s.frz:1:8: children[10] selects no child module: the root SmallCNN has 2 child "
        "modules; valid indices are 0..1 or -2..-1",
        **plan("freeze children[10]\n"),
    ),
    case(
        "select-slice-without-params",
        2,
        "s.frz:1:8: features[5:9] matches only modules without parameters",
        **plan("freeze features[5:9]\n"),
    ),
    case(
        "select-index-a-parameter",
        2,
        "s.frz:1:8: features.0.conv.weight is a parameter, not a module",
        **plan("freeze features.0.conv.weight[0]\n"),
    ),
    case(
        "select-unknown-type",
        2,
        "s.frz:1:8: type=Linaer matches no module of SmallCNN; did you mean 'type=Linear'?",
        **plan("freeze type=Linaer\n"),
    ),
    case(
        "select-type-regex-nothing",
        2,
        's.frz:1:8: type~"Transformer" matches no module of SmallCNN',
        **plan('freeze type~"Transformer"\n'),
    ),
    case(
        "select-name-regex-nothing",
        2,
        "matches no parameter name of SmallCNN; parameter names look like",
        **plan('freeze name~"^encoder\\."\n'),
    ),
    case(
        "select-except-everything",
        2,
        "s.frz:1:8: all except all selects no parameters: 'except' removes "
        "everything the rest matches",
        **plan("freeze all except all\n"),
    ),
    case(
        "select-expect-unknown-path",
        2,
        "s.frz:1:18: fc matches nothing in SmallCNN",
        **plan("expect trainable fc\n"),
    ),
    case(
        "select-module-without-params",
        2,
        "s.frz:1:8: 1 matches only modules without parameters (ReLU)",
        argv=("plan", "s.frz", TS, "--trust-pickle"),
        setup=rules("freeze 1\n"),
    ),
    case(
        "except-removes-nothing",
        2,
        "s.frz:1:24: 'except classifier' removes nothing from features: it selects nothing inside features",
        **plan("freeze features except classifier\n"),
    ),
    case(
        "freeze-stats-on-torchscript",
        2,
        "s.frz:2:1: freeze stats type=BatchNorm2d cannot run on a TorchScript module (1 is scripted; "
        "ScriptModules support neither forward hooks nor module swaps); nothing was applied; "
        "apply it to the Python model before scripting",
        argv=("apply", "s.frz", "ts.pt", "--trust-pickle", "-o", "out.pt"),
        setup=(*rules("freeze 0\nfreeze stats type=BatchNorm2d\n"), scripted_bn("ts.pt")),
    ),
    case(
        "convert-on-torchscript",
        2,
        "s.frz:1:1: convert type=BatchNorm2d to FrozenBatchNorm2d cannot run on a TorchScript module",
        argv=("apply", "s.frz", "ts.pt", "--trust-pickle", "-o", "out.pt"),
        setup=(*rules("convert type=BatchNorm2d to FrozenBatchNorm2d\n"), scripted_bn("ts.pt"), raw("out.pt", OLD)),
    ),
    case(
        "select-error-keeps-existing-output",
        2,
        "s.frz:1:8: featurs matches nothing",
        argv=("apply", "s.frz", "model.pt", "--arch", CNN, "-o", "out.pt"),
        setup=(*rules("freeze featurs\n"), copy("cnn.pt", "model.pt"), raw("out.pt", OLD)),
    ),
    # ---------------------------------------------------------------- failed expects: exit 1
    case(
        "expect-share-fails",
        1,
        "s.frz:2:1: expect trainable 50%..100% failed: 0.00% trainable "
        "(0 of 24,058 parameters); nothing was applied",
        **plan("freeze all\nexpect trainable 50%..100%\n"),
    ),
    case(
        "expect-selector-fails",
        1,
        "s.frz:2:1: expect trainable classifier failed: 2 of 2 selected tensors "
        "are frozen: classifier.weight, classifier.bias; nothing was applied",
        **plan("freeze all\nexpect trainable classifier\n"),
    ),
    case(
        "expect-fails-apply-keeps-output",
        1,
        "s.frz:2:1: expect trainable 90%..100% failed",
        argv=("apply", "s.frz", "model.pt", "--arch", CNN, "-o", "out.pt"),
        setup=(
            *rules("freeze features\nexpect trainable 90%..100%\n"),
            copy("cnn.pt", "model.pt"),
            raw("out.pt", OLD),
        ),
    ),
    case(
        "expect-fails-apply-no-output",
        1,
        "s.frz:1:1: expect frozen 100% failed",
        argv=("apply", "s.frz", "model.pt", "--arch", CNN, "-o", "new.pt"),
        setup=(*rules("expect frozen 100%\n"), copy("cnn.pt", "model.pt")),
    ),
    # ---------------------------------------------------------------- flags
    case(
        "flag-arch-with-torchscript",
        2,
        "--arch is only used with a state dict; ",
        argv=("plan", "s.frz", TS, "--arch", CNN),
        setup=rules("freeze 0\n"),
    ),
    case(
        "flag-arch-with-architecture",
        2,
        "--arch is only used with a state dict file; "
        "'freezedsl.testing:small_cnn' is already an architecture, pass it alone",
        argv=("plan", "s.frz", CNN, "--arch", CNN),
        setup=rules("freeze features\n"),
    ),
    case(
        "flag-arch-with-pickle",
        2,
        "holds a pickled Sequential that carries its own architecture",
        argv=("plan", "s.frz", "{m}/tiny_pickled.pt", "--trust-pickle", "--arch", CNN),
        setup=rules("freeze 0\n"),
    ),
    case(
        "flag-output-is-input",
        2,
        "-o ./model.pt is an input (model.pt); write the frozen model to a new file",
        argv=("apply", "s.frz", "model.pt", "--arch", CNN, "-o", "./model.pt"),
        setup=(*rules("freeze features\n"), copy("cnn.pt", "model.pt")),
    ),
    case(
        "flag-output-symlink-to-input",
        2,
        "-o out.pt is an input (model.pt); write the frozen model to a new file",
        argv=("apply", "s.frz", "model.pt", "--arch", CNN, "-o", "out.pt"),
        setup=(
            *rules("freeze features\n"),
            copy("cnn.pt", "model.pt"),
            symlink("out.pt", "model.pt"),
        ),
    ),
    case(
        "flag-output-hardlink-to-input",
        2,
        "-o out.pt is an input (model.pt); write the frozen model to a new file",
        argv=("apply", "s.frz", "model.pt", "--arch", CNN, "-o", "out.pt"),
        setup=(
            *rules("freeze features\n"),
            copy("cnn.pt", "model.pt"),
            hardlink("out.pt", "model.pt"),
        ),
    ),
    case(
        "flag-output-is-rules-file",
        2,
        "s.frz",
        argv=("apply", "s.frz", "model.pt", "--arch", CNN, "-o", "s.frz", "-q"),
        setup=(*rules("freeze features\n"), copy("cnn.pt", "model.pt")),
    ),
    case(
        "flag-output-empty-string",
        2,
        "-o",
        argv=("apply", "s.frz", "model.pt", "--arch", CNN, "-o", ""),
        setup=(*rules("freeze features\n"), copy("cnn.pt", "model.pt")),
    ),
    case(
        "flag-output-fifo",
        2,
        "out.pt",
        argv=("apply", "s.frz", "model.pt", "--arch", CNN, "-o", "out.pt", "-q"),
        setup=(*rules("freeze features\n"), copy("cnn.pt", "model.pt"), fifo("out.pt")),
    ),
    case(
        "flag-output-directory",
        2,
        "cannot write outdir: it is a directory; pass a file path",
        argv=("apply", "s.frz", CNN, "-o", "outdir"),
        setup=(*rules("freeze features\n"), mkdir("outdir")),
    ),
    case(
        "flag-depth-zero",
        2,
        "Invalid value for '--depth'",
        argv=("show", CNN, "--depth", "0"),
    ),
    case(
        "flag-depth-not-a-number",
        2,
        "Invalid value for '--depth'",
        argv=("show", CNN, "--depth", "abc"),
    ),
    case(
        "flag-root-unknown-path",
        2,
        "--root featurs: SmallCNN has no submodule 'featurs'; did you mean 'features'?",
        argv=("show", CNN, "--root", "featurs"),
    ),
    case(
        "flag-unknown-option",
        2,
        "No such option '--bogus'",
        argv=("plan", "s.frz", CNN, "--bogus"),
        setup=rules("freeze features\n"),
    ),
    case(
        "flag-unknown-command",
        2,
        "No such command 'frobnicate'",
        argv=("frobnicate",),
    ),
    case("flag-missing-argument", 2, "Missing argument 'RULES...'", argv=("check",)),
    # ---------------------------------------------------------------- model files
    case(
        "model-missing",
        2,
        "nonexistent.pt does not exist; expected a model file or an architecture",
        **plan("freeze features\n", "nonexistent.pt"),
    ),
    case(
        "model-directory",
        2,
        "models_dir is a directory; pass a model file written by torch.save",
        **plan("freeze features\n", "{m}/models_dir"),
    ),
    case(
        "model-empty",
        2,
        "empty.pt is empty (0 bytes); expected a file written by torch.save or torch.jit.save",
        **plan("freeze features\n", "{m}/empty.pt", "--arch", CNN),
    ),
    case(
        "model-text",
        2,
        "text.pt is not a PyTorch file (it holds text)",
        **plan("freeze features\n", "{m}/text.pt", "--arch", CNN),
    ),
    case(
        "model-random-bytes",
        2,
        "random.pt is not a PyTorch file (it holds unknown binary data)",
        **plan("freeze features\n", "{m}/random.pt", "--arch", CNN),
    ),
    case(
        "model-truncated-zip",
        2,
        "cnn_truncated.pt is truncated or corrupt (its zip directory cannot be read)",
        **plan("freeze features\n", "{m}/cnn_truncated.pt", "--arch", CNN),
    ),
    case(
        "model-zip-not-torch",
        2,
        "is a zip archive but not a PyTorch file (no data.pkl inside)",
        **plan("freeze features\n", "{m}/not_torch.zip.pt", "--arch", CNN),
    ),
    case(
        "model-safetensors",
        2,
        "weights.safetensors does not fit --arch 'freezedsl.testing:small_cnn': 20 missing keys",
        **plan("freeze features\n", "{m}/weights.safetensors", "--arch", CNN),
    ),
    case(
        "model-legacy-format-truncated",
        2,
        "cnn_legacy_truncated.pt is truncated or corrupt (unexpected EOF",
        **plan("freeze features\n", "{m}/cnn_legacy_truncated.pt", "--arch", CNN),
    ),
    case(
        "model-plain-pickle",
        2,
        "plain_pickle.pkl is a Python pickle but not a torch.save file",
        **plan("freeze features\n", "{m}/plain_pickle.pkl", "--arch", CNN),
    ),
    case(
        "model-list-not-state-dict",
        2,
        "tensor_list.pt holds a list, not a state dict",
        **plan("freeze features\n", "{m}/tensor_list.pt", "--arch", CNN),
    ),
    case(
        "model-empty-dict",
        2,
        "empty_dict.pt holds an empty dict but no tensors",
        **plan("freeze features\n", "{m}/empty_dict.pt", "--arch", CNN),
    ),
    case(
        "model-bad-stored-manifest",
        2,
        "bad_manifest.pt has a 'freezedsl_manifest' entry that is a str, not a dict",
        **plan("freeze features\n", "{m}/bad_manifest.pt", "--arch", CNN),
    ),
    case(
        "model-state-dict-without-arch",
        2,
        "tiny_sd.pt holds a state dict (4 tensors) but no architecture; "
        "pass --arch package.module:callable",
        **plan("freeze 0\n", "{m}/tiny_sd.pt"),
    ),
    case(
        "model-checkpoint-without-arch",
        2,
        "cnn_ckpt.pt holds a state dict (20 tensors) but no architecture",
        **plan("freeze features\n", "{m}/cnn_ckpt.pt"),
    ),
    case(
        "model-wrong-arch-missing-keys",
        2,
        "tiny_sd.pt does not fit --arch 'freezedsl.testing:small_cnn': "
        "20 missing keys (features.0.conv.weight",
        **plan("freeze 0\n", "{m}/tiny_sd.pt", "--arch", CNN),
    ),
    case(
        "model-wrong-arch-shape-mismatch",
        2,
        "cnn.pt does not fit --arch 'freezedsl.testing:small_cnn"
        "(num_classes=3)': 2 shape mismatches (classifier.weight: file 10x64 vs model 3x64",
        **plan(
            "freeze features\n", "{m}/cnn.pt", "--arch", "freezedsl.testing:small_cnn(num_classes=3)"
        ),
    ),
    case(
        "model-pickle-without-trust",
        2,
        "tiny_pickled.pt is a pickled Python object (it references "
        "torch.nn.modules.container.Sequential); unpickling it can run arbitrary code. Pass --trust-pickle",
        **plan("freeze 0\n", "{m}/tiny_pickled.pt"),
    ),
    case(
        "arch-module-does-not-import",
        2,
        "cannot import module 'nopkg_xyz.models' for architecture "
        "'nopkg_xyz.models:net': No module named 'nopkg_xyz'",
        **plan("freeze features\n", "{m}/cnn.pt", "--arch", "nopkg_xyz.models:net"),
    ),
    case(
        "arch-attribute-typo",
        2,
        "'freezedsl.testing' has no attribute 'small_cnnn' (architecture "
        "'freezedsl.testing:small_cnnn'); did you mean 'freezedsl.testing:small_cnn'?",
        **plan("freeze features\n", "{m}/cnn.pt", "--arch", "freezedsl.testing:small_cnnn"),
    ),
    case(
        "arch-not-callable",
        2,
        "architecture 'freezedsl.testing:__all__' names a list, not a callable that returns an nn.Module",
        **plan("freeze features\n", "{m}/cnn.pt", "--arch", "freezedsl.testing:__all__"),
    ),
    case(
        "arch-returns-non-module",
        2,
        "architecture 'builtins:dict' returned a dict, not an nn.Module",
        **plan("freeze features\n", "{m}/cnn.pt", "--arch", "builtins:dict"),
    ),
    case(
        "arch-bad-keyword",
        2,
        "building architecture 'freezedsl.testing:small_cnn(bogus=1)' failed: TypeError: "
        "small_cnn() got an unexpected keyword argument 'bogus'",
        **plan("freeze features\n", "{m}/cnn.pt", "--arch", "freezedsl.testing:small_cnn(bogus=1)"),
    ),
    case(
        "arch-non-literal-argument",
        2,
        "must be Python literals (numbers, strings, True/False/None",
        **plan(
            "freeze features\n",
            "{m}/cnn.pt",
            "--arch",
            "freezedsl.testing:small_cnn(num_classes=__import__('os'))",
        ),
    ),
    case(
        "arch-malformed",
        2,
        "'not an arch' is not an architecture; expected 'package.module:callable'",
        **plan("freeze features\n", "{m}/cnn.pt", "--arch", "not an arch"),
    ),
    case(
        "arch-as-model-typo",
        2,
        "'freezedsl.testing' has no attribute 'small_cnnn'",
        **plan("freeze features\n", "freezedsl.testing:small_cnnn"),
        absent="--arch",
    ),
    # ---------------------------------------------------------------- output paths
    case(
        "output-missing-directory",
        2,
        "cannot write nodir/out.pt: directory nodir does not exist; create it first",
        argv=("apply", "s.frz", CNN, "-o", "nodir/out.pt", "-q"),
        setup=rules("freeze features\n"),
    ),
    case(
        "output-checked-before-loading",
        2,
        "cannot write nodir/out.pt: directory nodir does not exist; create it first",
        argv=("apply", "s.frz", "{m}/tiny_pickled.pt", "-o", "nodir/out.pt", "-q"),
        setup=rules("freeze 0\n"),
    ),  # the model would be refused too (a pickle without --trust-pickle): -o comes first
    case(
        "output-under-a-file",
        2,
        "not a directory",
        argv=("apply", "s.frz", CNN, "-o", "afile/out.pt", "-q"),
        setup=(*rules("freeze features\n"), text("afile", "x")),
    ),
    case(
        "output-in-proc",
        2,
        "cannot write /proc/out.pt",
        argv=("apply", "s.frz", CNN, "-o", "/proc/out.pt", "-q"),
        setup=rules("freeze features\n"),
        skip_unless=lambda: os.path.isdir("/proc/self"),
    ),
    case(
        "output-in-read-only-sys",
        2,
        "cannot write /sys/out.pt: ",  # "directory /sys is not writable" (EACCES); EROFS in containers
        argv=("apply", "s.frz", CNN, "-o", "/sys/out.pt", "-q"),
        setup=rules("freeze features\n"),
        skip_unless=lambda: os.path.isdir("/sys/kernel"),
    ),  # sysfs: no new files, even for root
    # ---------------------------------------------------------------- check / fmt
    case(
        "fmt-check-unformatted",
        1,
        "would reformat u.frz",
        argv=("fmt", "--check", "u.frz"),
        setup=(text("u.frz", "freeze   features ,classifier\n"),),
    ),
    case(
        "fmt-one-bad-file-writes-none",
        2,
        "bad.frz:1:8: unexpected control character U+0000",
        argv=("fmt", "u.frz", "bad.frz"),
        setup=(text("u.frz", "freeze   features ,classifier\n"), raw("bad.frz", b"freeze \x00\n")),
    ),
    case("fmt-missing-file", 2, "missing.frz: rule file not found", argv=("fmt", "missing.frz")),
    case(
        "check-one-missing-file",
        2,
        "missing.frz: rule file not found",
        argv=("check", "ok.frz", "missing.frz"),
        setup=(text("ok.frz", "freeze all\n"),),
    ),
    # ---------------------------------------------------------------- lint / rule
    case(
        "lint-select-unknown-code",
        2,
        "freezedsl: --select: unknown rule code 'XX999'",
        argv=("lint", "--select", "XX999", "r.frz"),
        setup=LINTED,
    ),
    case(
        "lint-select-malformed-code",
        2,
        "freezedsl: --select: malformed rule code 'fz-1'",
        argv=("lint", "--select", "fz-1", "r.frz"),
        setup=LINTED,
    ),
    case(
        "lint-ignore-did-you-mean",
        2,
        "freezedsl: --ignore: unknown rule code 'FZ9'; did you mean",
        argv=("lint", "--ignore", "FZ9", "r.frz"),
        setup=LINTED,
    ),
    case(
        "lint-config-unknown-key",
        2,
        "pyproject.toml: unknown key 'selekt' in [tool.freezedsl]",
        argv=("lint", "r.frz"),
        setup=(*LINTED, text(PYPROJECT, "[tool.freezedsl]\nselekt = ['FZ1']\n")),
    ),
    case(
        "lint-config-invalid-toml",
        2,
        "pyproject.toml: invalid TOML: Expected ']' at the end of a table "
        "declaration (at line 1, column 16)",
        argv=("lint", "--config", PYPROJECT, "r.frz"),
        setup=(*LINTED, text(PYPROJECT, "[tool.freezedsl\nselect = ['FZ1']\n")),
    ),
    case(
        "lint-config-bad-steps",
        2,
        "pyproject.toml: [tool.freezedsl] steps must be a non-negative integer",
        argv=("lint", "r.frz"),
        setup=(*LINTED, text(PYPROJECT, "[tool.freezedsl]\nsteps = -1\n")),
    ),
    case(
        "lint-config-unknown-code",
        2,
        "pyproject.toml: select: unknown rule code 'FZ999'",
        argv=("lint", "r.frz"),
        setup=(*LINTED, text(PYPROJECT, "[tool.freezedsl.lint]\nselect = ['FZ999']\n")),
    ),
    case(
        "lint-config-missing",
        2,
        "freezedsl: nonexistent.toml: config file not found",
        argv=("lint", "--config", "nonexistent.toml", "r.frz"),
        setup=LINTED,
    ),
    case(
        "lint-missing-path",
        2,
        "freezedsl: nonexistent_dir/: no such file or directory",
        argv=("lint", "nonexistent_dir/"),
    ),
    case(
        "lint-model-missing",
        2,
        "freezedsl: nonexistent.pt does not exist; expected a model file",
        argv=("lint", "r.frz", "--model", "nonexistent.pt"),
        setup=LINTED,
    ),
    case(
        "lint-report-in-missing-directory",
        2,
        "freezedsl: cannot write nodir/report.txt: directory nodir does not exist; create it first",
        argv=("lint", "r.frz", "--model", CNN, "-o", "nodir/report.txt"),
        setup=LINTED,
    ),
    case(
        "lint-report-is-an-input",
        2,
        "freezedsl: -o r.frz is one of the inputs (r.frz); write the report to a new file",
        argv=("lint", "-o", "r.frz", "r.frz"),
        setup=LINTED,
    ),
    case(
        "lint-unknown-option",
        2,
        "freezedsl lint: No such option '--bogus'",
        argv=("lint", "--bogus", "r.frz"),
        setup=LINTED,
    ),
    case(
        "lint-bad-format",
        2,
        "freezedsl lint: Invalid value for '--format'",
        argv=("lint", "--format", "xml", "r.frz"),
        setup=LINTED,
    ),
    case("rule-unknown-code", 2, "freezedsl: unknown rule code 'NOPE'", argv=("rule", "NOPE")),
    case(
        "rule-ambiguous-prefix",
        2,
        "freezedsl: 'FZ' is a prefix of several codes (FZ001, FZ002",
        argv=("rule", "FZ"),
    ),
    case(
        "rule-no-code",
        2,
        "freezedsl: give a rule CODE (e.g. freezedsl rule FZ204) or --all",
        argv=("rule",),
    ),
    case(
        "rule-code-and-all",
        2,
        "freezedsl: give either a rule CODE or --all, not both",
        argv=("rule", "FZ101", "--all"),
    ),
]


def _param(c: Case) -> object:
    marks = []
    if c.bug:
        marks.append(pytest.mark.xfail(strict=True, reason=c.bug))
    if c.skip_unless is not None and not c.skip_unless():
        marks.append(pytest.mark.skip(reason="needs this system path"))
    return pytest.param(c, id=c.id, marks=marks)


def test_catalogue_is_large_and_ids_are_unique() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("c", [_param(c) for c in CASES])
def test_bad_input(
    c: Case, model_files: ModelFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FREEZEDSL_DEBUG", raising=False)
    for setup in c.setup:
        setup(work, model_files)
    argv = [a.replace("{m}", str(model_files.root)) for a in c.argv]
    before, models_before = snapshot(work), snapshot(model_files.root)

    result = CliRunner().invoke(main, argv, input=c.stdin)

    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert_no_traceback(result.stdout, result.stderr)
    line = first_line(result.stderr)
    assert result.exit_code == c.code, (result.exit_code, result.stderr[:2000])
    assert c.first in line, line[:2000]
    if c.absent is not None:
        assert c.absent not in line, line[:2000]
    assert len(line) <= MAX_FIRST_LINE, f"first line has {len(line)} characters"
    assert diff_snapshots(before, snapshot(work)) == []
    assert diff_snapshots(models_before, snapshot(model_files.root)) == []


# ------------------------------------------------------------ inputs that are not errors


def test_empty_rule_file_applies_nothing(
    model_files: ModelFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Judgement call, pinned: an empty (or comment-only) rule file is a valid program.

    ``check`` says "ok (0 statements)", ``plan`` shows "changes: 0 tensors" and
    ``apply -o`` writes the checkpoint with unchanged flags, all exit 0. See
    docs/errors.md: acceptable because the plan says so, but a warning would help
    (with ``-q`` nothing at all tells the user that the file was empty).
    """
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.frz").write_bytes(b"")
    (tmp_path / "comments.frz").write_text("# nothing yet\n\n")
    runner = CliRunner()
    for name in ("empty.frz", "comments.frz"):
        checked = runner.invoke(main, ["check", name])
        assert checked.exit_code == 0 and f"{name}: ok (0 statements)" in checked.stdout
        applied = runner.invoke(
            main,
            ["apply", name, f"{model_files.root}/cnn.pt", "--arch", CNN, "-o", f"out-{name}.pt"],
        )
        assert applied.exit_code == 0, applied.stderr
        assert "changes: 0 tensors" in applied.stdout
        assert applied.stderr == ""
        assert (tmp_path / f"out-{name}.pt").is_file()


def test_parentheses_in_comments_do_not_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.frz").write_text("# " + "(" * 201 + "\nfreeze all\n")
    result = CliRunner().invoke(main, ["check", "c.frz"])
    assert result.exit_code == 0, result.stderr


# ------------------------------------------------------------------- the real binary

needs_binary = pytest.mark.skipif(not FREEZEDSL.exists(), reason=f"{FREEZEDSL} not installed")


@needs_binary
def test_real_cli_syntax_error_has_source_line_and_caret(tmp_path: Path) -> None:
    (tmp_path / "bad.frz").write_text("freeze features\nfreeze features[::0]\n")
    done = run_cli(["check", "bad.frz"], cwd=tmp_path)
    assert done.returncode == 2
    assert_no_traceback(done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert lines == [
        "bad.frz:2:19: slice step cannot be zero; use a step such as 1, 2 or -1",
        "  freeze features[::0]",
        "                    ^",
    ]
    assert lines[2].index("^") - 2 == 19 - 1  # the caret sits under column 19


@needs_binary
def test_real_cli_model_error_is_exactly_one_line(model_files: ModelFiles, tmp_path: Path) -> None:
    """No torch warnings, no traceback: stderr is the one message line and nothing else."""
    (tmp_path / "s.frz").write_text("freeze 0\n")
    done = run_cli(["plan", "s.frz", str(model_files["tiny_pickled.pt"])], cwd=tmp_path)
    assert done.returncode == 2
    assert_no_traceback(done.stdout, done.stderr)
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "is a pickled Python object" in done.stderr
    assert done.stdout == ""


@needs_binary
def test_real_cli_failed_expect_writes_nothing(model_files: ModelFiles, tmp_path: Path) -> None:
    (tmp_path / "s.frz").write_text("freeze all\nexpect trainable > 0%\n")
    (tmp_path / "out.pt").write_bytes(OLD)
    before = snapshot(tmp_path)
    done = run_cli(
        ["apply", "s.frz", str(model_files["cnn.pt"]), "--arch", CNN, "-o", "out.pt"], cwd=tmp_path
    )
    assert done.returncode == 1
    assert_no_traceback(done.stdout, done.stderr)
    assert first_line(done.stderr).startswith(
        "s.frz:2:1: expect trainable > 0% failed: 0.00% trainable"
    )
    assert diff_snapshots(before, snapshot(tmp_path)) == []


@needs_binary
def test_real_cli_unknown_option_is_one_line(tmp_path: Path) -> None:
    done = run_cli(["plan", "--bogus", "s.frz", CNN], cwd=tmp_path)
    assert done.returncode == 2
    assert "No such option '--bogus'" in first_line(done.stderr)


@needs_binary
def test_real_cli_internal_error_of_huge_index(tmp_path: Path) -> None:
    (tmp_path / "s.frz").write_text("freeze children[" + "9" * 5000 + "]\n")
    done = run_cli(["check", "s.frz"], cwd=tmp_path)
    assert done.returncode == 2
    assert "internal error" not in done.stderr
    assert first_line(done.stderr).startswith("s.frz:1:")


def _limit_memory() -> None:  # runs in the child before exec
    limit = 1 << 30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


@needs_binary
@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_real_cli_endless_rule_file(tmp_path: Path) -> None:
    done = run_cli(["check", "/dev/zero"], cwd=tmp_path, timeout=60, preexec_fn=_limit_memory)
    assert done.returncode == 2
    assert "internal error" not in done.stderr
    assert "/dev/zero" in first_line(done.stderr)


def test_catalogue_argv_placeholders_are_known() -> None:
    for c in CASES:
        for arg in c.argv:
            assert "{" not in arg.replace("{m}", ""), (c.id, arg)
