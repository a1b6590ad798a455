"""Benchmark the static FZ2xx checks on the installed torchvision package.

    python benchmarks/bench_static_lint.py [--write] [--repeat N]

Runs ``freezedsl.lint.static.check_file`` over every ``.py`` file of torchvision and
compares it with a baseline measured in the same process: reading the same files and
running plain ``ast.parse`` on them. The parse is the floor: every file has to be parsed
to report FZ002, so the ratio says what the checks add on top. A second row forces the
full analysis on every file (the keyword prefilter that skips files which cannot produce
a finding is switched off), which is the cost on a tree of training scripts.

Each figure is the best of ``--repeat`` rounds (default 3), the three runs taking turns
within a round. ``--write`` also writes the table to ``benchmarks/results/static_lint.md``.
Needs torchvision installed; never imports torch or torchvision.
"""

from __future__ import annotations

import argparse
import ast
import gc
import importlib.metadata
import importlib.util
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from freezedsl.lint import static

RESULT = ROOT / "benchmarks" / "results" / "static_lint.md"


def torchvision_files() -> list[Path]:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        raise SystemExit("torchvision is not installed")
    return sorted(Path(spec.origin).parent.rglob("*.py"))


def best_times(repeat: int, runs: list[Callable[[], object]]) -> list[float]:
    """Best CPU time of this process for each run over ``repeat`` rounds. CPU time, not
    wall time: on a shared machine other jobs' load would otherwise dominate the figures.
    The runs take turns within a round, so what remains (cache contention) slows all of
    them alike and the ratios stay meaningful."""
    best = [float("inf")] * len(runs)
    for _ in range(repeat):
        for i, fn in enumerate(runs):
            gc.collect()
            start = time.process_time()
            fn()
            best[i] = min(best[i], time.process_time() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help=f"write the table to {RESULT}")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure; the best counts")
    ap.add_argument(
        "--results-dir", type=Path, default=RESULT.parent, help="where --write puts the table"
    )
    args = ap.parse_args(argv)
    result = args.results_dir / RESULT.name

    files = torchvision_files()
    names = [str(f) for f in files]
    texts = [f.read_text(encoding="utf-8") for f in files]
    lines = sum(t.count("\n") for t in texts)
    findings = sum(len(static.check_file(n)) for n in names)  # also warms caches
    prefiltered = sum(1 for t in texts if static._TRIGGERS.search(t))

    def parse_only() -> None:
        for n in names:
            with open(n, encoding="utf-8") as fh:
                ast.parse(fh.read(), filename=n)

    def lint() -> None:
        for n in names:
            static.check_file(n)

    def lint_forced() -> None:
        saved = static._TRIGGERS
        static._TRIGGERS = re.compile("")  # every file gets the full analysis
        try:
            lint()
        finally:
            static._TRIGGERS = saved

    t_parse, t_lint, t_full = best_times(args.repeat, [parse_only, lint, lint_forced])

    n = len(files)
    rows = [
        ("`ast.parse` only (baseline)", t_parse),
        ("`check_file` (FZ2xx)", t_lint),
        ("`check_file`, analysis forced on every file", t_full),
    ]
    tv = importlib.metadata.version("torchvision")
    out = [
        "# Static lint benchmark (FZ2xx)",
        "",
        (
            f"`python benchmarks/bench_static_lint.py --write`: torchvision {tv}, "
            f"{n} files, {lines:,} lines; {prefiltered} files contain a trigger word and "
            f"get the full analysis; {findings} findings. Python "
            f"{platform.python_version()}, {os.cpu_count()} CPUs, best of {args.repeat} "
            f"rounds of process CPU time, one process; load average "
            f"{os.getloadavg()[0]:.1f} at the start."
        ),
        "",
        "| run | total (s) | files/s | lines/s | ratio to parse |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, t in rows:
        out.append(f"| {label} | {t:.3f} | {n / t:,.0f} | {lines / t:,.0f} | {t / t_parse:.2f} |")
    table = "\n".join(out) + "\n"
    print(table)
    if args.write:
        result.parent.mkdir(parents=True, exist_ok=True)
        result.write_text(table, encoding="utf-8")
        print(f"wrote {result}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
