"""A sample of benchmarks/bench_run_mode.py: real-style scripts under ``lint --steps 3``.

The whole table (10 scripts, 16 runs) is benchmarks/results/run_mode.md; this runs three
of its runs so the suite stays fast: a correct alternation (0 findings) and a
mid-training freeze (caught) with its correct twin.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_run_mode.py"


@pytest.mark.slow
def test_real_style_scripts_sample() -> None:
    spec = importlib.util.spec_from_file_location("bench_run_mode", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_run_mode"] = bench
    spec.loader.exec_module(bench)
    rows = bench.run(3, only=["cyclegan.py", "stale_grads.py"])
    assert [(r["script"], r["bug"], r["codes"]) for r in rows] == [
        ("stale_grads.py", False, []),
        ("stale_grads.py", True, ["FZ311"]),
        ("cyclegan.py", False, []),
    ]
    assert all(r["ok"] for r in rows)
    summary = bench.table(rows, 3).splitlines()[0]
    assert "2/2 correct scripts with 0 runtime findings, 1/1 bugs caught" in summary
