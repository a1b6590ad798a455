"""Smoke test of benchmarks/: every script runs in its tiny --quick mode and reports.

The figures of a --quick run mean nothing; this only checks that the scripts work
(and that their baselines still produce the same trainable set as freezedsl), so
`python benchmarks/run_all.py` keeps working as freezedsl changes.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def _load(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"_smoke_{name}", BENCH / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_apply_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mod = _load("bench_apply")
    summary = tmp_path / "apply.json"
    # timm/Lightning imports alone take seconds; the full run covers them
    rc = mod.main(["--quick", "--no-peers", "--write", "--results-dir", str(tmp_path), "--summary-json", str(summary)])
    out = capsys.readouterr().out
    assert rc == 0, out
    text = (tmp_path / "apply.md").read_text()
    assert "DIFFERENT" not in text
    assert "naive regex loop" in text and "| same |" in text
    assert "skipped (--no-peers)" in text
    assert "cProfile" in text and "## Goals" in text


def test_naive_regexes_match_the_rule_file_at_every_size() -> None:
    """The regex and module-list baselines are built per size; check them against
    moe.frz where each slice bound matters (blocks > 30, experts > 128)."""
    import freezedsl
    from freezedsl.testing import moe_transformer

    mod = _load("bench_apply")
    rules = freezedsl.load(BENCH / "moe.frz")
    for blocks, experts in ((32, 10), (12, 130)):
        model = moe_transformer(blocks=blocks, experts=experts, hidden=1, ffn=1, vocab=2)
        params = list(model.parameters())
        rules.apply(model)
        want = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(True)
        mod.naive_regex_loop(model, mod.naive_regexes(blocks, experts))
        assert [p.requires_grad for p in params] == want
        lists = mod.select_modules(model, blocks, experts)
        assert all(lists)


def test_bench_parse_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mod = _load("bench_parse")
    rc = mod.main(["--quick", "--write", "--results-dir", str(tmp_path)])
    assert rc == 0
    text = (tmp_path / "parse.md").read_text()
    assert "`ast.parse`" in text and "## Goals" in text
    capsys.readouterr()


def test_run_all_quick(tmp_path: Path) -> None:
    """run_all.py drives the scripts as subprocesses and collects their summaries;
    bench_startup.py (subprocesses of its own) runs here too."""
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "run_all.py"),
            "--quick",
            "--only",
            "startup,static_lint",
            "--results-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = (tmp_path / "summary.md").read_text()
    assert "## Goals" in summary and "check/fmt do not import torch" in summary
    startup = (tmp_path / "startup.md").read_text()
    assert "`freezedsl check`: no" in startup
