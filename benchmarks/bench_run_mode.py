"""Run mode on real-style training scripts: ``freezedsl lint --steps N`` over
benchmarks/run_mode/*.py, each correct script and its ``--bug`` twin.

    python benchmarks/bench_run_mode.py            # print the table
    python benchmarks/bench_run_mode.py --write    # also write results/run_mode.md

A correct script must give 0 findings; a bug twin must give its expected codes. The
figures (findings, codes, wall time) come from the runs themselves.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "run_mode"

# script -> (codes its --bug twin must report, or None when it has no twin; what it is)
CASES: dict[str, tuple[frozenset[str] | None, str]] = {
    "finetune_dataloader.py": (
        frozenset({"FZ302", "FZ311"}),
        "argparse + DataLoader(num_workers=2); bug: freeze after SGD(momentum, wd) was built",
    ),
    "amp_bf16.py": (
        frozenset({"FZ301"}),
        "autocast(bf16) + GradScaler on CPU; bug: frozen stem in AdamW (latent)",
    ),
    "bn_backbone.py": (frozenset({"FZ306"}), "frozen BN backbone; bug: left in train() mode"),
    "stale_grads.py": (
        frozenset({"FZ311"}),
        "freeze before step 2 of Adam; bug: zero grads + Adam moments kept",
    ),
    "all_frozen.py": (
        frozenset({"FZ304", "FZ305"}),
        "bug: everything frozen, backward() crashes before step 1",
    ),
    "accelerate_prepare.py": (
        frozenset({"FZ314"}),
        "accelerate on CPU; bug: freeze after accelerator.prepare()",
    ),
    "compiled.py": (
        frozenset({"FZ302", "FZ311"}),
        "torch.compile (inductor, CPU); bug: frozen layer in SGD(momentum, wd)",
    ),
    "cyclegan.py": (None, "CycleGAN alternation: D frozen while G's optimizer steps"),
    "moco_ema.py": (None, "MoCo EMA key encoder updated under no_grad outside step()"),
    "schedule.py": (None, "freezedsl.Schedule gradual unfreezing (add_param_group)"),
    "lightning_finetune.py": (None, "Lightning Trainer + BaseFinetuning unfreeze at epoch 1"),
}
NEEDS = {"accelerate_prepare.py": "accelerate", "lightning_finetune.py": "lightning"}


def lint(script: str, bug: bool, steps: int) -> tuple[list[dict[str, object]], int, float]:
    cmd = [sys.executable, "-m", "freezedsl", "lint", "--steps", str(steps), "--format", "json"]
    cmd += [str(SCRIPTS / script), *(["--bug"] if bug else [])]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    took = time.perf_counter() - start
    return json.loads(proc.stdout or "[]"), proc.returncode, took


def run(steps: int, only: list[str] | None = None) -> list[dict[str, object]]:
    rows = []
    for script, (want, what) in CASES.items():
        if only and script not in only:
            continue
        if script in NEEDS and importlib.util.find_spec(NEEDS[script]) is None:
            rows.append({"script": script, "bug": False, "skipped": NEEDS[script], "what": what})
            continue
        for bug in (False, True) if want is not None else (False,):
            found, rc, took = lint(script, bug, steps)
            runtime = [d for d in found if not str(d["code"]).startswith("FZ2")]
            static = sorted({str(d["code"]) for d in found if str(d["code"]).startswith("FZ2")})
            codes = sorted({str(d["code"]) for d in runtime})
            ok = (not runtime) if not bug else (want is not None and want <= set(codes))
            rows.append(
                {"script": script, "bug": bug, "codes": codes, "findings": len(runtime),
                 "static": static, "exit": rc, "seconds": round(took, 1), "ok": ok, "what": what}
            )
    return rows


def table(rows: list[dict[str, object]], steps: int) -> str:
    cols = "script | variant | runtime findings | runtime codes | static codes | exit | s"
    lines = [
        f"| {cols} | as expected |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['script']} | - | - | - | - | - | - | skipped ({r['skipped']}) |")
            continue
        variant = "bug twin" if r["bug"] else "correct"
        codes = ", ".join(r["codes"]) or "-"  # type: ignore[arg-type]
        lines.append(
            f"| {r['script']} | {variant} | {r['findings']} | {codes} | "
            f"{', '.join(r['static']) or '-'} | {r['exit']} | "  # type: ignore[arg-type]
            f"{r['seconds']} | {'yes' if r['ok'] else '**NO**'} |"
        )
    good = [r for r in rows if "skipped" not in r]
    correct = [r for r in good if not r["bug"]]
    bugs = [r for r in good if r["bug"]]
    head = (
        f"`freezedsl lint --steps {steps} --format json` on {len(correct)} correct real-style "
        f"scripts and {len(bugs)} bug twins: {sum(bool(r['ok']) for r in correct)}/{len(correct)} "
        f"correct scripts with 0 runtime findings, {sum(bool(r['ok']) for r in bugs)}/{len(bugs)} "
        "bugs caught with the expected codes. Static (FZ2xx) findings on the same files are "
        "listed apart: a script holding both twins behind `--bug` shows the bug's static "
        "finding on both."
    )
    return head + "\n\n" + "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    rows = run(args.steps)
    text = table(rows, args.steps)
    print(text)
    if args.write:
        what = "\n".join(f"* `{s}`: {w}" for s, (_, w) in CASES.items())
        (HERE / "results" / "run_mode.md").write_text(
            "# Run mode on real-style training scripts\n\n"
            "Generated by `python benchmarks/bench_run_mode.py --write` (CPU, 2 cores).\n\n"
            + text + "\nThe scripts (benchmarks/run_mode/):\n\n" + what + "\n",
            encoding="utf-8",
        )
    return 0 if all(r.get("ok", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
