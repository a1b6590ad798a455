"""Transfer learning on real data, measured: three ways to fine-tune, one rule file each.

    python examples/digits_transfer.py [--epochs N] [--out examples/results] [--quick]

Data: scikit-learn's bundled 8x8 handwritten digits (``sklearn.datasets.load_digits``,
1,797 images shipped inside the package; nothing is downloaded). Task A is digits 0-4,
task B is digits 5-9; each half is split 70/30 into train and test, stratified, with a
fixed seed.

1. Pretrain ``freezedsl.testing.small_cnn`` on A and save its state dict.
2. From that same state dict, fine-tune on B three ways:
   (a) full fine-tuning (``unfreeze all``: everything trains),
   (b) a frozen backbone, ``digits_rules/frozen_backbone.frz`` (only the classifier
       trains; BatchNorm statistics stay as pretraining left them),
   (c) gradual unfreezing, ``digits_rules/gradual.frz``: ``at epoch N: unfreeze ...``
       statements that ``freezedsl.Schedule`` carries out at each epoch start.
3. Report per method: accuracy on A-test and B-test, median training time per epoch and
   the trainable parameter count from the freezedsl plan; write ``digits.md`` (table)
   and ``digits.png`` (accuracy per epoch) into ``--out``.

How forgetting is measured. The classifier is one 10-way Linear whose rows 0-4 are the
head for task A and rows 5-9 the head for task B. Pretraining computes its loss on
logits 0-4 only, so rows 5-9 never get a gradient and B starts with an untrained head;
fine-tuning computes its loss on logits 5-9 only, so rows 0-4 (Adam, no weight decay)
stay exactly as pretraining left them (the script checks it). A-test accuracy (argmax
over logits 0-4) after fine-tuning therefore changes only through the shared backbone
and its BatchNorm statistics: that change is the forgetting. B-test accuracy is the
argmax over logits 5-9. The table also shows the harder class-incremental number, the
plain 10-way argmax on the union of both test sets, which no method here optimizes.

The three methods train in one process, interleaved step by step (a, b, c, a, b, c,
...), so background load affects their timings alike; each keeps its own model,
optimizer and random generator, so the results equal three separate runs.
Seeds are fixed and deterministic algorithms are on: two runs with the same --threads give
the same accuracies (timings differ).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
import torch.utils.deterministic
from torch import nn

import freezedsl
from freezedsl.planning.plan import Plan
from freezedsl.testing import small_cnn

HERE = Path(__file__).resolve().parent
RULES_DIR = HERE / "digits_rules"
FULL_RULES = "unfreeze all\nexpect trainable 100%"
SEED = 0
# One intra-op thread by default: for batches of 32 8x8 images a second thread only adds
# synchronisation, and on a shared 2-core machine it made a training step 7-50x slower
# (3-6 ms with one thread, 20-290 ms with two, measured while other jobs ran).
THREADS = 1
BATCH = 32
LR = 1e-3
A_OFFSET, B_OFFSET = 0, 5  # first class of each task; each task has 5 classes
PRETRAIN_EPOCHS = 15
FINETUNE_EPOCHS = 12


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # (n, 1, 8, 8) float32 in [0, 1]
    y: torch.Tensor  # (n,) int64 digit labels 0-9


@dataclass(frozen=True)
class Data:
    a_train: Split
    a_test: Split
    b_train: Split
    b_test: Split


def load_data(quick: bool) -> Data:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_all = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y_all = torch.tensor(digits.target, dtype=torch.int64)

    def halves(lo: int) -> tuple[Split, Split]:
        keep = ((y_all >= lo) & (y_all < lo + 5)).nonzero().squeeze(1).numpy()
        train_idx, test_idx = train_test_split(
            keep, test_size=0.3, random_state=SEED, stratify=y_all[keep].numpy()
        )
        if quick:  # tiny: enough to exercise every code path in a few seconds
            train_idx, test_idx = train_idx[:160], test_idx[:80]
        train_idx, test_idx = torch.as_tensor(train_idx), torch.as_tensor(test_idx)
        return (Split(x_all[train_idx], y_all[train_idx]), Split(x_all[test_idx], y_all[test_idx]))

    a_train, a_test = halves(A_OFFSET)
    b_train, b_test = halves(B_OFFSET)
    return Data(a_train, a_test, b_train, b_test)


# ----------------------------------------------------------------------- training


def batches(n: int, gen: torch.Generator) -> list[torch.Tensor]:
    """One epoch's shuffled mini-batches of indices into a split of ``n`` examples."""
    order = torch.randperm(n, generator=gen)
    return [order[i : i + BATCH] for i in range(0, n, BATCH)]


def train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, data: Split, idx: torch.Tensor, offset: int
) -> tuple[float, float]:
    """One optimizer step with the loss on logits offset..offset+4.

    Returns its wall-clock and CPU seconds. With one intra-op thread the CPU time is
    this step's own work, which other jobs on a shared machine hardly change.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    logits = model(data.x[idx])[:, offset : offset + 5]
    loss = F.cross_entropy(logits, data.y[idx] - offset)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - wall, time.process_time() - cpu


@torch.no_grad()
def task_accuracy(model: nn.Module, data: Split, offset: int) -> float:
    """Task-aware accuracy: argmax over that task's five logits."""
    model.eval()
    pred = model(data.x)[:, offset : offset + 5].argmax(dim=1) + offset
    return float((pred == data.y).float().mean())


@torch.no_grad()
def ten_way_accuracy(model: nn.Module, *splits: Split) -> float:
    """Class-incremental accuracy: argmax over all ten logits, on the union of ``splits``."""
    model.eval()
    x = torch.cat([s.x for s in splits])
    y = torch.cat([s.y for s in splits])
    return float((model(x).argmax(dim=1) == y).float().mean())


def pretrain(data: Data, epochs: int, lr: float, path: Path) -> dict[str, torch.Tensor]:
    """Train small_cnn on task A, save its state dict to ``path`` and return a copy."""
    torch.manual_seed(SEED)
    model = small_cnn(num_classes=10)
    init_b_head = model.state_dict()["classifier.weight"][B_OFFSET:].clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(epochs):
        for idx in batches(len(data.a_train.y), gen):
            train_step(model, optimizer, data.a_train, idx, A_OFFSET)
    # The B head (rows 5-9) never entered the loss: it is still the random init.
    assert torch.equal(model.state_dict()["classifier.weight"][B_OFFSET:], init_b_head)
    torch.save(model.state_dict(), path)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------ methods


@dataclass
class Method:
    key: str
    title: str
    rules_shown: str  # what the table prints in the "rules" column
    model: nn.Module
    optimizer: torch.optim.Optimizer
    gen: torch.Generator
    plan: Callable[[], Plan]  # the freezedsl plan in force now
    on_epoch_start: Callable[[int], object] = field(default=lambda epoch: None)
    trainable_by_epoch: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # wall-clock, per epoch
    cpu_seconds: list[float] = field(default_factory=list)
    a_acc: list[float] = field(default_factory=list)  # index 0: before fine-tuning
    b_acc: list[float] = field(default_factory=list)
    ten_way: float = 0.0


def fixed_plan(plan: Plan) -> Callable[[], Plan]:
    return lambda: plan


def current_plan(schedule: freezedsl.Schedule) -> Callable[[], Plan]:
    def now() -> Plan:
        assert schedule.plan is not None  # set when the Schedule is built
        return schedule.plan

    return now


def load_pretrained(path: Path) -> nn.Module:
    model = small_cnn(num_classes=10)
    model.load_state_dict(torch.load(path, weights_only=True))
    return model


def make_methods(path: Path, lr: float) -> list[Method]:
    """The three fine-tuning set-ups, each on its own copy of the pretrained weights."""
    methods = []
    for key, title, rules_like, shown in (
        ("full", "(a) full fine-tune", FULL_RULES, "`unfreeze all` (inline)"),
        (
            "frozen",
            "(b) frozen backbone",
            RULES_DIR / "frozen_backbone.frz",
            "`digits_rules/frozen_backbone.frz`",
        ),
        (
            "gradual",
            "(c) gradual unfreezing",
            RULES_DIR / "gradual.frz",
            "`digits_rules/gradual.frz`",
        ),
    ):
        model = load_pretrained(path)
        gen = torch.Generator().manual_seed(SEED + 1)  # the same batch order for all three
        rules = freezedsl.rules_from(rules_like)
        if rules.schedule_unit is None:
            plan = rules.apply(model)  # freeze first, then build the optimizer
            optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
            methods.append(Method(key, title, shown, model, optimizer, gen, fixed_plan(plan)))
        else:
            # The Schedule applies epoch 0's rules (the head only) when it is built; at
            # each phase boundary it applies the next rules and adds the newly
            # trainable parameters to the optimizer as a new group with this lr.
            schedule = freezedsl.Schedule(rules, model, lr=lr)
            optimizer = torch.optim.Adam(schedule.param_groups(lr=lr))
            schedule.attach(optimizer)
            methods.append(
                Method(
                    key,
                    title,
                    shown,
                    model,
                    optimizer,
                    gen,
                    current_plan(schedule),
                    schedule.epoch_start,
                )
            )
    return methods


# ------------------------------------------------------------------------ reports


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def trainable_text(counts: list[int]) -> str:
    distinct = [c for i, c in enumerate(counts) if i == 0 or c != counts[i - 1]]
    return " → ".join(f"{c:,}" for c in distinct)


def epochs_text(lo: int, hi: int) -> str:
    return f"epoch {lo}" if hi - lo == 1 else f"epochs {lo}-{hi - 1}"


def phase_epochs(counts: list[int]) -> list[int]:
    return [i for i in range(1, len(counts)) if counts[i] != counts[i - 1]]


def write_table(
    out: Path,
    methods: list[Method],
    data: Data,
    pre: tuple[float, float, float],
    args: argparse.Namespace,
    total_s: float,
) -> Path:
    """``digits.md``: set-up, the table, and how to read it."""
    pre_a, pre_b, pre_ten = pre
    full_total = sum(methods[0].cpu_seconds)
    command = " ".join(["python examples/digits_transfer.py", *map(shlex.quote, sys.argv[1:])])
    n_test = len(data.b_test.y)
    gradual = methods[2]
    phases = phase_epochs(gradual.trainable_by_epoch)
    bounds = [0, *phases, len(gradual.seconds)]
    per_phase = "; ".join(
        f"{epochs_text(lo, hi)}: {gradual.trainable_by_epoch[lo]:,} trainable, "
        f"{1000 * statistics.median(gradual.cpu_seconds[lo:hi]):.1f} ms"
        for lo, hi in itertools.pairwise(bounds)
    )
    rows = []
    for m in methods:
        wall, cpu = statistics.median(m.seconds), statistics.median(m.cpu_seconds)
        total = sum(m.cpu_seconds)
        forgot = 100 * (m.a_acc[-1] - pre_a)
        rows.append(
            f"| {m.title} | {m.rules_shown} | {trainable_text(m.trainable_by_epoch)} "
            f"| {pct(m.a_acc[-1])} ({forgot:+.1f}) | {pct(m.b_acc[-1])} | {pct(m.ten_way)} "
            f"| {1000 * wall:.1f} ms | {1000 * cpu:.1f} ms "
            f"| {total:.2f} s ({total / full_total:.2f}x) |"
        )
    text = f"""\
# Transfer learning on scikit-learn's digits: three ways to fine-tune

Written by `{command}` (total wall time {total_s:.0f} s).

Machine: `nproc` = {os.cpu_count()}, torch.set_num_threads({args.threads}), \
torch {torch.__version__}, Python {platform.python_version()}, \
{platform.system()} {platform.machine()}; 1-minute load average at the start {args.load}.

Data: `sklearn.datasets.load_digits()` (8x8, bundled with scikit-learn). Task A = \
digits 0-4 ({len(data.a_train.y)} train / {len(data.a_test.y)} test), task B = digits \
5-9 ({len(data.b_train.y)} train / {n_test} test); stratified 70/30 split, seed {SEED}.

Pretrained on A for {args.pretrain_epochs} epochs: A-test {pct(pre_a)}, B-test \
{pct(pre_b)} (untrained B head; chance is 20%), 10-way {pct(pre_ten)}. Then \
{args.epochs} epochs on B for each method from the same saved weights: Adam, lr {args.lr:g}, \
batch {BATCH}, the same batch order.

| method | rules | trainable params (plan) | A-test acc (digits 0-4) \
| B-test acc (digits 5-9) | 10-way acc (A∪B test) | wall time / epoch (median) \
| CPU time / epoch (median) | CPU time, all epochs (vs full) |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(rows)}

Gradual unfreezing per phase (median CPU time per epoch): {per_phase}.

How to read it:

* **A-test** is task-aware (argmax over logits 0-4) with the A head exactly as \
pretraining left it (checked), so its change in parentheses (points vs. the pretrained \
model) is forgetting caused by the shared backbone and its BatchNorm statistics. \
**B-test** is argmax over logits 5-9.
* **10-way** is the class-incremental view: plain argmax over all ten logits on both \
test sets together. Each loss here sees only its own task's five logits, so no method \
trains the two heads against each other; this number is shown so that the task-aware \
ones are not mistaken for it.
* **trainable params** are parameter elements from the freezedsl plan; for gradual \
unfreezing one value per phase (phases start at epochs {phases}, counted from 0).
* **time** is the batch loop only (forward, backward, optimizer step), measured per \
step. Wall time is what you wait for and moves with the machine's load; CPU time \
(`time.process_time`, one intra-op thread) is the work itself: on a busy machine its \
ratios repeated within about 0.03 from run to run, so the ratios use it. The sum over all epochs shows what \
gradual unfreezing saves: it is cheaper in its early phases only. The three methods ran \
interleaved step by step in one process. Tiny model, tiny batches: much of a step is \
Python and dispatch overhead, so skipping backbone gradients saves less than the \
parameter counts suggest. One intra-op thread (`--threads`): at this size a second \
thread only adds synchronisation.
* One seed; each test half has about {n_test} images, so one image is \
{100 / n_test:.2f} points, and differences of a point or two are noise.

![accuracy per epoch](digits.png)
"""
    path = out / "digits.md"
    path.write_text(text, encoding="utf-8")
    return path


def write_plot(out: Path, methods: list[Method]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    styles = {"full": ("tab:red", "o"), "frozen": ("tab:blue", "s"), "gradual": ("tab:green", "^")}
    for ax, attr, title in (
        (axes[0], "b_acc", "B-test (digits 5-9): the new task"),
        (axes[1], "a_acc", "A-test (digits 0-4): forgetting the old task"),
    ):
        for m in methods:
            values = [100 * v for v in getattr(m, attr)]
            color, marker = styles[m.key]
            ax.plot(range(len(values)), values, color=color, marker=marker, ms=4, label=m.title)
        for epoch in phase_epochs(methods[2].trainable_by_epoch):
            ax.axvline(epoch, color="tab:green", lw=0.8, ls=":", alpha=0.7)
        ax.set_title(title)
        ax.set_xlabel("epochs fine-tuned on B (0 = pretrained on A only)")
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right")
    axes[1].text(
        0.02, 0.03, "dotted: gradual unfreezing phases", transform=axes[1].transAxes, fontsize=8
    )
    fig.suptitle("small_cnn pretrained on digits 0-4, fine-tuned on digits 5-9")
    fig.tight_layout()
    path = out / "digits.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs per method")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for the results")
    parser.add_argument("--quick", action="store_true", help="tiny data, 2 epochs (for tests)")
    parser.add_argument("--lr", type=float, default=LR, help=f"Adam learning rate (default {LR:g})")
    parser.add_argument(
        "--threads", type=int, default=THREADS, help=f"torch intra-op threads (default {THREADS})"
    )
    args = parser.parse_args(argv)
    args.pretrain_epochs = 2 if args.quick else PRETRAIN_EPOCHS
    if args.epochs is None:
        args.epochs = 2 if args.quick else FINETUNE_EPOCHS
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    args.load = f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "n/a"
    torch.set_num_threads(args.threads)
    # Fail on any nondeterministic kernel; skip the NaN-filling of fresh tensors that
    # the deterministic mode also turns on (it doubled the step time, changes nothing).
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    args.out.mkdir(parents=True, exist_ok=True)

    data = load_data(args.quick)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "small_cnn_digits_0-4.pt"
        pretrained = pretrain(data, args.pretrain_epochs, args.lr, weights)
        methods = make_methods(weights, args.lr)

    probe = methods[0].model  # still the pretrained weights: nothing trained yet
    pre_a = task_accuracy(probe, data.a_test, A_OFFSET)
    pre_b = task_accuracy(probe, data.b_test, B_OFFSET)
    pre_ten = ten_way_accuracy(probe, data.a_test, data.b_test)
    print(
        f"pretrained on digits 0-4 ({args.pretrain_epochs} epochs): "
        f"A-test {pct(pre_a)}, B-test {pct(pre_b)} (untrained head)"
    )
    for m in methods:
        m.a_acc.append(pre_a)
        m.b_acc.append(pre_b)

    for epoch in range(args.epochs):
        order = {}
        for m in methods:
            m.on_epoch_start(epoch)  # gradual: may unfreeze a block and grow the optimizer
            m.trainable_by_epoch.append(m.plan().trainable_elements)
            m.model.train()
            order[m.key] = batches(len(data.b_train.y), m.gen)
        wall, cpu = dict.fromkeys(order, 0.0), dict.fromkeys(order, 0.0)
        for step in range(len(order["full"])):
            for m in methods:  # interleaved step by step: a, b, c, a, b, c, ...
                idx = order[m.key][step]
                dw, dc = train_step(m.model, m.optimizer, data.b_train, idx, B_OFFSET)
                wall[m.key] += dw
                cpu[m.key] += dc
        for m in methods:
            m.seconds.append(wall[m.key])
            m.cpu_seconds.append(cpu[m.key])
            m.a_acc.append(task_accuracy(m.model, data.a_test, A_OFFSET))
            m.b_acc.append(task_accuracy(m.model, data.b_test, B_OFFSET))
        print(
            f"epoch {epoch:2d}  "
            + "  ".join(f"{m.key}: B {pct(m.b_acc[-1])} A {pct(m.a_acc[-1])}" for m in methods)
        )

    for m in methods:
        m.ten_way = ten_way_accuracy(m.model, data.a_test, data.b_test)
    total = time.perf_counter() - started
    table = write_table(args.out, methods, data, (pre_a, pre_b, pre_ten), args, total)
    plot = write_plot(args.out, methods)
    print()
    print(table.read_text(encoding="utf-8").split("\n\nHow to read it")[0])
    print()

    # Checks: the claims the table relies on.
    for m in methods:
        head_a = m.model.state_dict()["classifier.weight"][:5]
        assert torch.equal(head_a, pretrained["classifier.weight"][:5]), m.key
    frozen = methods[1].model.state_dict()
    untouched = [k for k in pretrained if k.startswith("features.")]
    assert all(torch.equal(frozen[k], pretrained[k]) for k in untouched)
    assert methods[1].a_acc[-1] == pre_a
    gradual = methods[2]
    if args.epochs > 5:
        assert gradual.trainable_by_epoch[-1] == methods[0].trainable_by_epoch[-1]
    print(f"wrote {table} and {plot}")
    print(
        "verified: the A head is unchanged in all three runs; the frozen backbone "
        "(weights and BatchNorm statistics) is bit-identical to the pretrained one"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
