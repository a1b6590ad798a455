"""What the lint hooks see in the linted script's process, and what they report.

Part of the child process of ``freezedsl lint train.py`` (:mod:`freezedsl.lint._bootstrap`
runs the script; :mod:`freezedsl.lint._hooks` calls into a :class:`_Session`;
:mod:`freezedsl.lint._workers` makes one in each worker process). A :class:`_Session`
tracks the optimizers the script builds, runs :func:`freezedsl.lint.runtime.check` when
one is built and right before the first ``optimizer.step()``, watches ``--steps N`` steps,
and writes the result file that :mod:`freezedsl.lint.instrument` reads. Not a public API.

Only the standard library is imported here: :mod:`freezedsl.lint.runtime` and torch are
imported inside the hooks, once the script has imported torch itself.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Sequence
from typing import Any

# Frozen parameters copied for --steps are capped here (CPU memory).
SNAPSHOT_BUDGET_BYTES = 2 << 30
# Optimizers checked as they are built before the first step (each check walks gc).
BUILT_CHECKS = 16


def _flush_all() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # noqa: BLE001, S110 - a closed or odd stream must not block exit
            pass


class _Session:
    """What the hooks have seen so far, and how to report it."""

    def __init__(self, result: str, steps: int, script: str) -> None:
        self.result = result
        self.steps = steps
        self.script = script
        self.pid = os.getpid()  # forked children (DataLoader workers) inherit the hooks
        self.optimizers: list[weakref.ref[Any]] = []
        self.depth: dict[int, int] = {}
        self.checked = False
        self.primary: int | None = None  # id() of the optimizer whose steps are counted
        self.done_steps = 0
        self.watch: Any = None  # runtime.StepWatch during the --steps window
        self.group_sizes: list[tuple[int, ...]] = []  # param groups when last checked
        self.stepped: set[int] = set()  # id() of optimizers checked at their first step
        # Models passed to accelerate's Accelerator.prepare and their requires_grad then.
        self.prepared: list[tuple[weakref.ref[Any], dict[int, bool]]] = []
        self.diagnostics: list[dict[str, Any]] = []
        self.models: list[str] = []
        self.optimizer_names: list[str] = []
        self.notes: list[str] = []
        self.built_checks = 0  # optimizers checked right after they were built
        self.worker = False  # a spawned or forked worker: report, then wait to be ended
        self.lock = threading.Lock()

    # ------------------------------------------------------------------ reporting

    def write(
        self, *, final: bool, exit_code: int | None, stopped: bool, crashed: str | None
    ) -> None:
        payload = {
            "final": final,
            "checked": self.checked,
            "steps_done": self.done_steps,
            "exit_code": exit_code,
            "stopped_at_step": stopped,
            "crashed": crashed,
            "models": self.models,
            "optimizers": self.optimizer_names,
            "notes": self.notes,
            "diagnostics": self.diagnostics,
        }
        tmp = f"{self.result}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, default=str)
        os.replace(tmp, self.result)

    def stop(self, crashed: str | None = None) -> None:
        """Write the final result and end the process now, without running more training.

        A worker does not exit (its launcher could restart it or fail the run): it waits
        until the main process has taken its result and lint ends the run.
        """
        with self.lock:
            self.write(final=True, exit_code=None, stopped=True, crashed=crashed)
        if self.worker:
            _flush_all()
            while True:
                time.sleep(3600)
        _flush_all()
        os._exit(0)

    def become_worker(self) -> None:
        """This process was forked from the one the session was made in, and steps."""
        base = self.result.split(".worker-")[0]
        self.pid = os.getpid()
        self.result = f"{base}.worker-{self.pid}.json"
        self.worker = True
        self.lock = threading.Lock()
        self.depth = {}
        self.checked, self.primary, self.done_steps, self.watch = False, None, 0, None

    def merge(self, other: dict[str, Any]) -> None:
        """Take a worker's findings as this run's (the main process did not step itself)."""
        self.checked = self.checked or bool(other.get("checked"))
        self.done_steps = max(self.done_steps, int(other.get("steps_done") or 0))
        self.diagnostics = list(other.get("diagnostics") or [])
        self.models = list(other.get("models") or [])
        self.optimizer_names = list(other.get("optimizers") or [])
        self.notes = list(other.get("notes") or [])

    # ------------------------------------------------------------------ hooks

    def track(self, opt: object) -> None:
        self.optimizers.append(weakref.ref(opt))

    def on_built(self, opt: Any) -> None:
        """Check the models right after ``opt`` is built, before any step: a script that
        ends (or is stopped) before training still gets its model and optimizer checked.
        Each build's check replaces the previous one (a GAN builds G's optimizer, then
        D's); the first step's check replaces it in turn, and so does the check when the
        script crashes, so only the latest state is ever reported."""
        if os.getpid() != self.pid or self.checked or self.worker:
            return
        self.built_checks += 1
        if self.built_checks > BUILT_CHECKS:  # optimizers built in a loop: stop checking
            if self.built_checks == BUILT_CHECKS + 1:
                with self.lock:
                    self.diagnostics, self.notes = [], []
            return
        from freezedsl.lint import runtime

        try:
            opts = [o for o in (r() for r in self.optimizers) if o is not None]
            models = find_models(opts)
            # every optimizer's frozen tensors count (no step picks one yet)
            found = runtime.check(models, opts, path=self.script)
            found += self.prepare_findings()
            with self.lock:
                self.optimizer_names = [runtime.describe_optimizer(o) for o in opts]
                self.models = [runtime.describe_model(m) for m in models]
                self.diagnostics = [_to_json(d) for d in found]
                self.notes = [_BUILT_NOTE]
                self.write(final=False, exit_code=None, stopped=False, crashed=None)
        except Exception:  # noqa: BLE001 - the script goes on; its first step checks again
            traceback.print_exc()

    def live_optimizers(self, stepping: object) -> list[Any]:
        out = [o for o in (r() for r in self.optimizers) if o is not None]
        if not any(o is stepping for o in out):
            out.insert(0, stepping)
        return out

    def pre_step(self, opt: Any, args: object, kwargs: object) -> None:
        if os.getpid() != self.pid:  # a forked child (fork-started DDP worker) trains
            self.become_worker()
        depth = self.depth.get(id(opt), 0) + 1
        self.depth[id(opt)] = depth
        if depth > 1:  # a subclass's step() calling super().step()
            return
        try:
            if not self.checked:
                self.checked = True
                self._first_step(opt)
                if self.steps <= 0:
                    self.stop()
                # Progress for the parent in case the run is cut short during the N steps.
                self.write(final=False, exit_code=None, stopped=False, crashed=None)
            elif self.watch is not None:
                self._recheck_if_groups_changed(opt)
            if self.watch is not None:
                self.watch.start(opt)
        except Exception as exc:  # noqa: BLE001 - our bug must not look like the script's
            traceback.print_exc()
            self.stop(crashed=f"freezedsl internal error: {_one_line(exc, None)}")

    def post_step(self, opt: Any, args: object, kwargs: object) -> None:
        if os.getpid() != self.pid:
            return
        depth = self.depth.get(id(opt), 1) - 1
        self.depth[id(opt)] = depth
        if depth > 0 or self.watch is None:
            return
        try:
            found = self.watch.finish(opt, self.done_steps + 1)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            self.stop(crashed=f"freezedsl internal error: {_one_line(exc, None)}")
        self.diagnostics += [_to_json(d) for d in found]
        if id(opt) != self.primary:
            return
        self.done_steps += 1
        if self.done_steps < self.steps:
            self.write(final=False, exit_code=None, stopped=False, crashed=None)
        else:
            self.compare()
            self.stop()

    def _first_step(self, opt: Any) -> None:
        from freezedsl.lint import runtime

        opts = self.live_optimizers(opt)
        models = find_models(opts)
        self.optimizer_names = [runtime.describe_optimizer(o) for o in opts]
        self.models = [runtime.describe_model(m) for m in models]
        found = runtime.check(models, opts, path=self.script, stepping=opt)
        found += self.prepare_findings()
        self.diagnostics = [_to_json(d) for d in found]  # replaces the build-time check
        self.notes = [n for n in self.notes if n != _BUILT_NOTE]
        self.group_sizes = _group_sizes(opts)
        self.stepped = {id(opt)}
        if self.steps > 0:
            self.primary = id(opt)
            self.watch = runtime.StepWatch(models, self.script, SNAPSHOT_BUDGET_BYTES)

    def _recheck_if_groups_changed(self, opt: Any) -> None:
        """Recheck when an optimizer steps for the first time or ``add_param_group``
        (gradual unfreezing) changed what the optimizers hold; new findings only."""
        from freezedsl.lint import runtime

        opts = self.live_optimizers(opt)
        sizes = _group_sizes(opts)
        if sizes == self.group_sizes and id(opt) in self.stepped:
            return
        self.group_sizes = sizes
        self.stepped.add(id(opt))
        models = find_models(opts)
        seen = {(d["code"], d["obj"]) for d in self.diagnostics}
        for d in runtime.check(models, opts, path=self.script, stepping=opt):
            if (d.code, d.obj) not in seen:
                seen.add((d.code, d.obj))
                self.diagnostics.append(_to_json(d))
        if len(opts) > len(self.optimizer_names):
            self.optimizer_names = [runtime.describe_optimizer(o) for o in opts]

    def prepare_findings(self) -> list[Any]:
        """FZ314 for prepared models whose requires_grad changed since prepare()."""
        from freezedsl.lint.runtime.distributed import changed_since_prepare

        out: list[Any] = []
        for ref, recorded in self.prepared:
            model = ref()
            if model is not None:
                out += changed_since_prepare(model, recorded, self.script)
        return out

    def check_on_crash(self) -> None:
        """The script crashed: check the optimizers it built.

        An all-frozen model crashes at ``backward()`` ("does not require grad"), which is
        exactly when FZ304/FZ305 explain why; the crash is reported too. Before the first
        step every check runs (and replaces the build-time check); after it, only those
        two (see :meth:`_crash_after_steps`).
        """
        opts = [o for o in (r() for r in self.optimizers) if o is not None]
        if not opts:
            return
        from freezedsl.lint import runtime

        if self.checked:
            self._crash_after_steps(opts)
            return
        models = find_models(opts)
        self.optimizer_names = [runtime.describe_optimizer(o) for o in opts]
        self.models = [runtime.describe_model(m) for m in models]
        found = runtime.check(models, opts, path=self.script) + self.prepare_findings()
        self.diagnostics = [_to_json(d) for d in found]  # replaces the build-time check
        self.checked = True
        self.notes = [n for n in self.notes if n != _BUILT_NOTE]
        self.notes.append("checked when the script crashed, before its first optimizer.step()")

    def _crash_after_steps(self, opts: list[Any]) -> None:
        """The script crashed after its first step (a second training phase whose model
        is all frozen fails at ``backward()``): FZ304/FZ305 about the models of the
        optimizers that never stepped are added, once each. Other codes are left out:
        mid-training states (a GAN's discriminator frozen while its generator steps) are
        not mistakes."""
        from freezedsl.lint import runtime

        fresh = [o for o in opts if id(o) not in self.stepped]
        if not fresh:
            return
        seen = {(d["code"], d["obj"]) for d in self.diagnostics}
        for d in runtime.check(find_models(fresh), fresh, path=self.script):
            if d.code in ("FZ304", "FZ305") and (d.code, d.obj) not in seen:
                seen.add((d.code, d.obj))
                self.diagnostics.append(_to_json(d))

    def compare(self) -> None:
        """End of the watch: a freeze after prepare() (FZ314); tensors not copied."""
        seen = {(d["code"], d["obj"]) for d in self.diagnostics}
        for d in self.prepare_findings():
            if (d.code, d.obj) not in seen:
                self.diagnostics.append(_to_json(d))
        if self.watch is not None and self.watch.skipped:
            self.notes.append(
                f"{self.watch.skipped} frozen tensor copies were skipped "
                f"(copy budget {SNAPSHOT_BUDGET_BYTES >> 20} MiB per step)"
            )
        self.watch = None


_BUILT_NOTE = "checked when the optimizer was built; the script made no optimizer.step()"


def _group_sizes(opts: Sequence[Any]) -> list[tuple[int, ...]]:
    return [tuple(len(g["params"]) for g in o.param_groups) for o in opts]


def _to_json(d: Any) -> dict[str, Any]:
    return {
        "code": d.code,
        "message": d.message,
        "path": d.path,
        "line": d.line,
        "col": d.col,
        "obj": d.obj,
        "severity": d.severity.value,
        "extra": dict(d.extra),
    }


def find_models(optimizers: Sequence[Any]) -> list[Any]:
    """Top-level live ``nn.Module`` objects that own the optimizers' parameters.

    A module counts as top-level when no other live module has it as a child; models
    are ordered by where their parameters first appear in the optimizers.
    """
    from torch import nn

    order: dict[int, int] = {}
    for opt in optimizers:
        for group in opt.param_groups:
            for p in group["params"]:
                order.setdefault(id(p), len(order))
    gc.collect()
    # type(), not isinstance(): lazy proxies in gc answer __class__ with warnings or errors.
    from freezedsl.lint.runtime import built

    # Half-built modules (their __init__ raised before nn.Module.__init__) are skipped.
    modules = [o for o in gc.get_objects() if issubclass(type(o), nn.Module) and built(o)]
    children = {id(c) for m in modules for c in m._modules.values() if c is not None}
    found: list[tuple[int, Any]] = []
    for m in modules:
        if id(m) in children:
            continue
        try:
            first = min((order[id(p)] for p in m.parameters() if id(p) in order), default=None)
        except Exception:  # noqa: BLE001 - parameters() raises: keep it, check() says FZ003
            first = len(order)
        if first is not None:
            found.append((first, m))
    found.sort(key=lambda t: t[0])
    return [m for _, m in found]


def _one_line(exc: BaseException, script: str | None) -> str:
    """``ValueError: bad config (train.py:12)``: the exception and where it was raised.

    The location is the innermost frame in the script's directory, else the innermost.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    where = frames[-1] if frames else None
    if script is not None:
        home = os.path.dirname(os.path.realpath(script))
        mine = [f for f in frames if os.path.realpath(f.filename).startswith(home + os.sep)]
        if mine:
            where = mine[-1]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if len(text) > 200:
        text = text[:197] + "..."
    out = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if where is not None:
        name = where.filename
        if not name.startswith("<"):
            name = os.path.relpath(name)
        out += f" ({name}:{where.lineno})"
    return out
