"""Training that runs only in spawned or forked worker processes is instrumented.

``mp.spawn`` workers used to train to completion uninstrumented, and lint then said the
script "did not reach optimizer.step()". Each test is one real run (a few seconds: the
main process and two workers import torch).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_instrument import processes_mentioning  # tests/lint is on sys.path (rootdir mode)

from freezedsl.lint import _session, _workers
from freezedsl.lint.instrument import RunResult, run_script

SCRIPT = str(Path(__file__).parent / "scripts" / "spawn_workers.py")

pytestmark = pytest.mark.slow


def _codes(how: str, kind: str, steps: int = 0) -> tuple[RunResult, set[str]]:
    result = run_script(SCRIPT, [how, kind], steps=steps, timeout=240)
    assert processes_mentioning(SCRIPT) == [], "a worker outlived the run"
    return result, {d.code for d in result.diagnostics}


@pytest.mark.parametrize("how", ["spawn", "subprocess"])
def test_workers_are_checked(how: str, capfd: pytest.CaptureFixture[str]) -> None:
    result, codes = _codes(how, "leaky")
    assert "FZ312" not in codes, result.diagnostics
    assert "FZ301" in codes
    assert result.stopped_at_step and not result.timed_out
    assert result.models and result.optimizers
    assert "trained to the end" not in capfd.readouterr().err  # stopped at the first step


def test_correct_twin_in_workers_is_clean_over_steps(capfd: pytest.CaptureFixture[str]) -> None:
    """No finding on correct code; a forked worker is checked; --steps is watched there."""
    result, codes = _codes("fork", "correct", steps=2)
    assert codes == set(), result.diagnostics
    assert result.stopped_at_step
    assert "trained to the end" not in capfd.readouterr().err


def test_shim_is_written_and_chains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shim arms a child only when the variable is set, and never breaks it."""
    other = tmp_path / "site"
    other.mkdir()
    (other / "sitecustomize.py").write_text("import os\nos.environ['CHAINED'] = '1'\n")
    session = _session._Session(str(tmp_path / "result.json"), 0, "x.py")
    monkeypatch.setenv("PYTHONPATH", str(other))
    monkeypatch.setattr(_workers, "_watch_workers", lambda session: None)
    _workers._share_with_workers(session, None)
    probe = (
        "import os, sys; print(os.environ.get('CHAINED'), "
        "any(type(f).__name__ == '_Watcher' for f in sys.meta_path))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=dict(os.environ), check=True
    )
    assert out.stdout.split() == ["1", "True"]
    assert out.stderr == ""
