"""Instrumented run of a training script: ``freezedsl lint train.py config.json``.

The script runs in a child process (``python -m freezedsl.lint._bootstrap``) so that its
``sys.exit``, argparse errors and crashes stay its own, and so that stopping it early
is a plain ``os._exit`` there. The child runs the FZ3xx checks right before the first
``optimizer.step()`` (and, with ``steps=N``, watches frozen parameters for N steps),
writes a JSON result and ends; this side waits, enforces the timeout, and turns the JSON
back into diagnostics. However the run ends, every process it started is killed
(:func:`freezedsl.lint.supervise.run_supervised`).

The script's stdout and stderr both go to this process's stderr, so lint output on
stdout stays clean. This module does not import torch.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freezedsl.errors import UsageError
from freezedsl.lint.registry import Diagnostic, Rule, Severity, diag, register
from freezedsl.lint.supervise import run_supervised

__all__ = ["RunResult", "run_script"]

_ROOT = str(Path(__file__).resolve().parents[2])  # the directory that holds freezedsl/
_GRACE_SECONDS = 5.0

NO_OPTIMIZER_STEP = register(
    Rule(
        "FZ312",
        "no-optimizer-step",
        Severity.WARNING,
        "The script ended without calling optimizer.step(); no training step was checked.",
        what="""
Reported by ``freezedsl lint train.py ...`` when the script exits, fails or is stopped
before any ``torch.optim.Optimizer.step()`` runs. The models and optimizers are still
checked right after each optimizer is built (the findings of the last such check are
reported with this one, and the message says so), but nothing was compared across a
step (FZ302, FZ311) and a freeze made later in the script was never seen.
""",
        why="""
A clean lint result would be misleading: no training was looked at. Common causes are a
config that skips training (evaluation only, ``--dry-run``), an early crash, or an
optimizer that does not subclass ``torch.optim.Optimizer``.
""",
        example="""
$ freezedsl lint train.py --help        # argparse prints help and exits 0
""",
        use_instead="""
$ freezedsl lint train.py config.json   # arguments that reach the first training step
""",
    )
)

RUN_INCOMPLETE = register(
    Rule(
        "FZ313",
        "run-incomplete",
        Severity.WARNING,
        "The instrumented run ended before its checks finished (timeout, signal or os._exit).",
        what="""
Reported by ``freezedsl lint train.py ...`` when the script hit the timeout before its
first ``optimizer.step()``, or when the run ended without a final report while the
``--steps N`` window was still open (timeout, killed by a signal, ``os._exit``). On a
timeout the script and every process it started are killed (see Nothing outlives a run).
""",
        why="""
Nothing, or not everything, was checked: a silent pass would be misleading. Long data
loading or model downloads before the first step are the usual cause.
""",
        example="""
$ freezedsl lint train.py big.json --timeout 60
""",
        use_instead="""
$ freezedsl lint train.py small.json --timeout 600   # a config that reaches a step sooner
""",
    )
)


@dataclass
class RunResult:
    """Outcome of :func:`run_script`."""

    diagnostics: list[Diagnostic]
    exit_code: int | None  # the script's own exit code; None when we stopped it
    stopped_at_step: bool  # stopped at the first optimizer.step() (or after N steps)
    crashed: str | None  # "ValueError: message (train.py:12)" when the script raised
    models: list[str] = field(default_factory=list)
    optimizers: list[str] = field(default_factory=list)
    timed_out: bool = False


def _diagnostic(raw: dict[str, Any]) -> Diagnostic:
    return Diagnostic(
        code=str(raw["code"]),
        message=str(raw["message"]),
        path=str(raw["path"]),
        line=raw.get("line"),
        col=raw.get("col"),
        obj=raw.get("obj"),
        severity=Severity(raw.get("severity", "warning")),
        extra=dict(raw.get("extra") or {}),
    )


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def run_script(
    script: str,
    args: Sequence[str],
    *,
    steps: int = 0,
    timeout: float = 600.0,
    python: str = sys.executable,
) -> RunResult:
    """Run ``python script args...`` with the runtime checks armed; see the module docstring.

    Stops the script before its first ``optimizer.step()`` (``steps=0``) or after ``steps``
    steps of that optimizer. Raises :class:`~freezedsl.errors.UsageError` when the script
    does not exist or ``python`` cannot be started.
    """
    if not Path(script).is_file():
        raise UsageError(f"no such training script: {script}", path=script)
    if steps < 0:
        raise UsageError(f"steps must be 0 or more, got {steps}")
    env = dict(os.environ)
    env["FREEZEDSL_BOOTSTRAP_ROOT"] = _ROOT
    if "PYTHONPATH" in env:
        env["FREEZEDSL_BOOTSTRAP_PYTHONPATH"] = env["PYTHONPATH"]
        env["PYTHONPATH"] = _ROOT + os.pathsep + env["PYTHONPATH"]
    else:
        env["PYTHONPATH"] = _ROOT

    with tempfile.TemporaryDirectory(prefix="freezedsl-lint-") as tmp:
        result_file = os.path.join(tmp, "result.json")
        cmd = [
            python,
            "-m",
            "freezedsl.lint._bootstrap",
            "--result",
            result_file,
            "--steps",
            str(steps),
            "--",
            script,
            *args,
        ]
        try:  # the run and everything it starts end with it (freezedsl.lint.supervise)
            returncode, timed_out = run_supervised(
                cmd, env=env, timeout=timeout, grace=_GRACE_SECONDS
            )
        except OSError as exc:
            raise UsageError(f"cannot start {python}: {exc}") from exc

        raw: dict[str, Any] | None = None
        with contextlib.suppress(OSError, ValueError):
            raw = json.loads(Path(result_file).read_text(encoding="utf-8"))
    return _result(script, steps, timeout, returncode, timed_out, raw)


def _result(
    script: str,
    steps: int,
    timeout: float,
    returncode: int,
    timed_out: bool,
    raw: dict[str, Any] | None,
) -> RunResult:
    if raw is None:  # the bootstrap never started (wrong interpreter, freezedsl missing)
        return RunResult(
            [],
            returncode,
            False,
            f"freezedsl could not start the script (exit code {returncode}); see the output above",
        )
    found = [_diagnostic(d) for d in raw.get("diagnostics", [])]
    checked = bool(raw.get("checked"))
    # the models were checked when an optimizer was built, though no step followed
    built = any(
        str(n).startswith("checked when the optimizer was built") for n in raw.get("notes") or []
    )
    nothing = (
        "only the models and optimizers as built were checked, no step"
        if built
        else "nothing was checked at runtime"
    )
    result = RunResult(
        found,
        raw.get("exit_code"),
        bool(raw.get("stopped_at_step")),
        raw.get("crashed"),
        list(raw.get("models", [])),
        list(raw.get("optimizers", [])),
        timed_out,
    )
    if not raw.get("final"):  # ended without reporting: our timeout, a signal, os._exit
        result.exit_code = None if timed_out else returncode
        if timed_out:
            how = f"was stopped at the {timeout:g}s timeout"
        elif returncode < 0:
            result.crashed = f"killed by {_signal_name(returncode)}"
            how = f"was {result.crashed}"
        else:
            how = f"ended abruptly with exit code {returncode}"
        if checked:
            result.diagnostics.append(
                diag(
                    RUN_INCOMPLETE,
                    f"the script {how} after {raw.get('steps_done', 0)} of {steps} steps, so "
                    "frozen parameters were not compared; rerun with fewer steps or a longer "
                    "timeout",
                    script,
                )
            )
            return result
        if timed_out:
            result.diagnostics.append(
                diag(
                    RUN_INCOMPLETE,
                    f"the script did not reach optimizer.step() within {timeout:g}s and was "
                    f"stopped, so {nothing}; raise the timeout or use a config that starts "
                    "training sooner",
                    script,
                )
            )
            return result
    if not checked:
        if result.crashed:
            why = f"crashed ({result.crashed}) before calling optimizer.step()"
        elif result.exit_code:
            why = f"exited with code {result.exit_code} before calling optimizer.step()"
        else:
            why = "finished without calling optimizer.step()"
        result.diagnostics.append(
            diag(
                NO_OPTIMIZER_STEP,
                f"script {why}; {nothing}; run it with arguments that reach the first "
                "training step",
                script,
            )
        )
    return result
