"""Recall of static lint and run mode together on the corpus of real freezing bugs.

    python benchmarks/bench_corpus_recall.py            # print the table
    python benchmarks/bench_corpus_recall.py --write    # also write results/corpus_recall.md

For every bug of ``tests/lint/corpus/bugs`` (one faulty line marked ``# <- bug``):

* **static**: ``freezedsl.lint.static.check_file`` reports a finding on the marked line
  (the measure of tests/lint/test_static_corpus.py);
* **run**: when ``tests/lint/corpus/run/<bNN>_run.py`` exists (a harness that drives the
  bug's code on a tiny model, synthetic data, CPU), ``freezedsl lint --steps 3 --select
  FZ3 --format json`` on it reports one of the runtime codes its ``Expect:`` line names;
  ``Expect: none`` says run mode has no check for that bug, and why; a reason in
  parentheses after the codes says why the run misses a bug it has a check for.

A bug counts for the combined recall when either catches it. Every static miss has a
harness, so the combined figure covers the whole corpus; bugs caught statically have
one where run mode was measured on them too. Harnesses of corpus controls
(``cNN_run.py``, ``Expect: clean``) must give no runtime finding at all. Every figure
is computed from the runs; nothing is typed in.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import _util
from _util import table

from freezedsl.lint.static import check_file

CORPUS = ROOT / "tests" / "lint" / "corpus"
RUN = CORPUS / "run"
MARK = "# <- bug"
STEPS = 3
EXPECT = re.compile(r"^Expect:\s*(.*?)\s*$", re.MULTILINE)
# Process notes, not explanations of a bug.
NOTES = frozenset({"FZ312", "FZ313"})
QUICK = ("b24", "b36", "c05")  # --quick: one caught, one documented miss, one control


def static_codes(path: Path) -> list[str]:
    """Codes of the static findings on the line marked ``# <- bug``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text.rstrip().endswith(MARK))
    return sorted({d.code for d in check_file(str(path)) if d.line == line})


def expectation(harness: Path) -> tuple[frozenset[str] | None, str]:
    """The codes a harness's ``Expect:`` line names (``None`` for ``none``/``clean``) and
    the reason given in parentheses after ``none``."""
    text = harness.read_text(encoding="utf-8")
    m = EXPECT.search(text)
    if m is None:
        raise SystemExit(f"{harness.name}: no 'Expect:' line")
    value = m.group(1)
    if value.startswith("clean"):
        return None, ""
    rest = text[m.start(1) :].split('"""')[0]
    codes, paren, reason = rest.partition("(")
    reason = " ".join(reason.strip().removesuffix(")").split()) if paren else ""
    if value.startswith("none"):
        if not reason:
            raise SystemExit(f"{harness.name}: 'Expect: none' needs a reason in parentheses")
        return None, reason
    return frozenset(re.findall(r"FZ\d{3}", codes)), reason


def lint_run(harness: Path) -> tuple[list[dict[str, object]], float]:
    cmd = [sys.executable, "-m", "freezedsl", "lint", "--steps", str(STEPS), "--select", "FZ3"]
    cmd += ["--format", "json", "--timeout", "120", str(harness)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, cwd=ROOT)
    took = time.perf_counter() - start
    try:
        found = json.loads(proc.stdout or "[]")
    except ValueError:
        raise SystemExit(f"{harness.name}: lint printed no JSON:\n{proc.stdout}\n{proc.stderr}")
    return found, took


def run(quick: bool = False) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    bugs = sorted((CORPUS / "bugs").glob("b*.py"))
    controls = sorted((CORPUS / "controls").glob("c*.py"))
    for path in bugs + controls:
        key = path.stem.split("_")[0]
        if quick and key not in QUICK:
            continue
        harness = RUN / f"{key}_run.py"
        if key.startswith("c") and not harness.exists():
            continue  # controls are checked statically by tests/lint/test_static_corpus.py
        row: dict[str, Any] = {"key": key, "file": path.name, "control": key.startswith("c")}
        row["static"] = static_codes(path) if key.startswith("b") else []
        if harness.exists():
            want, reason = expectation(harness)
            found, took = lint_run(harness)
            codes = sorted({str(d["code"]) for d in found})
            explaining = [c for c in codes if c not in NOTES]
            row.update(harness=True, want=sorted(want or []), codes=codes, seconds=round(took, 1))
            if row["control"]:
                row["run"] = not explaining  # a control is right when nothing is reported
            else:
                row["run"] = bool(want and want & set(codes))
            row["reason"] = reason
        else:
            row.update(harness=False, want=[], codes=[], seconds=0.0, run=None, reason="")
        rows.append(row)
    return rows


def figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    bugs = [r for r in rows if not r["control"]]
    ran = [r for r in bugs if r["harness"]]
    static = [r for r in bugs if r["static"]]
    by_run = [r for r in ran if r["run"]]
    combined = [r for r in bugs if r["static"] or r["run"]]
    controls = [r for r in rows if r["control"] and r["harness"]]
    missing = [r["key"] for r in bugs if not r["static"] and not r["harness"]]
    return {
        "bugs": len(bugs),
        "static": len(static),
        "ran": len(ran),
        "run": len(by_run),
        "combined": len(combined),
        "controls": len(controls),
        "controls_clean": sum(bool(r["run"]) for r in controls),
        "missing": missing,
        "static_misses_run": sum(1 for r in ran if r["run"] and not r["static"]),
    }


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:.0f}%" if b else "-"


def outcome(r: dict[str, Any]) -> str:
    if r["control"]:
        return "clean" if r["run"] else "**finding on correct code**"
    if r["static"] and r["run"]:
        return "static + run"
    if r["static"]:
        return "static"
    if r["run"]:
        return "run"
    return "missed"


def report(rows: list[dict[str, Any]], quick: bool) -> list[str]:
    f = figures(rows)
    lines = [
        "# Static + run-mode recall on the bug corpus",
        "",
        (
            f"Generated by `python benchmarks/bench_corpus_recall.py{' --quick' if quick else ''}"
            f" --write` (CPU). Static: a finding on the line marked `# <- bug`. Run: `freezedsl "
            f"lint --steps {STEPS} --select FZ3` on the bug's harness in `tests/lint/corpus/run/` "
            "reports a runtime code its `Expect:` line names."
        ),
        "",
        f"* **Static recall: {f['static']} of {f['bugs']}** ({pct(f['static'], f['bugs'])}).",
        (
            f"* **Run-mode recall: {f['run']} of {f['ran']}** bugs with a harness "
            f"({pct(f['run'], f['ran'])}); {f['static_misses_run']} of them are static misses."
        ),
        (
            f"* **Combined recall: {f['combined']} of {f['bugs']}** "
            f"({pct(f['combined'], f['bugs'])}): static or run."
        ),
        (
            f"* **Controls under run mode: {f['controls_clean']} of {f['controls']}** "
            "correct programs with a harness give no runtime finding."
        ),
        "",
    ]
    if f["missing"]:
        lines += [f"* static misses without a harness: {', '.join(f['missing'])}", ""]
    body = []
    for r in rows:
        run_cell = "-" if not r["harness"] else (", ".join(r["codes"]) or "none")
        want = ", ".join(r["want"]) or ("-" if not r["harness"] else "none")
        body.append(
            [
                f"`{r['file']}`",
                ", ".join(r["static"]) or "-",
                want,
                run_cell,
                outcome(r),
                ""
                if r["run"]
                else str(r["reason"] or ("" if r["harness"] else "no harness (caught statically)")),
            ]
        )
    lines += table(
        ["corpus file", "static codes", "run: expected", "run: reported", "outcome", "why not"],
        body,
        "llllll",
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _util.add_common_args(ap)
    args = ap.parse_args(argv)
    rows = run(quick=args.quick)
    lines = report(rows, args.quick)
    print("\n".join(lines))
    path = _util.write_result("corpus_recall", lines, _util.results_dir(args))
    if path:
        print(f"wrote {path}")
    f = figures(rows)
    bugs = f["bugs"]
    problems = [
        f"{r['file']}: finding on correct code under run mode"
        for r in rows
        if r["control"] and r["harness"] and not r["run"]
    ]
    problems += [f"static miss without a harness: {k}" for k in f["missing"]]
    _util.write_summary(
        args.summary_json,
        {
            "name": "corpus_recall",
            "headline": [
                (
                    f"bug corpus: static {f['static']}/{bugs}, run {f['run']}/{f['ran']} with a "
                    f"harness, combined {f['combined']}/{bugs} ({pct(f['combined'], bugs)}); "
                    f"controls clean under run mode {f['controls_clean']}/{f['controls']}"
                )
            ],
            "goals": []
            if args.quick
            else [
                {
                    "goal": "static recall >= 60%",
                    "value": pct(f["static"], bugs),
                    "met": f["static"] >= 0.6 * bugs,
                },
                {
                    "goal": "static + run recall >= 85%",
                    "value": pct(f["combined"], bugs),
                    "met": f["combined"] >= 0.85 * bugs,
                },
            ],
            "mismatches": problems,
        },
    )
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
