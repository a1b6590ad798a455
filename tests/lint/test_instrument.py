"""Instrumented runs of the tiny training scripts in tests/lint/scripts/.

Each run is a real child process (about 1.5 s for the torch import), so the scripts are
small and every test checks several things about one run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from freezedsl.errors import UsageError
from freezedsl.lint import _bootstrap, _session
from freezedsl.lint.instrument import RunResult, run_script
from freezedsl.lint.registry import RULES

SCRIPTS = Path(__file__).parent / "scripts"


def script(name: str) -> str:
    return str(SCRIPTS / name)


def processes_mentioning(text: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if text in cmdline and not _is_zombie(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _is_zombie(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True  # gone
    return any(line.startswith("State:") and "Z" in line.split()[1] for line in status.splitlines())


def run(name: str, *args: str, **kw: object) -> RunResult:
    result = run_script(script(name), list(args), **kw)  # type: ignore[arg-type]
    assert processes_mentioning(script(name)) == [], "a process of the run survived"
    return result


def by_code(result: RunResult, code: str) -> set[str | None]:
    return {d.obj for d in result.diagnostics if d.code == code}


def test_rules_registered() -> None:
    assert RULES["FZ312"].name == "no-optimizer-step"
    assert RULES["FZ313"].name == "run-incomplete"


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_leaky_script_is_flagged_at_first_step(capfd: pytest.CaptureFixture[str]) -> None:
    result = run("leaky.py")
    assert result.stopped_at_step and result.exit_code is None and result.crashed is None
    assert by_code(result, "FZ302") == {"0.weight", "0.bias"}
    assert all(d.path == script("leaky.py") for d in result.diagnostics)
    assert result.models == ["Sequential (58 params, 18 trainable)"]
    assert result.optimizers == ["SGD(lr=0.1, momentum=0.9; 1 groups, 4 tensors)"]
    out, err = capfd.readouterr()
    assert "step 0" not in out + err  # stopped before the first step ran


def test_leaky_script_moves_frozen_params_over_steps(capfd: pytest.CaptureFixture[str]) -> None:
    result = run("leaky.py", steps=3)
    assert result.stopped_at_step and result.exit_code is None
    moved = [d for d in result.diagnostics if d.code == "FZ311"]
    assert {d.obj for d in moved} == {"0.weight", "0.bias"}
    assert all(float(str(d.extra["max_abs_change"])) > 0 for d in moved)
    assert "changed in optimizer step 1 of SGD" in moved[0].message
    out, err = capfd.readouterr()
    # The script's prints pass through to stderr; stdout stays clean for lint output.
    assert "step 0 loss" in err and "step 1 loss" in err and "step 2 loss" not in err
    assert "step 0" not in out


def test_script_ending_before_the_requested_steps() -> None:
    result = run("leaky.py", steps=50)  # the script only has 20 steps
    assert result.exit_code == 0 and not result.stopped_at_step and result.crashed is None
    moved = [d for d in result.diagnostics if d.code == "FZ311"]
    assert {d.obj for d in moved} == {"0.weight", "0.bias"}
    assert all("changed in optimizer step 1 of SGD" in d.message for d in moved)


def test_correct_twin_is_clean() -> None:
    result = run("correct.py", steps=3)
    assert result.stopped_at_step
    assert result.diagnostics == []


def test_crash_is_reported() -> None:
    result = run("crash.py")
    assert result.exit_code == 1 and not result.stopped_at_step
    assert result.crashed is not None
    assert result.crashed.startswith("ValueError: learning rate must be positive, got -1.0 (")
    assert result.crashed.endswith("crash.py:9)")
    assert by_code(result, "FZ312") == {None}
    assert "crashed (ValueError" in result.diagnostics[0].message


def test_sys_exit_before_stepping() -> None:
    result = run("exit3.py")
    assert result.exit_code == 3 and result.crashed is None and not result.stopped_at_step
    assert [d.code for d in result.diagnostics] == ["FZ312"]
    assert "exited with code 3" in result.diagnostics[0].message


def test_never_steps() -> None:
    result = run("never_steps.py")
    assert result.exit_code == 0 and result.crashed is None and not result.stopped_at_step
    assert [d.code for d in result.diagnostics] == ["FZ312"]
    assert "finished without calling optimizer.step()" in result.diagnostics[0].message


def test_argv_main_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/nonexistent/marker")
    record = tmp_path / "seen.json"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"lr": 0.01, "record": str(record), "freeze_head": True}))
    result = run("train_args.py", str(config))
    seen = json.loads(record.read_text())
    assert seen["argv"] == [script("train_args.py"), str(config)]
    assert seen["file"] == script("train_args.py")
    assert seen["path0"] == os.path.realpath(SCRIPTS)
    # restored for the script, behind the shim that instruments spawned workers
    shim, rest = seen["pythonpath"].split(os.pathsep, 1)
    assert rest == "/nonexistent/marker" and shim.endswith("shim")
    assert seen["leaked_env"] == []
    assert result.stopped_at_step
    assert by_code(result, "FZ305") == {"2"}  # the config froze the head


def test_grandchildren_are_cleaned_up(tmp_path: Path) -> None:
    pid_file = tmp_path / "helper.pid"
    result = run("spawns.py", str(pid_file))
    assert result.stopped_at_step
    assert _is_zombie(int(pid_file.read_text()))  # killed with the script's process group


def test_timeout_kills_the_run() -> None:
    result = run("hangs.py", timeout=3.0)
    assert result.timed_out and result.exit_code is None and not result.stopped_at_step
    assert [d.code for d in result.diagnostics] == ["FZ313"]
    assert "within 3s" in result.diagnostics[0].message


def test_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        run_script(str(tmp_path / "missing.py"), [])
    with pytest.raises(UsageError):
        run_script(script("leaky.py"), [], python=str(tmp_path / "no-python"))


def test_find_models_picks_top_level_owners() -> None:
    """In-process: wrappers are kept, children and models outside the optimizer are not."""

    class Wrapper(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

    student, teacher = nn.Sequential(nn.Linear(2, 2)), nn.Linear(2, 2)
    wrapped = Wrapper(student)
    other = nn.Linear(3, 3)
    opt_b = torch.optim.SGD(other.parameters(), lr=0.1)
    opt_a = torch.optim.SGD(student.parameters(), lr=0.1)
    found = _session.find_models([opt_a, opt_b])
    assert found[0] is wrapped and found[1] is other and len(found) == 2
    assert teacher not in found


def test_bootstrap_argument_parsing() -> None:
    assert _bootstrap._parse(["--result", "r.json", "--steps", "2", "--", "t.py", "--", "-x"]) == (
        "r.json",
        2,
        "t.py",
        ["--", "-x"],
    )
    with pytest.raises(SystemExit):
        _bootstrap._parse(["--result", "r.json", "t.py"])


def test_crash_before_first_step_is_checked_and_reported() -> None:
    """All frozen: backward() raises; FZ304 explains why, next to the crash (issue 12)."""
    result = run("all_frozen.py")
    assert result.crashed and "does not require grad" in result.crashed
    assert by_code(result, "FZ304") == {None} and by_code(result, "FZ305") == {"2"}
    assert not by_code(result, "FZ312")  # the model and optimizer were checked
    assert result.models == ["Sequential (58 params, 0 trainable)"]


def test_half_built_module_in_the_process_is_skipped() -> None:
    """Its twin trains a correct model: clean, no FZ003, no internal error (issue 11)."""
    result = run("half_built.py")
    assert result.crashed is None and result.stopped_at_step
    assert result.diagnostics == []
    assert result.models == ["Sequential (58 params, 18 trainable)"]


@pytest.mark.slow
def test_every_step_is_watched() -> None:
    """Issue 12: a freeze added mid-training is caught at the step that moves it; GAN
    alternation, an EMA teacher and gradual unfreezing are not findings."""
    bug = run("watch.py", "midfreeze", steps=5)
    moved = [d for d in bug.diagnostics if d.code == "FZ311"]
    assert {d.obj for d in moved} == {"0.weight", "0.bias"}
    assert {d.extra["step"] for d in moved} == {3}
    assert all("changed in optimizer step 3 of SGD" in d.message for d in moved)
    assert run("watch.py", "midfreeze-ok", steps=5).diagnostics == []
    ok = run("watch.py", "ok", steps=5)
    assert ok.stopped_at_step and ok.crashed is None
    assert [(d.code, d.obj) for d in ok.diagnostics] == []


@pytest.mark.slow
def test_freeze_after_accelerate_prepare() -> None:
    """Issue 16.3: accelerator.prepare() is treated like DDP wrapping (FZ314)."""
    pytest.importorskip("accelerate")
    accel = str(Path(__file__).parents[2] / "benchmarks" / "run_mode" / "accelerate_prepare.py")
    bad = run(accel, "--bug", steps=2)  # the run-mode benchmark's script: freeze after prepare
    assert bad.crashed is None
    fz314 = [d for d in bad.diagnostics if d.code == "FZ314"]
    assert len(fz314) == 1 and "2 frozen (0.weight, 0.bias)" in fz314[0].message
    good = run(accel, steps=2)
    assert good.crashed is None and good.diagnostics == []


def test_models_are_checked_when_the_optimizer_is_built() -> None:
    """A script that ends before its first step still gets its model and optimizers
    checked as they were built; the correct twin (which also builds a GAN pair's two
    optimizers) gets only FZ312."""
    result = run("built_no_step.py", "--bug")
    assert result.exit_code == 0 and not result.stopped_at_step
    assert {d.code for d in result.diagnostics} == {"FZ301", "FZ304", "FZ305", "FZ312"}
    assert by_code(result, "FZ312") == {None}
    fz312 = next(d for d in result.diagnostics if d.code == "FZ312")
    assert "only the models and optimizers as built were checked" in fz312.message
    twin = run("built_no_step.py")
    assert [d.code for d in twin.diagnostics] == ["FZ312"]
    assert "only the models and optimizers as built were checked" in twin.diagnostics[0].message


def test_build_time_findings_are_replaced_by_the_first_step() -> None:
    """The check at the first step replaces the one made when the optimizer was built:
    each finding once. The all-frozen model (head included) crashes at backward(), so
    the crash check reports it, once."""
    result = run("built_no_step.py", "--bug", "--step")
    assert result.crashed is not None and "does not require grad" in result.crashed
    found = [(d.code, d.obj) for d in result.diagnostics]
    assert len(found) == len(set(found))
    assert {c for c, _ in found} == {"FZ301", "FZ304", "FZ305"}  # checked: no FZ312
    twin = run("built_no_step.py", "--step", steps=1)
    assert twin.stopped_at_step and twin.diagnostics == []


def test_crash_after_the_first_step_says_nothing_is_trainable() -> None:
    """A second phase whose model stayed all frozen crashes at backward() after the
    first phase stepped: the crash check adds FZ304/FZ305 for it; the fixed twin runs
    its steps with no finding."""
    result = run("second_phase_frozen.py", steps=3)
    assert result.crashed is not None and "does not require grad" in result.crashed
    assert {d.code for d in result.diagnostics} == {"FZ304", "FZ305"}
    twin = run("second_phase_frozen.py", "--fixed", steps=3)
    assert twin.crashed is None and twin.diagnostics == []
