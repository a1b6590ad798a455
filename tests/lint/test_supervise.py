"""No process outlives ``freezedsl lint``: normal end, timeout, SIGTERM, SIGHUP, SIGINT, SIGKILL.

Each case runs the real command in a subprocess on a script that starts a sleeper in a
new session (``setsid``), the way a data server or a daemon would, and then checks that
the sleeper is gone and that lint's output pipe reached end-of-file (nobody holds it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from freezedsl.lint import supervise

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="process-tree tracking reads /proc"
)

#: Starts a sleeper in a new session that inherits the script's output, waits until the
#: sleeper is running, then lives for LIVE seconds.
SCRIPT = """\
import os, subprocess, sys, time
mark = os.environ["MARK"]
subprocess.Popen(
    [sys.executable, "-c",
     "import os, time; open(os.environ['MARK'] + '.tmp', 'w').write(str(os.getpid()));"
     "os.replace(os.environ['MARK'] + '.tmp', os.environ['MARK']); time.sleep(120)"],
    start_new_session=True,
)
while not os.path.exists(mark):
    time.sleep(0.02)
time.sleep(float(os.environ["LIVE"]))
"""


#: ``python -m freezedsl`` with Ctrl-C handled even when the tests run with SIGINT ignored
#: (a background job inherits SIG_IGN, and Python then leaves it ignored).
_MAIN = (
    "import runpy, signal\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "runpy.run_module('freezedsl', run_name='__main__', alter_sys=True)\n"
)


def _alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _run_lint(
    tmp_path: Path, live: float, extra: list[str], sig: int | None
) -> tuple[int, str, int]:
    """(exit status, output, sleeper pid) of ``freezedsl lint [extra] script.py``."""
    script = tmp_path / "script.py"
    script.write_text(SCRIPT, encoding="utf-8")
    mark = tmp_path / "sleeper.pid"
    env = {**os.environ, "MARK": str(mark), "LIVE": str(live)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _MAIN, "lint", *extra, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
        start_new_session=True,  # our own signals only reach lint
    )
    deadline = time.monotonic() + 60
    while not mark.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert mark.exists(), "the script did not start its sleeper"
    if sig is not None:
        time.sleep(0.3)
        proc.send_signal(sig)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()  # returns only when no process holds the pipe
    code = proc.wait(timeout=30)
    return code, out, int(mark.read_text())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "live", "extra", "sig", "code", "says"),
    [
        ("normal-end", 0.0, [], None, 1, "finished"),
        ("timeout", 60.0, ["--timeout", "1"], None, 1, "stopped at the timeout (not finished)"),
        ("sigterm", 60.0, ["-o", "report.txt"], signal.SIGTERM, 143, "terminated by SIGTERM"),
        ("sighup", 60.0, [], signal.SIGHUP, 129, "terminated by SIGHUP"),
        ("sigint", 60.0, [], signal.SIGINT, 130, "freezedsl: interrupted"),
        ("sigkill", 60.0, [], signal.SIGKILL, -signal.SIGKILL, ""),
    ],
)
def test_no_process_outlives_lint(
    tmp_path: Path, case: str, live: float, extra: list[str], sig: int | None, code: int, says: str
) -> None:
    status, out, sleeper = _run_lint(tmp_path, live, extra, sig)
    assert status == code, out
    assert says in out
    assert "Traceback" not in out
    deadline = time.monotonic() + 5  # SIGKILL: the child's lifeline watcher needs a moment
    while _alive(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(sleeper), f"{case}: the script's setsid() sleeper outlived lint"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp") or p.name == "report.txt"]


def test_run_supervised_kills_orphans_and_keeps_the_exit_code(tmp_path: Path) -> None:
    """The library function: the child's own status, its orphaned descendants ended."""
    mark = tmp_path / "pid"
    code = (
        "import os, subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
        " start_new_session=True)\n"
        f"open({str(mark)!r}, 'w').write(str(p.pid))\n"
        "sys.exit(3)\n"
    )
    status, timed_out = supervise.run_supervised(
        [sys.executable, "-c", code], env=dict(os.environ), timeout=30
    )
    assert (status, timed_out) == (3, False)
    assert not _alive(int(mark.read_text()))


def test_run_supervised_timeout_and_callers_own_children_survive() -> None:
    """A timed-out run is stopped; a process the caller started before is left alone."""
    mine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        start = time.monotonic()
        status, timed_out = supervise.run_supervised(
            [sys.executable, "-c", "import time; time.sleep(60)"],
            env=dict(os.environ),
            timeout=0.5,
            grace=0.5,
        )
        assert timed_out and status == -signal.SIGTERM
        assert time.monotonic() - start < 20
        assert mine.poll() is None and _alive(mine.pid)
    finally:
        mine.kill()
        mine.wait()


def test_subreaper_state_is_restored() -> None:
    before = supervise.set_subreaper(False)
    if before is None:
        pytest.skip("prctl is not available")
    supervise.run_supervised([sys.executable, "-c", "pass"], env=dict(os.environ), timeout=30)
    assert supervise.set_subreaper(False) is False


def test_descendants_sees_a_grandchild() -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import subprocess, sys, time\n"
                "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
                "time.sleep(30)\n"
            ),
        ]
    )
    try:
        deadline = time.monotonic() + 20
        found: list[tuple[int, str]] = []
        while time.monotonic() < deadline:
            found = supervise.descendants(child.pid) or []
            if found:
                break
            time.sleep(0.05)
        assert len(found) == 1
        assert supervise.kill_tree(child.pid) == 1
        assert not _alive(found[0][0])
    finally:
        child.kill()
        child.wait()
