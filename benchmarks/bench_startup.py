"""Benchmark command start-up: `freezedsl check` / `fmt --check` vs a bare interpreter.

    python benchmarks/bench_startup.py [--write] [--quick] [--runs N]

Runs, as subprocesses of the same interpreter (``sys.executable``), in interleaved
rounds, ``--runs`` times each (default 10), and reports the median wall time:

* ``python -c pass`` (the baseline: interpreter start-up, site-packages included);
* ``python -m freezedsl check rules/resnet.frz`` and ``... fmt --check rules/resnet.frz``;
* the installed console script (``freezedsl`` next to the interpreter) with the same
  arguments;
* ``python -m freezedsl check`` with ``FREEZEDSL_NO_GRAMMAR_CACHE=1``: Lark builds the
  parser from the grammar at every start instead of loading it from the grammar cache
  (freezedsl/syntax/grammar_cache.py), to show what the cache saves;
* for scale, ``python -c "import torch"`` (what a torch-importing command would pay).

The goal (issue 15): check and fmt start in under 5x ``python -c pass``. Then runs
``python -X importtime -m freezedsl check|fmt --check`` once each, asserts that neither
imports ``torch`` (and says whether click or Lark were imported: click is not, see
freezedsl/cli.py; Lark parses), and lists the imports that dominate. ``--write`` writes
``benchmarks/results/startup.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import _util
from _util import ROOT, ms, table

RULES = "rules/resnet.frz"
GOAL = 5.0


def bytecode_env(cache_dir: str) -> dict[str, str]:
    """The environment of every timed run: bytecode cached, as in a normal install.

    Some sandboxes set PYTHONDONTWRITEBYTECODE=1, and an editable checkout then has no
    .pyc for freezedsl, so every start would compile its sources again. The runs use a
    private PYTHONPYCACHEPREFIX instead (filled by the warm-up run), which writes nothing
    into the source tree.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache_dir
    return env


def nocache_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPYCACHEPREFIX", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


ENV: dict[str, str] = dict(os.environ)


def console_script() -> str | None:
    exe = Path(sys.executable).parent / ("freezedsl.exe" if os.name == "nt" else "freezedsl")
    return str(exe) if exe.exists() else None


def commands(quick: bool) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """(label, argv) of each timed command; --quick keeps one of each kind."""
    py = sys.executable
    cmds: list[tuple[str, list[str]]] = [
        ("`python -c pass` (baseline)", [py, "-c", "pass"]),
        (f"`python -m freezedsl check {RULES}`", [py, "-m", "freezedsl", "check", RULES]),
    ]
    if not quick:
        cmds.append((f"`python -m freezedsl fmt --check {RULES}`", [py, "-m", "freezedsl", "fmt", "--check", RULES]))
    notes = []
    script = console_script()
    if script:
        if not quick:
            cmds.append((f"`freezedsl check {RULES}` (console script)", [script, "check", RULES]))
        cmds.append((f"`freezedsl fmt --check {RULES}` (console script)", [script, "fmt", "--check", RULES]))
    else:
        notes.append("console script `freezedsl` not found next to the interpreter: skipped")
    return cmds, notes


def run_once(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        argv,
        cwd=ROOT,
        env=env or ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return elapsed


def importtime(args: list[str]) -> list[tuple[str, int, int, int]]:
    """(module, self us, cumulative us, nesting level) from ``python -X importtime``."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "freezedsl", *args],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"importtime run of {args} exited {proc.returncode}: {proc.stderr[-500:]}")
    out = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, cum_us, name = _split(line)
        level = (len(name) - len(name.lstrip(" "))) // 2
        out.append((name.strip(), self_us, cum_us, level))
    return out


def _split(line: str) -> tuple[int, int, str]:
    """'import time:  123 |  456 |   pkg.mod' -> (123, 456, '  pkg.mod') (indent kept)."""
    head, cum, name = line.split("|", 2)
    return int(head.split(":", 1)[1].strip()), int(cum.strip()), name.rstrip("\n")[1:]


PHASES = r"""
import sys, time
t = [time.perf_counter()]
import freezedsl.cli
t.append(time.perf_counter())
import lark
t.append(time.perf_counter())
from freezedsl.syntax.parser import _lark, parse, read_rules
_lark()
t.append(time.perf_counter())
program = parse(read_rules(sys.argv[1]), path=sys.argv[1])
t.append(time.perf_counter())
from freezedsl.lint.rulefiles import check_program
check_program(program)
t.append(time.perf_counter())
from freezedsl.syntax.printer import format_program
format_program(program)
t.append(time.perf_counter())
heavy = sorted(m for m in ("click", "torch") if m in sys.modules)
import json
print(json.dumps([b - a for a, b in zip(t, t[1:])] + [heavy]))
"""
PHASE_NAMES = [
    "import freezedsl.cli (the entry point; check and fmt run without click)",
    "import Lark",
    "import the parser and load Lark's LALR parser from the grammar cache",
    f"read and parse {RULES} (the first parse also compiles the lexers of the states it visits)",
    "import freezedsl.lint.rulefiles + check_program (what `check` adds)",
    "import the printer + format_program (what `fmt` adds)",
]


def phases(runs: int) -> list[float]:
    """Median seconds of each start-up phase, measured inside fresh interpreters."""
    import json

    samples = []
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-c", PHASES, RULES], cwd=ROOT, env=ENV, capture_output=True, text=True, check=True
        )
        *figures, heavy = json.loads(proc.stdout)
        if heavy:
            raise SystemExit(f"the phases imported {', '.join(heavy)}")
        samples.append(figures)
    return [statistics.median(col) for col in zip(*samples)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _util.add_common_args(ap)
    ap.add_argument("--runs", type=int, default=None, help="runs per command (default 10; 1 with --quick)")
    args = ap.parse_args(argv)
    runs = args.runs or (1 if args.quick else 10)
    load_start = _util.load_average()

    global ENV
    cache = tempfile.TemporaryDirectory(prefix="freezedsl-bench-pyc-")
    ENV = bytecode_env(cache.name)
    cmds, notes = commands(args.quick)
    for _label, argv_ in cmds:  # fill the bytecode cache, warm the OS file cache, check each works
        run_once(argv_)
    times: dict[str, list[float]] = {label: [] for label, _ in cmds}
    for r in range(runs):
        order = cmds[r % len(cmds) :] + cmds[: r % len(cmds)]
        for label, argv_ in order:
            times[label].append(run_once(argv_))
    few = max(1, min(runs, 3))
    nocache_label = f"`python -m freezedsl check {RULES}`, no bytecode cache (sources compiled at each start)"
    nocache = [run_once(cmds[1][1], nocache_env()) for _ in range(few)]
    nogrammar_label = f"`python -m freezedsl check {RULES}`, no grammar cache (`FREEZEDSL_NO_GRAMMAR_CACHE=1`)"
    nogrammar_env = dict(ENV, FREEZEDSL_NO_GRAMMAR_CACHE="1")
    nogrammar = [run_once(cmds[1][1], nogrammar_env) for _ in range(few)]
    torch_t = [] if args.quick else [run_once([sys.executable, "-c", "import torch"]) for _ in range(few)]
    base_label = cmds[0][0]
    base = statistics.median(times[base_label])

    imports = {
        "check": importtime(["check", RULES]),
        "fmt --check": importtime(["fmt", "--check", RULES]),
    }
    torch_free = {k: not any(m == "torch" or m.startswith("torch.") for m, *_ in v) for k, v in imports.items()}

    lines = [
        "# Start-up: `freezedsl check` / `fmt --check` vs a bare interpreter",
        "",
        (f"`python benchmarks/bench_startup.py --write{' --quick' if args.quick else ''}` — each command run"
        f" {runs} times as a subprocess (after one untimed warm-up run), rounds interleaved; median and best"
        " wall time including process creation."),
        "",
        *_util.machine_lines(load_start),
        "",
        *table(
            ["command", "median (ms)", "best (ms)", "median / bare python"],
            [
                [label, ms(statistics.median(t)), ms(min(t)), f"{statistics.median(t) / base:.2f}"]
                for label, t in times.items()
            ]
            + [
                [
                    label + f" ({len(t)} runs)",
                    ms(statistics.median(t)),
                    ms(min(t)),
                    f"{statistics.median(t) / base:.2f}",
                ]
                for label, t in (
                    (nogrammar_label, nogrammar),
                    (nocache_label, nocache),
                    ('`python -c "import torch"`, for scale', torch_t),
                )
                if t
            ],
        ),
        "",
        ("Every run uses a private bytecode cache (`PYTHONPYCACHEPREFIX`, filled by a warm-up run),"
        " as a normal install has `.pyc` files, except the \"no bytecode cache\" row: what a session"
        " with `PYTHONDONTWRITEBYTECODE=1` and an editable checkout pays, freezedsl's modules compiled"
        " from source at every start. That row and the `import torch` row (what any command that"
        " imports torch would pay at least) are not counted for the goal, nor is the \"no grammar cache\""
        " row: Lark analysing the grammar at every start, as when the cache directory"
        " (`~/.cache/freezedsl`) is unsafe or unwritable, which shows what the cache saves."),
    ]
    for note in notes:
        lines += ["", f"- {note}"]

    phase_runs = max(1, min(runs, 3))
    phase_t = phases(phase_runs)
    lines += [
        "",
        f"## Where the time goes (inside a fresh interpreter, median of {phase_runs} runs)",
        "",
        *table(
            ["phase", "ms", "share of these phases"],
            [[name, ms(v), f"{100 * v / sum(phase_t):.0f}%"] for name, v in zip(PHASE_NAMES, phase_t)],
        ),
        "",
        f"Plus the interpreter's own start-up (`python -c pass`, {ms(base)} ms median above).",
    ]

    lines += ["", "## Does check/fmt import torch?", ""]
    for k, ok in torch_free.items():
        n_mods = len(imports[k])
        others = ", ".join(
            f"{pkg}: {'yes' if any(m == pkg or m.startswith(pkg + '.') for m, *_ in imports[k]) else 'no'}"
            for pkg in ("click", "lark")
        )
        lines.append(
            f"- `freezedsl {k}`: {'no' if ok else '**yes**'} (`python -X importtime`: {n_mods} modules imported;"
            f" {others})"
        )

    lines += [
        "",
        "## What the start-up of `python -m freezedsl check` spends (python -X importtime, one run)",
        "",
        "Importtime's own overhead inflates these figures; their proportions are what count.",
        "",
        ("Imports by cumulative time (all nesting levels; a nested import also counts in its parents;"
        " `site` and the editable-install finder are part of bare python's start-up too):"),
        "",
    ]
    rows = sorted(imports["check"], key=lambda e: -e[2])[:15]
    total_us = sum(e[2] for e in imports["check"] if e[3] == 0)
    lines += table(
        ["module", "level", "cumulative (ms)", "share of all imports"],
        [[f"`{m}`", str(lvl), f"{c / 1000:,.1f}", f"{100 * c / total_us:.0f}%"] for m, _s, c, lvl in rows],
    )
    lines += ["", f"All imports together: {total_us / 1000:,.1f} ms.", "", "Modules by own (self) time:", ""]
    rows = sorted(imports["check"], key=lambda e: -e[1])[:10]
    lines += table(["module", "self (ms)"], [[f"`{m}`", f"{s / 1000:,.1f}"] for m, s, _c, _l in rows])

    worst = max(statistics.median(t) / base for label, t in times.items() if "freezedsl" in label)
    goal_met = worst < GOAL
    lines += [
        "",
        "## Goals",
        "",
        *table(
            ["goal", "measured", "met?"],
            [
                [
                    f"check / fmt --check under {GOAL:g}x bare python",
                    f"worst median ratio {worst:.2f}x (bare python {ms(base)} ms)",
                    "yes" if goal_met else "**no**",
                ],
                [
                    "check / fmt do not import torch",
                    ", ".join(f"{k}: {'torch-free' if ok else 'imports torch'}" for k, ok in torch_free.items()),
                    "yes" if all(torch_free.values()) else "**no**",
                ],
            ],
            "lll",
        ),
    ]
    print("\n".join(lines))
    path = _util.write_result("startup", lines, _util.results_dir(args))
    if path:
        print(f"wrote {path}")
    _util.write_summary(
        args.summary_json,
        {
            "name": "startup",
            "headline": [
                (f"check/fmt start-up: worst median {worst:.2f}x bare python ({ms(base)} ms); "
                f"torch imported: {'no' if all(torch_free.values()) else 'YES'}")
            ],
            "goals": [
                {"goal": f"check/fmt under {GOAL:g}x bare python", "value": f"{worst:.2f}x", "met": goal_met},
                {"goal": "check/fmt do not import torch", "value": str(torch_free), "met": all(torch_free.values())},
            ],
            "mismatches": [] if all(torch_free.values()) else ["check/fmt import torch"],
        },
    )
    cache.cleanup()
    return 0 if all(torch_free.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
