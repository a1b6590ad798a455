"""examples/digits_transfer.py runs end to end (``--quick``) and writes its two results."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="the digits example needs scikit-learn (extra: examples)")
pytest.importorskip("matplotlib", reason="the digits example needs matplotlib (extra: examples)")

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "digits_transfer.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("digits")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
        check=False,
        cwd=tmp_path_factory.mktemp("cwd"),  # the script finds its rule files itself
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result, out


@pytest.mark.slow
def test_quick_run_exits_cleanly(quick_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    result, _ = quick_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1].startswith("verified: ")


@pytest.mark.slow
def test_table_has_three_methods(quick_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    result, out = quick_run
    assert result.returncode == 0, result.stderr[-3000:]
    table = (out / "digits.md").read_text(encoding="utf-8")
    rows = [line for line in table.splitlines() if re.match(r"\| \([abc]\) ", line)]
    assert [row.split("|")[1].strip() for row in rows] == [
        "(a) full fine-tune",
        "(b) frozen backbone",
        "(c) gradual unfreezing",
    ]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 9, row
        assert re.fullmatch(r"\d+\.\d% \([+-]\d+\.\d\)", cells[3]), row  # A-test (change)
        assert re.fullmatch(r"\d+\.\d%", cells[4]), row  # B-test
    # Trainable counts come from the plan: all 24,058 for (a), the 650-element head for (b).
    assert rows[0].split("|")[3].strip() == "24,058"
    assert rows[1].split("|")[3].strip() == "650"
    assert "--quick" in table  # the exact command is recorded


@pytest.mark.slow
def test_plot_is_a_png(quick_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    result, out = quick_run
    assert result.returncode == 0, result.stderr[-3000:]
    png = out / "digits.png"
    assert png.stat().st_size > 1000
    assert png.read_bytes()[:8] == PNG_MAGIC
