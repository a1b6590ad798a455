"""Static + run-mode recall on the bug corpus (benchmarks/bench_corpus_recall.py).

The whole measurement (every harness in tests/lint/corpus/run/, a few seconds each) is
benchmarks/results/corpus_recall.md; here the harnesses' metadata is checked, and the
benchmark's --quick subset runs: a bug run mode catches, one it documents as missed,
and a correct control that must stay clean.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

import freezedsl.lint.instrument
import freezedsl.lint.runtime  # noqa: F401 - registers the FZ3xx rules
from freezedsl.lint.registry import RULES

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).parent / "corpus"


def bench() -> ModuleType:
    path = ROOT / "benchmarks" / "bench_corpus_recall.py"
    spec = importlib.util.spec_from_file_location("bench_corpus_recall", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_corpus_recall"] = module
    spec.loader.exec_module(module)
    return module


def test_every_static_miss_has_a_run_harness() -> None:
    """The combined figure covers the whole corpus: a bug the static checks miss is run."""
    b = bench()
    for path in sorted((CORPUS / "bugs").glob("b*.py")):
        key = path.stem.split("_")[0]
        if not b.static_codes(path):
            assert (CORPUS / "run" / f"{key}_run.py").exists(), f"{path.name} has no harness"


@pytest.mark.parametrize(
    "harness", sorted((CORPUS / "run").glob("[bc]*_run.py")), ids=lambda p: p.stem
)
def test_harness_names_its_corpus_file_and_expected_codes(harness: Path) -> None:
    key = harness.stem.split("_")[0]
    folder = "controls" if key.startswith("c") else "bugs"
    assert list((CORPUS / folder).glob(f"{key}_*.py")), f"no corpus file for {harness.name}"
    want, reason = bench().expectation(harness)
    text = harness.read_text(encoding="utf-8")
    if key.startswith("c"):
        assert "Expect: clean" in text
    elif want is None:
        assert reason, f"{harness.name}: 'Expect: none' needs its reason"
    else:
        assert want and all(code in RULES and code.startswith("FZ3") for code in want)


@pytest.mark.slow
def test_quick_subset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = tmp_path / "summary.json"
    rc = bench().main(
        ["--quick", "--write", "--results-dir", str(tmp_path), "--summary-json", str(summary)]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    text = (tmp_path / "corpus_recall.md").read_text(encoding="utf-8")
    assert (
        "| `b24_sparseml_965_freeze_at_step.py` | - | FZ302, FZ311 | FZ302, FZ311 | run |" in text
    )
    assert "| `b36_torch_ac_pr5_grad_norm_none.py` | - | none | FZ301 | missed |" in text
    assert "| `c05_bn_eval_reapplied.py` | - | none | none | clean |" in text
    assert "* **Combined recall: 1 of 2** (50%)" in text
    assert json.loads(summary.read_text())["mismatches"] == []
