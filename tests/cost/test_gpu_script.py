"""benchmarks/gpu_cost.py runs end to end in --smoke mode (tiny models, CPU) and writes its report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_cost_smoke(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_cost.py"),
            "--smoke",
            "--out",
            str(tmp_path),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads((tmp_path / "gpu_cost.json").read_text())
    rows = data["rows"]
    assert not [r for r in rows if "error" in r], rows
    models = {r["model"] for r in rows}
    assert len(models) == 4
    for r in rows:
        # on CPU the measurement traces the same storages on real tensors: memory ratios agree
        assert abs(r["peak_ratio_error"]) <= 0.1, r
        assert 0 < r["est_peak_ratio"] < 1
    vit_frz = next(r for r in rows if r["rules"].startswith("rules/vit.frz"))
    assert any("FZ340" in f for f in vit_frz["findings"])
    table = (tmp_path / "gpu_cost.md").read_text()
    assert "| model | rules |" in table and "llama" in table
