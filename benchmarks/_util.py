"""Shared helpers of the benchmark scripts: timing, machine description, Markdown output.

Every figure a benchmark reports is measured in one process next to its baseline, so
ratios stay meaningful on a busy or slow machine even when absolute times do not.
Times are taken with ``time.perf_counter``; contenders are run in interleaved rounds
(round 1: A, B, C; round 2: B, C, A; ...) so that a burst of load from elsewhere
hits all of them alike, and each reports its best and its median run.
"""

from __future__ import annotations

import datetime as _dt
import gc
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
RESULTS = BENCH / "results"


@dataclass
class Timing:
    label: str
    runs: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.runs)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def interleaved(
    contenders: list[tuple[str, Callable[[], object]]],
    repeat: int,
    setup: Callable[[], object] | None = None,
    collect: bool = True,
    after: Callable[[str, int], object] | None = None,
) -> dict[str, Timing]:
    """Time each contender ``repeat`` times, rotating the order every round.

    ``setup`` runs (untimed) before every single call, e.g. to reset requires_grad.
    With ``collect`` a full ``gc.collect()`` precedes every call, so each starts from
    the same collector state; the collector stays enabled while it runs (users pay
    for its pauses too). ``after(label, round)`` runs (untimed) after every call, e.g.
    to check the contender's result.
    """
    out = {label: Timing(label) for label, _ in contenders}
    n = len(contenders)
    for r in range(repeat):
        order = contenders[r % n :] + contenders[: r % n] if n else []
        for label, fn in order:
            if setup is not None:
                setup()
            if collect:
                gc.collect()
            start = time.perf_counter()
            fn()
            out[label].runs.append(time.perf_counter() - start)
            if after is not None:
                after(label, r)
    return out


def load_average() -> str:
    try:
        one, five, _fifteen = os.getloadavg()
    except (OSError, AttributeError):  # pragma: no cover - not POSIX
        return "n/a"
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


def version_of(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def source_state() -> str:
    """The checkout's commit, and whether freezedsl/ has uncommitted changes (read-only git)."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "freezedsl", "grammar"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    if not head:
        return "not a git checkout"
    return f"commit {head}" + (" + uncommitted changes in freezedsl/ or grammar/" if dirty else "")


def machine_lines(load_at_start: str) -> list[str]:
    """A Markdown bullet list describing the machine (never imports torch)."""
    return [
        f"- date: {_dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- machine: {os.cpu_count()} CPUs (nproc), {cpu_model()}, {platform.system()} {platform.release()}",
        (f"- Python {platform.python_version()} ({sys.executable}), torch {version_of('torch') or 'absent'}, "
        f"freezedsl {version_of('freezedsl') or 'from the checkout'}, lark {version_of('lark') or 'absent'}"),
        f"- source: {source_state()}",
        f"- load average at the start: {load_at_start}; at the end: {load_average()}",
    ]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.2f}"


def table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    """A Markdown table; ``align`` is one letter per column, 'l' or 'r' (default: l then r)."""
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(sep) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def write_result(name: str, lines: list[str], results_dir: Path | None) -> Path | None:
    """Write ``results_dir/name.md`` (None: write nothing)."""
    if results_dir is None:
        return None
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.md"
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path


def write_summary(path: str | None, summary: dict) -> None:
    """Hand the benchmark's headline figures and goals to run_all.py (a JSON file)."""
    if path:
        Path(path).write_text(json.dumps(summary, indent=2), encoding="utf-8")


def add_common_args(ap) -> None:  # type: ignore[no-untyped-def]
    ap.add_argument("--quick", action="store_true", help="tiny sizes, few runs (smoke test)")
    ap.add_argument(
        "--write",
        action="store_true",
        help="write the Markdown result to benchmarks/results/ (or --results-dir)",
    )
    ap.add_argument("--results-dir", type=Path, default=None, help="where --write puts the .md file")
    ap.add_argument("--summary-json", default=None, help=argparse_hidden())


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


def results_dir(args) -> Path | None:  # type: ignore[no-untyped-def]
    if not args.write:
        return None
    return args.results_dir or RESULTS


def profile_rows(prof: Any, key: str, limit: int = 10) -> list[list[str]]:
    """Markdown rows (function, calls, own s, cumulative s) of a cProfile.Profile."""
    import io
    import pstats

    stats = pstats.Stats(prof, stream=io.StringIO())
    stats.sort_stats(key)
    rows = []
    for func in stats.fcn_list[:limit]:  # type: ignore[attr-defined]
        cc, nc, tt, ct, _callers = stats.stats[func]  # type: ignore[attr-defined]
        filename, line, name = func
        where = filename
        for marker in ("/freezedsl/", "/site-packages/", "/lib/python"):
            if marker in filename:
                where = filename.split(marker, 1)[1]
                where = ("freezedsl/" + where) if marker == "/freezedsl/" else where
                break
        label = f"`{name}` ({where}:{line})" if line else f"`{name}`"
        calls = f"{nc:,}" if nc == cc else f"{nc:,}/{cc:,}"
        rows.append([label, calls, f"{tt:.3f}", f"{ct:.3f}"])
    return rows
