"""Run every benchmark, write benchmarks/results/*.md and print a summary.

    python benchmarks/run_all.py            # the real run (a few minutes on 2 cores)
    python benchmarks/run_all.py --quick    # tiny sizes, few runs: checks that it all works
    make bench                              # the same as the first line

Each benchmark runs in its own interpreter (so one's heap and imports do not slow the
next), with ``--write``: bench_apply.py -> results/apply.md, bench_startup.py ->
results/startup.md, bench_parse.py -> results/parse.md; bench_static_lint.py (if
present; another engineer's, as is results/static_lint.md) runs without ``--write``
and its table goes into results/summary.md, which also collects the headline figures
and the goals. With ``--quick`` nothing is written under benchmarks/results
unless ``--results-dir`` says where (the smoke test uses a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import _util
from _util import ROOT, table

BENCHES = ["apply", "parse", "startup", "static_lint", "corpus_recall"]


def _children_cpu() -> float:
    """User + system CPU seconds of finished child processes (0 where unsupported)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_bench(name: str, args: argparse.Namespace, results_dir: Path | None, tmp: Path) -> dict:
    script = HERE / f"bench_{name}.py"
    if not script.exists():
        return {"name": name, "skipped": f"{script.relative_to(ROOT)} not found"}
    argv = [sys.executable, str(script)]
    summary_path = tmp / f"{name}.json"
    if name == "static_lint":
        # Owned by another engineer, results/static_lint.md included (it carries notes of
        # its own): run it without --write and copy its table into summary.md instead.
        if args.quick:
            argv += ["--repeat", "1"]
    else:
        argv += ["--summary-json", str(summary_path)]
        if args.quick:
            argv.append("--quick")
        if results_dir is not None:
            argv += ["--write", "--results-dir", str(results_dir)]
        if name == "apply" and args.no_peers:
            argv.append("--no-peers")
    print(f"== {name}: {' '.join(Path(a).name if a == sys.executable else a for a in argv[1:])}", flush=True)
    start = time.perf_counter()
    cpu0 = _children_cpu()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    cpu = _children_cpu() - cpu0
    if args.verbose:
        print(proc.stdout)
    if proc.stderr.strip():
        print(proc.stderr.rstrip(), file=sys.stderr)
    out: dict = {"name": name, "seconds": elapsed, "cpu": cpu, "returncode": proc.returncode}
    if summary_path.exists():
        out.update(json.loads(summary_path.read_text(encoding="utf-8")))
    elif name == "static_lint":
        rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("| `check_file` (FZ2xx)")]
        cells = [c.strip() for c in rows[0].strip("|").split("|")] if rows else []
        out["headline"] = [
            f"static lint of torchvision: check_file {cells[1]} s, {cells[4]}x plain ast.parse"
            if len(cells) >= 5
            else "static lint: see its output"
        ]
        out["goals"] = []
        out["mismatches"] = []
        out["table"] = [ln for ln in proc.stdout.splitlines() if ln.startswith("|")]
    if proc.returncode != 0:
        out.setdefault("mismatches", []).append(f"exit status {proc.returncode}: {proc.stdout[-800:]}")
    print(f"   {elapsed:.1f} s ({cpu:.1f} s CPU), exit {proc.returncode}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, few runs; writes nothing by default")
    ap.add_argument("--results-dir", type=Path, default=None, help="where the .md files go")
    ap.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(BENCHES)}")
    ap.add_argument("--no-peers", action="store_true", help="bench_apply without timm/Lightning")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each benchmark's full output")
    args = ap.parse_args(argv)
    results_dir = args.results_dir or (None if args.quick else _util.RESULTS)
    names = BENCHES if not args.only else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(unknown)}")

    load_start = _util.load_average()
    start = time.perf_counter()
    cpu0 = _children_cpu()
    with tempfile.TemporaryDirectory(prefix="freezedsl-bench-") as tmp:
        summaries = [run_bench(n, args, results_dir, Path(tmp)) for n in names]
    total = time.perf_counter() - start
    cpu = _children_cpu() - cpu0

    lines = [
        "# Benchmark summary",
        "",
        (f"`python benchmarks/run_all.py{' --quick' if args.quick else ''}` — {total:.0f} s in all"
        f" ({cpu:.0f} s of CPU time: the benchmarks are single-threaded, so about what the run takes"
        " on an otherwise idle machine)."
        " Every ratio is measured in one process against a baseline run right next to it; see each file"
        " for the method. The machine was shared with other work while this ran: compare ratios, not"
        " absolute times."),
        "",
        *_util.machine_lines(load_start),
        "",
        "## Headlines",
        "",
    ]
    for s in summaries:
        if "skipped" in s:
            lines.append(f"- **{s['name']}**: skipped ({s['skipped']})")
            continue
        for h in s.get("headline", []):
            lines.append(f"- **{s['name']}** ({s['seconds']:.0f} s, {s['cpu']:.0f} s CPU): {h}")
    goal_rows = [
        [s["name"], g["goal"], g["value"], "yes" if g["met"] else "**no**"]
        for s in summaries
        for g in s.get("goals", [])
    ]
    lines += ["", "## Goals", "", *table(["benchmark", "goal", "measured", "met?"], goal_rows, "llll")]
    for s in summaries:
        if s.get("table"):
            lines += [
                "",
                f"## {s['name']} (this run's table; `benchmarks/results/{s['name']}.md` is left to its owner)",
                "",
                *s["table"],
            ]
    problems = [f"{s['name']}: {m}" for s in summaries for m in s.get("mismatches", [])]
    lines += ["", "## Problems", ""]
    lines += [f"- {p}" for p in problems] or ["- none: every baseline that should agree with freezedsl did."]
    text = "\n".join(lines)
    print()
    print(text)
    path = _util.write_result("summary", lines, results_dir)
    if path:
        print(f"\nwrote {path}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
