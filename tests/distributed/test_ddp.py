"""freezedsl with torch.distributed: a real two-process DDP run (gloo, CPU).

The spawn tests start two ranks of ``dist_worker.py`` as subprocesses that meet through a
FileStore in ``tmp_path`` (no ports, no network), with a 30 s collective timeout and a
hard subprocess timeout, so a hang fails the test instead of blocking CI. The worker
writes what it saw per rank; this file compares the ranks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

import freezedsl
from freezedsl.manifest import apply_manifest, make_manifest
from freezedsl.testing import small_cnn

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason="torch.distributed with the gloo backend is not available",
)

WORKER = Path(__file__).with_name("dist_worker.py")
WORLD = 2
HARD_TIMEOUT_S = 120  # the worker's collectives time out after 30 s on their own

FROZEN = {
    "features.0.conv.weight",
    "features.0.bn.weight",
    "features.0.bn.bias",
    "features.1.conv.weight",
    "features.1.bn.weight",
    "features.1.bn.bias",
}


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], names: set[str]) -> bool:
    return all(torch.equal(a[n], b[n]) for n in names)


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Run the two ranks once; every spawn test below reads their results."""
    out = tmp_path_factory.mktemp("ddp")
    env = dict(os.environ)
    # One CPU thread per rank; keep gloo on loopback where the host name does not resolve.
    env.update(OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(rank), str(WORLD), str(out / "store"), str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for rank in range(WORLD)
    ]
    logs: list[str] = []
    try:
        for proc in procs:
            logs.append(proc.communicate(timeout=HARD_TIMEOUT_S)[0])
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        pytest.fail(f"DDP ranks did not finish within {HARD_TIMEOUT_S} s (hang?)")
    results = []
    for rank, (proc, log) in enumerate(zip(procs, logs)):
        path = out / f"rank{rank}.pt"
        assert path.exists(), f"rank {rank} wrote no results (exit {proc.returncode}):\n{log}"
        data = torch.load(path, weights_only=True)
        assert "crash" not in data, f"rank {rank} failed:\n{data['crash']}\n{log}"
        assert proc.returncode == 0, f"rank {rank} exited {proc.returncode}:\n{log}"
        results.append(data)
    return results


@pytest.mark.slow
def test_frozen_params_never_move_and_ranks_agree(ranks: list[dict[str, Any]]) -> None:
    r0, r1 = (r["freeze_first"] for r in ranks)
    names = set(r0["final"])
    assert set(r0["plan_frozen"]) == FROZEN
    assert {n for n, f in r0["flags"].items() if not f} == FROZEN
    trainable = names - FROZEN

    # Same seed, same model on both ranks before training.
    assert _equal(r0["initial"], r1["initial"], names)
    # Frozen: bit-identical to the initial values, on both ranks.
    assert _equal(r0["final"], r0["initial"], FROZEN)
    assert _equal(r1["final"], r1["initial"], FROZEN)
    # Trainable: moved, and identical across ranks although each rank saw other data
    # (so DDP all-reduced their gradients).
    for name in trainable:
        assert not torch.equal(r0["final"][name], r0["initial"][name]), name
    assert _equal(r0["final"], r1["final"], names)


@pytest.mark.slow
def test_ddp_registers_only_trainable_params(ranks: list[dict[str, Any]]) -> None:
    for r in ranks:
        run = r["freeze_first"]
        assert run["trainable_tensors"] == len(run["final"]) - len(FROZEN)
        if run["ddp_registered"] is not None:  # private logging API; absent is fine
            assert run["ddp_registered"] == run["trainable_tensors"]


@pytest.mark.slow
def test_freeze_stats_keeps_running_stats_under_ddp(ranks: list[dict[str, Any]]) -> None:
    for r in ranks:
        run = r["freeze_first"]
        before, after = run["buffers_before"], run["buffers_after"]
        for name in before:
            if name.startswith(("features.0.bn.", "features.1.bn.")):
                assert torch.equal(before[name], after[name]), name
        # features.3.bn was not in `freeze stats`; it kept updating in train mode.
        assert not torch.equal(
            before["features.3.bn.running_mean"], after["features.3.bn.running_mean"]
        )
    # Pinned statistics are equal across ranks too. (The updating ones may differ after
    # the last step: DDP broadcasts rank 0's buffers at the start of each forward.)
    b0, b1 = (r["freeze_first"]["buffers_after"] for r in ranks)
    pinned = [n for n in b0 if n.startswith(("features.0.bn.", "features.1.bn."))]
    assert pinned and all(torch.equal(b0[n], b1[n]) for n in pinned)


@pytest.mark.slow
def test_schedule_with_rewrapped_ddp_keeps_ranks_in_sync(ranks: list[dict[str, Any]]) -> None:
    r0, r1 = (r["rewrap"] for r in ranks)
    assert r0["rebuilt"] == [1]  # epoch 0 is applied by the Schedule's constructor
    names = set(r0["after"][0])
    for epoch in (0, 1):
        assert _equal(r0["after"][epoch], r1["after"][epoch], names)
    late = {n for n in names if n.startswith("features.3.")}
    for name in late:
        assert r0["flags"][name]
        assert not torch.equal(r0["after"][1][name], r0["after"][0][name]), name
    still_frozen = {n for n in names if n.startswith(("features.0.", "features.1."))}
    assert _equal(r0["after"][1], r0["after"][0], still_frozen)


@pytest.mark.slow
def test_unfreezing_after_wrapping_lets_replicas_drift(ranks: list[dict[str, Any]]) -> None:
    """The failure docs/distributed.md warns about, reproduced: no error, silent drift."""
    r0, r1 = (r["unfreeze_after_wrap"]["final"] for r in ranks)
    late = {n for n in r0 if n.startswith("features.3.")}
    assert not _equal(r0, r1, late)  # never all-reduced: each rank kept its own gradient
    assert _equal(r0, r1, {"classifier.weight", "classifier.bias"})  # registered: in sync


@pytest.mark.slow
def test_freezing_after_wrapping_breaks_the_reducer(ranks: list[dict[str, Any]]) -> None:
    """The other wrong order: freeze after DDP was built -> reduction error next step."""
    for r in ranks:
        run = r["freeze_after_wrap"]
        assert run["error"] is not None, "expected DDP's reducer to fail"
        assert "Expected to have finished reduction" in run["error"]
        assert any("DistributedDataParallel" in w for w in run["warnings"])


# ------------------------------------------------------------------------ FSDP


def _fsdp(ranks: list[dict[str, Any]], name: str) -> list[Any]:
    runs = [r[name] for r in ranks]
    if any(run is None for run in runs):
        pytest.skip("torch.distributed.fsdp is not available in this build")
    return runs


@pytest.mark.slow
def test_fsdp2_mixed_requires_grad_in_one_unit(ranks: list[dict[str, Any]]) -> None:
    """fully_shard shards per parameter: frozen and trainable may share a unit."""
    r0, r1 = _fsdp(ranks, "fsdp2")
    names = set(r0["final"])
    assert {n for n, f in r0["flags"].items() if not f} == FROZEN  # flags survive sharding
    assert _equal(r0["final"], r0["initial"], FROZEN)
    for name in names - FROZEN:
        assert not torch.equal(r0["final"][name], r0["initial"][name]), name
    assert _equal(r0["final"], r1["final"], names)


@pytest.mark.slow
def test_fsdp2_schedule_unfreezes_in_place(ranks: list[dict[str, Any]]) -> None:
    """Unlike DDP, FSDP2 needs no re-wrap when a Schedule phase unfreezes a block."""
    r0, r1 = _fsdp(ranks, "fsdp2_schedule")
    names = set(r0["after"][0])
    late = {n for n in names if n.startswith("features.3.")}
    assert all(r0["flags"][n] for n in late)
    for epoch in (0, 1):
        assert _equal(r0["after"][epoch], r1["after"][epoch], names)
    for name in late:
        assert not torch.equal(r0["after"][1][name], r0["after"][0][name]), name
    frozen = {n for n in names if n.startswith(("features.0.", "features.1."))}
    assert _equal(r0["after"][1], r0["after"][0], frozen)


@pytest.mark.slow
def test_fsdp1_flat_params_need_use_orig_params(ranks: list[dict[str, Any]]) -> None:
    for run in _fsdp(ranks, "fsdp1"):
        refused = run["use_orig_params=False"]
        assert refused is not None and "uniform `requires_grad`" in refused
        assert run["use_orig_params=True"] is None
        assert run["use_orig_params=False, per-block units"] is None


# --------------------------------------------------------------- single process


@pytest.fixture
def one_rank_group(tmp_path: Path) -> Iterator[None]:
    """A one-process gloo group, enough to construct DistributedDataParallel."""
    if dist.is_initialized():
        pytest.skip("a process group is already initialized in this process")
    dist.init_process_group(
        "gloo",
        init_method=f"file://{tmp_path / 'store'}",
        rank=0,
        world_size=1,
        timeout=timedelta(seconds=30),
    )
    try:
        yield
    finally:
        dist.destroy_process_group()


def test_bare_names_select_inside_ddp(one_rank_group: None) -> None:
    torch.manual_seed(0)
    ddp = DDP(small_cnn(num_classes=10))
    plan = freezedsl.plan(ddp, "freeze features; unfreeze classifier")
    assert plan.wrapper == "DistributedDataParallel"
    assert plan.warnings and "DistributedDataParallel" in plan.warnings[0]
    assert "freeze before wrapping: DDP records which parameters need gradients" in plan.warnings[0]
    assert set(plan.trainable) == {"classifier.weight", "classifier.bias"}
    assert not any(n.startswith("module.") for n in plan.trainable + plan.frozen)
    # plan() is pure: nothing changed on the wrapped model.
    assert all(p.requires_grad for p in ddp.parameters())


def test_plain_model_plan_has_no_wrapper_warning() -> None:
    plan = freezedsl.plan(small_cnn(num_classes=10), "freeze features")
    assert plan.wrapper is None
    assert not any("wrapped" in w for w in plan.warnings)


def test_manifest_from_ddp_model_fits_the_bare_model(one_rank_group: None) -> None:
    torch.manual_seed(0)
    model = small_cnn(num_classes=10)
    freezedsl.apply(model, "freeze features; unfreeze classifier")
    ddp = DDP(model)
    manifest = make_manifest(ddp, rules_text="freeze features; unfreeze classifier")
    assert all(not n.startswith("module.") for n in manifest["requires_grad"])
    assert manifest["trainable_count"] == 2

    fresh = small_cnn(num_classes=10)  # e.g. rebuilt on resume, before wrapping
    apply_manifest(fresh, manifest)
    assert {n for n, p in fresh.named_parameters() if p.requires_grad} == {
        "classifier.weight",
        "classifier.bias",
    }
