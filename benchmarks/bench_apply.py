"""Benchmark planning and applying rules at scale, against baselines in the same process.

    python benchmarks/bench_apply.py [--write] [--quick] [--repeat N]

Builds ``freezedsl.testing.moe_transformer`` on the meta device at three sizes (15, 30 and
60 blocks of 256 experts: 23,255 / 46,505 / 93,005 parameter tensors) and applies the
ten rules of ``benchmarks/moe.frz`` to it. For every size it times, interleaved in one
process, with every parameter reset to ``requires_grad=True`` (untimed) before each run:

* ``floor``: ``for p in model.parameters(): p.requires_grad_(False)``, the least any
  tool that touches every parameter pays;
* ``floor, known result``: the same loop setting each parameter to its final state
  (computed beforehand), i.e. applying the answer without working it out;
* ``naive regex loop``: ten compiled regexes tried against every name of
  ``named_parameters()``, the last match wins, what hand-written code does;
* ``timm``: ``timm.utils.model.freeze`` / ``unfreeze`` (``include_bn_running_stats=False``)
  called once per rule, in rule order, with module names found by one
  ``named_modules()`` pass (included in the time; also shown on its own);
* ``Lightning``: ``BaseFinetuning.freeze`` / ``make_trainable`` likewise, with modules;
* ``freezedsl plan`` and ``freezedsl apply`` of the ten rules, index building included
  (what a user pays for ``rules.plan(model)`` / ``rules.apply(model)``);
* ``freezedsl apply`` with the garbage collector disabled: the ten rules, a one-rule
  program (``freeze all``, the floor's result) and, on the smallest model, the ten rules
  four times over (40 rules), to separate per-tensor from per-rule cost without the
  collector's pauses blurring it.

Every baseline's resulting ``requires_grad`` vector is compared with freezedsl's
(they are built to be equivalent; a mismatch is reported, not hidden). Then a phase
breakdown (index / plan / apply_plan, and time spent in the garbage collector) and a
cProfile of ``apply`` at the largest size. ``--write`` writes
``benchmarks/results/apply.md``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
if str(HERE.parent) not in sys.path:  # run from a checkout without installing
    sys.path.insert(1, str(HERE.parent))

import _util
from _util import ms, table, us

RULES_FILE = HERE / "moe.frz"
SIZES = [(15, 256), (30, 256), (60, 256)]
QUICK_SIZES = [(11, 4), (12, 4), (13, 4)]
FLOOR = "floor"
NOGC_ONE = "freezedsl `apply` (1 rule: `freeze all`), collector disabled"


def nogc_label(n_rules: int) -> str:
    return f"freezedsl `apply` ({n_rules} rules), collector disabled"


# ------------------------------------------------------------------ baselines


def _alt(numbers: range) -> str:
    return "(?:" + "|".join(str(i) for i in numbers) + ")"


def naive_regexes(blocks: int, experts: int) -> list[tuple[re.Pattern[str], bool]]:
    """moe.frz as ten regexes over parameter names (True = unfreeze), in rule order.

    What a careful hand-written version looks like: slices become alternations of the
    indices they cover at this model size, ``type=LayerNorm`` becomes the names of the
    LayerNorm modules.
    """
    specs = [
        (r"^", False),  # freeze all
        (rf"^blocks\.{_alt(range(max(0, blocks - 10), blocks))}\.", True),  # blocks[-10:]
        (r"^blocks\.\d+\.moe\.experts\.(?:\d|[1-9]\d|1[01]\d|12[0-7])\.", False),  # experts[0:128]
        (r"^blocks\.\d+\.moe\.experts\.\d+\.w1\.", True),
        (
            (rf"^blocks\.{_alt(range(min(30, blocks)))}\.moe\.experts\."
            rf"{_alt(range(max(0, experts - 8), experts))}\.w[12]\."),
            False,
        ),  # blocks[0:30].moe.experts[-8:] except **.w3
        (r"(?:^|\.)router\.", True),  # **.router
        (r"\.norm[12]\.", False),
        (r"^(?:blocks\.[1-9]\d+\.norm[12]|norm)\.", True),  # type=LayerNorm except blocks[0:10]
        (r"^blocks\.\d+\.attn\.[qk]\.", True),
        (r"^head\.", True),
    ]
    return [(re.compile(p), flag) for p, flag in specs]


def naive_regex_loop(model: Any, compiled: list[tuple[re.Pattern[str], bool]]) -> None:
    for name, p in model.named_parameters():
        want = None
        for rx, flag in compiled:
            if rx.search(name):
                want = flag
        if want is not None:
            p.requires_grad_(want)


# Rule order of moe.frz: True = unfreeze.
MODULE_ACTIONS = [False, True, False, True, False, True, False, True, True, True]


def select_modules(model: Any, blocks: int, experts: int) -> list[list[tuple[str, Any]]]:
    """The modules each rule of moe.frz selects, found in one ``named_modules()`` pass.

    Every rule of moe.frz selects whole modules, so module-level tools (timm,
    Lightning) can express it. Entry 0 (``freeze all``) is the root module.
    """
    from torch import nn

    out: list[list[tuple[str, Any]]] = [[("", model)]] + [[] for _ in range(9)]
    last10 = blocks - 10
    for name, mod in model.named_modules():
        if not name:
            continue
        parts = name.split(".")
        in_block = parts[0] == "blocks" and len(parts) > 1
        b = int(parts[1]) if in_block else -1
        if isinstance(mod, nn.LayerNorm) and not (in_block and b < 10):
            out[7].append((name, mod))  # type=LayerNorm except blocks[0:10]
        if not in_block:
            if name == "head":
                out[9].append((name, mod))
            continue
        depth = len(parts)
        if depth == 2:
            if b >= last10:
                out[1].append((name, mod))  # blocks[-10:]
        elif depth == 3:
            if parts[2] in ("norm1", "norm2"):
                out[6].append((name, mod))  # name~"\.norm[12]\."
        elif depth == 4:
            if parts[2] == "attn" and parts[3] in ("q", "k"):
                out[8].append((name, mod))
            elif parts[2] == "moe" and parts[3] == "router":
                out[5].append((name, mod))  # **.router
        elif parts[2] == "moe" and parts[3] == "experts":
            e = int(parts[4])
            if depth == 5 and e < 128:
                out[2].append((name, mod))  # blocks.*.moe.experts[0:128]
            elif depth == 6:
                if parts[5] == "w1":
                    out[3].append((name, mod))  # blocks.*.moe.experts.*.w1
                if b < 30 and e >= experts - 8 and parts[5] != "w3":
                    out[4].append((name, mod))  # blocks[0:30].moe.experts[-8:] except **.w3
    for k, found in enumerate(out):
        # an empty list would mean "the whole model" to timm: never pass one
        assert found, f"rule {k + 1} of moe.frz selects no module at this size"
    return out


def timm_steps(model: Any, blocks: int, experts: int, tm: Any) -> None:
    lists = select_modules(model, blocks, experts)
    for k, (unfreeze, found) in enumerate(zip(MODULE_ACTIONS, lists)):
        names = [] if k == 0 else [n for n, _ in found]  # [] = the root module
        fn = tm.unfreeze if unfreeze else tm.freeze
        fn(model, submodules=names, include_bn_running_stats=False)


def lightning_steps(model: Any, blocks: int, experts: int, bf: Any) -> None:
    lists = select_modules(model, blocks, experts)
    for unfreeze, found in zip(MODULE_ACTIONS, lists):
        mods = [m for _, m in found]
        if unfreeze:
            bf.make_trainable(mods)
        else:
            bf.freeze(mods, train_bn=True)  # no BatchNorm in the model: train_bn is moot


def import_timm() -> tuple[Any, str | None]:
    try:
        import timm.utils.model as tm
    except Exception as exc:  # noqa: BLE001 - any import failure means "skip"
        return None, f"skipped: timm not importable ({type(exc).__name__}: {exc})"
    return tm, None


def import_lightning() -> tuple[Any, str | None]:
    try:
        from lightning.pytorch.callbacks import BaseFinetuning
    except Exception:  # noqa: BLE001
        try:
            from pytorch_lightning.callbacks import BaseFinetuning
        except Exception as exc:  # noqa: BLE001
            return None, f"skipped: Lightning not importable ({type(exc).__name__}: {exc})"
    return BaseFinetuning, None


# ------------------------------------------------------------------ measuring


def build(blocks: int, experts: int, meta: bool = True) -> tuple[Any, float]:
    """The model, and how long building it took.

    On meta, the Embedding's init imports torch._dynamo (seconds, once per process);
    --quick builds its tiny models on the CPU instead.
    """
    import contextlib

    import torch

    from freezedsl.testing import moe_transformer

    start = time.perf_counter()
    with torch.device("meta") if meta else contextlib.nullcontext():
        model = moe_transformer(blocks=blocks, experts=experts)
    return model, time.perf_counter() - start


class GcClock:
    """Total time the cyclic garbage collector ran while active (gc.callbacks)."""

    def __init__(self) -> None:
        self.total = 0.0
        self.counts = [0, 0, 0]
        self.by_gen = [0.0, 0.0, 0.0]
        self._start = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            spent = time.perf_counter() - self._start
            gen = info.get("generation", 0)
            self.total += spent
            self.counts[gen] += 1
            self.by_gen[gen] += spent

    def __enter__(self):  # type: ignore[no-untyped-def]  # typing.Self needs 3.11
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def measure_size(
    blocks: int, experts: int, repeat: int, libs: dict, *, largest: bool, smallest: bool, quick: bool = False
) -> dict:
    import freezedsl
    from freezedsl.application import apply_plan
    from freezedsl.planning.index import build_index
    from freezedsl.planning.plan import make_plan

    model, t_build = build(blocks, experts, meta=not quick)

    def collect() -> None:  # a full collection takes ~0.5 s beside a 93k-tensor model
        if not quick:
            gc.collect()
    params = list(model.parameters())
    n = len(params)

    def reset() -> None:
        for p in params:
            p.requires_grad_(True)

    def state() -> tuple[bool, ...]:
        return tuple(p.requires_grad for p in params)

    rules = freezedsl.load(RULES_FILE)
    one = freezedsl.compile("freeze all")
    body = "\n".join(ln for ln in RULES_FILE.read_text().splitlines() if ln.startswith(("freeze", "unfreeze")))
    forty = freezedsl.compile("\n".join([body] * 4))
    n_rules = sum(1 for st in rules.program.statements if type(st).__name__ == "Rule")
    regexes = naive_regexes(blocks, experts)

    reset()
    rules.apply(model)
    expected = state()
    reset()
    result_of_floor = tuple(False for _ in params)

    def floor() -> None:
        for p in model.parameters():
            p.requires_grad_(False)

    def floor_known() -> None:
        for p, want in zip(model.parameters(), expected):
            p.requires_grad_(want)

    contenders: list[tuple[str, Callable[[], object], tuple[bool, ...] | None]] = [
        (FLOOR, floor, result_of_floor),
        ("floor, known result", floor_known, expected),
        ("naive regex loop (10 regexes)", lambda: naive_regex_loop(model, regexes), expected),
        ("`named_modules()` selection pass alone", lambda: select_modules(model, blocks, experts), None),
    ]
    notes: dict[str, str] = {}
    tm, why = libs["timm"]
    label_timm = "timm `freeze`/`unfreeze` (incl. selection)"
    if tm is not None:
        contenders.append((label_timm, lambda: timm_steps(model, blocks, experts, tm), expected))
    else:
        notes[label_timm] = why or "skipped"
    bf, why = libs["lightning"]
    label_l = "Lightning `BaseFinetuning` (incl. selection)"
    if bf is not None:
        contenders.append((label_l, lambda: lightning_steps(model, blocks, experts, bf), expected))
    else:
        notes[label_l] = why or "skipped"
    gc_runs: list[GcClock] = []

    def apply_clocked() -> None:
        with GcClock() as clock:
            rules.apply(model)
        gc_runs.append(clock)

    def no_gc(program: Any) -> Callable[[], object]:
        def run() -> None:
            gc.disable()
            try:
                program.apply(model)
            finally:
                gc.enable()

        return run

    contenders += [
        (f"freezedsl `plan` ({n_rules} rules)", lambda: rules.plan(model), None),
        (f"freezedsl `apply` ({n_rules} rules)", apply_clocked, expected),
        (NOGC_ONE, no_gc(one), result_of_floor),
        (nogc_label(n_rules), no_gc(rules), expected),
    ]
    if smallest:
        contenders.append((nogc_label(4 * n_rules), no_gc(forty), expected))

    # The first timed run of each contender also checks its result against freezedsl's.
    wanted = {label: want for label, _fn, want in contenders}
    equivalence: dict[str, str] = {}

    def check(label: str, round_: int) -> None:
        want = wanted[label]
        if round_ == 0 and want is not None:
            got = state()
            diff = sum(1 for a, b in zip(got, want) if a != b)
            equivalence[label] = "same" if diff == 0 else f"DIFFERENT: {diff} of {n} tensors"

    timings = _util.interleaved(
        [(label, fn) for label, fn, _ in contenders], repeat, setup=reset, collect=not quick, after=check
    )

    # The collector's share in the best timed run of apply.
    apply_runs = timings[f"freezedsl `apply` ({n_rules} rules)"].runs
    best_clock = gc_runs[apply_runs.index(min(apply_runs))]

    # Phase breakdown of apply (best of 2 runs each, collector off so that its pauses
    # do not land on whichever phase happens to allocate).
    best = [float("inf")] * 3
    for _ in range(1 if quick else 2):
        reset()
        collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            index = build_index(model)
            t1 = time.perf_counter()
            plan = make_plan(rules.program, model, index)
            t2 = time.perf_counter()
            apply_plan(plan)
            t3 = time.perf_counter()
        finally:
            gc.enable()
        best = [min(b, t) for b, t in zip(best, (t1 - t0, t2 - t1, t3 - t2))]
        del index, plan
    reset()
    phases = {
        "build_index": best[0],
        "make_plan given the index: selectors, decisions, report": best[1],
        "apply_plan: checks, requires_grad_, undo": best[2],
        "sum of the phases": sum(best),
        "whole apply, collector enabled (best run above)": min(apply_runs),
        "of which in the collector": best_clock.total,
        "collections during it (generation 0 / 1 / 2)": " / ".join(f"{c:,}" for c in best_clock.counts),
        "of which in generation-2 (full) collections": best_clock.by_gen[2],
    }

    profile_text = ""
    if largest:
        collect()
        prof = cProfile.Profile()
        prof.enable()
        rules.apply(model)
        prof.disable()
        reset()
        profile_text = _util.profile_rows(prof, "tottime"), _util.profile_rows(prof, "cumulative")

    result = {
        "blocks": blocks,
        "experts": experts,
        "tensors": n,
        "modules": sum(1 for _ in model.modules()),
        "build_s": t_build,
        "timings": timings,
        "equivalence": equivalence,
        "notes": notes,
        "phases": phases,
        "profile": profile_text,
        "n_rules": n_rules,
    }
    return result


# ------------------------------------------------------------------ report


def report(sizes: list[dict], repeat: int, load_start: str, quick: bool) -> tuple[list[str], dict]:
    labels = list(sizes[0]["timings"])
    extra = [lbl for s in sizes for lbl in s["timings"] if lbl not in labels]
    labels += list(dict.fromkeys(extra))
    n_rules = sizes[0]["n_rules"]
    apply_lbl = f"freezedsl `apply` ({n_rules} rules)"
    plan_lbl = f"freezedsl `plan` ({n_rules} rules)"
    regex_lbl = "naive regex loop (10 regexes)"
    big = sizes[-1]

    lines = [
        "# Apply at scale: freezedsl vs the floor, a naive regex loop, timm and Lightning",
        "",
        (f"`python benchmarks/bench_apply.py --write{' --quick' if quick else ''}`"
        f" — `freezedsl.testing.moe_transformer` on the {'CPU' if quick else 'meta device'}, rules `benchmarks/moe.frz`"
        f" ({n_rules} rules + 3 `expect`). Every figure is the best of {repeat} runs"
        " (median in the second table), contenders interleaved in one process, requires_grad reset to"
        " True before every run, garbage collector enabled (a `gc.collect()` before each run)."),
        "",
        *_util.machine_lines(load_start),
        "",
        "## Time per size (best of runs, ms; in brackets: ratio to the floor)",
        "",
    ]
    header = ["contender"] + [f"{s['tensors']:,} tensors ({s['blocks']}x{s['experts']})" for s in sizes]
    rows = []
    for lbl in labels:
        row = [lbl]
        for s in sizes:
            t = s["timings"].get(lbl)
            if t is None:
                row.append(s["notes"].get(lbl, "—"))
                continue
            ratio = t.best / s["timings"][FLOOR].best
            row.append(f"{ms(t.best)} ({ratio:.1f}x)")
        rows.append(row)
    for lbl in sizes[0]["notes"]:
        rows.append([lbl] + [s["notes"][lbl] for s in sizes])
    lines += table(header, rows)

    lines += ["", "## Median of runs (ms)", ""]
    rows = []
    for lbl in labels:
        rows.append([lbl] + [ms(s["timings"][lbl].median) if lbl in s["timings"] else "—" for s in sizes])
    lines += table(header, rows)

    lines += [
        "",
        "## Time per tensor (µs, best run) — linear growth means a flat row",
        "",
    ]
    rows = []
    for lbl in labels:
        per = [s["timings"][lbl].best / s["tensors"] if lbl in s["timings"] else None for s in sizes]
        have = [p for p in per if p is not None]
        spread = f"{max(have) / min(have):.2f}" if len(have) > 1 else "—"
        rows.append([lbl] + [us(p) if p is not None else "—" for p in per] + [spread])
    lines += table(header + ["max/min"], rows)

    # statements vs tensors
    one_lbl = NOGC_ONE
    ten_lbl = nogc_label(n_rules)
    forty_lbl = nogc_label(4 * n_rules)
    lines += [
        "",
        "## Rules vs tensors: the same model with 1, 10 and 40 rules (best, ms, collector disabled)",
        "",
        ("With the collector disabled, so that its pauses (which depend on how much was allocated"
        " before, not on the rules) do not blur the comparison. 40 rules: `moe.frz`'s ten rules four"
        " times over, on the smallest model only."),
        "",
    ]
    rows = []
    for s in sizes:
        t1 = s["timings"][one_lbl].best
        t10 = s["timings"][ten_lbl].best
        t40 = s["timings"][forty_lbl].best if forty_lbl in s["timings"] else None
        per_rule = (t10 - t1) / (n_rules - 1)
        rows.append(
            [
                f"{s['tensors']:,}",
                ms(t1),
                ms(t10),
                f"{t10 / t1:.2f}",
                ms(t40) if t40 is not None else "—",
                f"{t40 / t10:.2f}" if t40 is not None else "—",
                f"{per_rule * 1e3:,.1f} ({per_rule / t1 * 100:.0f}% of the 1-rule run)",
            ]
        )
    lines += table(
        ["tensors", "1 rule", f"{n_rules} rules", f"{n_rules}/1", f"{4 * n_rules} rules", f"{4 * n_rules}/{n_rules}",
         "ms per extra rule"],
        rows,
    )
    lines += [
        "",
        "If cost were tensors x statements, 10 rules would cost ~10x one rule and 40 rules ~4x ten.",
    ]

    lines += ["", "## Same result? (each baseline's requires_grad vector vs freezedsl's)", ""]
    rows = []
    for lbl in labels:
        checks = [s["equivalence"].get(lbl) for s in sizes]
        if all(c is None for c in checks):
            continue
        rows.append([lbl] + [c or "—" for c in checks])
    lines += table(["contender"] + [f"{s['tensors']:,}" for s in sizes], rows, "l" + "l" * len(sizes))
    lines += [
        "",
        ("`floor` and `freeze all` are compared with \"every tensor frozen\"; the rest with the result of"
        " `moe.frz`. The timm and Lightning runs select modules by name/type in one `named_modules()` pass"
        " (Python string tests, timed with them) and call the library once per rule, in rule order; the"
        " naive loop needs the slices spelled out as alternations for this model size."),
    ]

    lines += [
        "",
        "## Where apply's time goes (ms)",
        "",
        ("The first three rows: best of two runs of each phase, collector disabled. The rest: the"
        " collector's activity (`gc.callbacks`) during the best timed `apply` run of the first table."),
        "",
    ]
    keys = list(sizes[0]["phases"])
    rows = []
    for k in keys:
        vals = []
        for s in sizes:
            v = s["phases"][k]
            vals.append(v if isinstance(v, str) else ms(v))
        rows.append([k] + vals)
    lines += table(["phase"] + [f"{s['tensors']:,}" for s in sizes], rows)

    if big["profile"]:
        tot, cum = big["profile"]
        lines += [
            "",
            f"## cProfile of `rules.apply(model)` at {big['tensors']:,} tensors",
            "",
            ("cProfile roughly doubles the run time, and it books each garbage-collector pause to"
            " whichever function happened to allocate when the collector started (see the phase"
            " table for the collector's real share)."),
            "",
            "Top 10 by own time:",
            "",
        ]
        lines += table(["function", "calls", "own (s)", "cumulative (s)"], tot)
        lines += ["", "Top 10 by cumulative time:", ""]
        lines += table(["function", "calls", "own (s)", "cumulative (s)"], cum)

    # goals
    f_big = big["timings"][FLOOR].best
    a_big = big["timings"][apply_lbl].best
    r_big = big["timings"][regex_lbl].best
    ratio_floor = a_big / f_big
    ratio_regex = a_big / r_big
    per_tensor = [s["timings"][apply_lbl].best / s["tensors"] for s in sizes]
    linear = max(per_tensor) / min(per_tensor)
    nogc_lbl = nogc_label(n_rules)
    nogc_ratio = big["timings"][nogc_lbl].best / f_big
    nogc_per = [s["timings"][nogc_lbl].best / s["tensors"] for s in sizes]
    nogc_linear = max(nogc_per) / min(nogc_per)
    goal_floor = ratio_floor <= 1.5
    goal_regex = a_big < r_big
    goal_linear = linear <= 1.5
    lines += [
        "",
        "## Goals",
        "",
        *table(
            ["goal", "measured", "met?"],
            [
                [
                    "apply within 1.5x of the floor",
                    f"{ratio_floor:.2f}x at {big['tensors']:,} tensors"
                    + "".join(
                        f"; {s['timings'][apply_lbl].best / s['timings'][FLOOR].best:.2f}x at {s['tensors']:,}"
                        for s in sizes[:-1]
                    )
                    + f" (collector disabled: {nogc_ratio:.2f}x at {big['tensors']:,})",
                    "yes" if goal_floor else "**no**",
                ],
                [
                    "apply faster than the naive regex loop",
                    f"apply / regex loop = {ratio_regex:.2f} at {big['tensors']:,} tensors",
                    "yes" if goal_regex else "**no**",
                ],
                [
                    "linear in tensors (µs per tensor flat within 1.5x)",
                    (f"max/min µs per tensor over the sizes = {linear:.2f}"
                    f" (collector disabled: {nogc_linear:.2f})"),
                    "yes" if goal_linear else "**no**",
                ],
            ],
            "lll",
        ),
    ]
    summary = {
        "name": "apply",
        "headline": [
            (f"apply {ms(a_big)} ms at {big['tensors']:,} tensors: {ratio_floor:.2f}x the floor "
            f"({ms(f_big)} ms), {ratio_regex:.2f}x the naive regex loop ({ms(r_big)} ms); "
            f"plan {ms(big['timings'][plan_lbl].best)} ms; with the collector disabled apply is "
            f"{nogc_ratio:.1f}x the floor"),
        ],
        "goals": [
            {"goal": "apply within 1.5x of the floor (93k tensors)", "value": f"{ratio_floor:.2f}x", "met": goal_floor},
            {"goal": "apply faster than the naive regex loop", "value": f"{ratio_regex:.2f}x", "met": goal_regex},
            {"goal": "apply linear in tensors", "value": f"per-tensor spread {linear:.2f}", "met": goal_linear},
        ],
        "mismatches": [
            f"{lbl} at {s['tensors']:,}: {v}" for s in sizes for lbl, v in s["equivalence"].items() if v != "same"
        ],
    }
    return lines, summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _util.add_common_args(ap)
    ap.add_argument("--repeat", type=int, default=None, help="runs per figure (default 3; 2 with --quick)")
    ap.add_argument(
        "--no-peers", action="store_true", help="do not import timm and Lightning (skip those rows; faster)"
    )
    args = ap.parse_args(argv)
    repeat = args.repeat or (2 if args.quick else 3)
    load_start = _util.load_average()
    sizes = QUICK_SIZES if args.quick else SIZES
    if args.no_peers:
        libs = {"timm": (None, "skipped (--no-peers)"), "lightning": (None, "skipped (--no-peers)")}
    else:
        libs = {"timm": import_timm(), "lightning": import_lightning()}

    results = []
    for k, (blocks, experts) in enumerate(sizes):
        t = time.perf_counter()
        res = measure_size(
            blocks, experts, repeat, libs, largest=k == len(sizes) - 1, smallest=k == 0, quick=args.quick
        )
        print(
            f"  {res['tensors']:,} tensors: built in {res['build_s']:.1f} s, measured in "
            f"{time.perf_counter() - t:.1f} s",
            file=sys.stderr,
        )
        results.append(res)
        if not args.quick:
            gc.collect()  # free the model before building the next
    lines, summary = report(results, repeat, load_start, args.quick)
    print("\n".join(lines))
    path = _util.write_result("apply", lines, _util.results_dir(args))
    if path:
        print(f"wrote {path}")
    _util.write_summary(args.summary_json, summary)
    return 1 if summary["mismatches"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
