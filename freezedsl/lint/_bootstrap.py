"""Child-process entry of ``freezedsl lint train.py ...``; not a public API.

``python -m freezedsl.lint._bootstrap --result FILE --steps N -- script args...`` runs
the script as ``__main__`` (its own ``sys.argv``, ``sys.path[0]``, exit code and crash)
with two hooks: ``Optimizer.__init__`` records every optimizer and a global step
pre-hook runs :func:`freezedsl.lint.runtime.check` right before the first
``optimizer.step()``. Until that first step, the same check also runs right after each
optimizer is built: its findings stand when no step follows (the script ends, or is
stopped at the timeout, before training starts) and the first step's check replaces
them otherwise. With ``--steps N`` the frozen parameters are copied there and
compared after N steps of that optimizer. Then the results are written as JSON and the
process ends with ``os._exit`` (no training beyond what was asked).

Spawned Python workers (``torch.multiprocessing.spawn``, ``multiprocessing`` with the
spawn start method, ``subprocess`` running ``python``, launchers like torchrun) are
instrumented too: the bootstrap puts a ``sitecustomize`` shim on ``PYTHONPATH`` and names
the run in ``FREEZEDSL_LINT_WORKER``; each child interpreter loads the shim, which arms
the same hooks with its own result file (``RESULT.worker-PID.json``). A worker that
reaches its first step (or its N steps) writes its result and waits; a thread in the
main process merges the first finished worker's result into its own and ends the run,
and lint then ends every process of it. A forked child that steps becomes a worker the
same way. A child started with ``python -I``/``-E``/``-S``, with a cleared environment
or another interpreter does not load the shim and is not instrumented.

torch is not imported here: the hooks are installed when the script itself imports
``torch.optim.optimizer``, so environment variables the script sets before importing
torch keep working. Only the standard library is used until the first step.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib.abc
import importlib.machinery
import json
import os
import runpy
import sys
import threading
import time
import traceback
import types
import weakref
from collections.abc import Callable, Sequence
from typing import Any

_OPTIM_MODULE = "torch.optim.optimizer"
_ACCELERATE_MODULE = "accelerate.accelerator"
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


# ---------------------------------------------------------------------- workers

#: Names the run for child interpreters: JSON with the main result file, steps, script
#: and the directory that holds freezedsl (for a child that cannot import it otherwise).
WORKER_ENV = "FREEZEDSL_LINT_WORKER"

_SHIM = '''"""freezedsl lint: instrument this Python process as a worker of the linted script.

Written by freezedsl.lint._bootstrap; loaded by every child interpreter through
PYTHONPATH while ``freezedsl lint SCRIPT`` runs. It then loads the sitecustomize module
it shadows, if there is one.
"""
import os as _os
import sys as _sys


def _freezedsl_lint_worker():
    raw = _os.environ.get("FREEZEDSL_LINT_WORKER")
    if not raw:
        return
    try:
        import json

        cfg = json.loads(raw)
        if cfg.get("root") and cfg["root"] not in _sys.path:
            _sys.path.append(cfg["root"])
        from freezedsl.lint._bootstrap import arm_worker

        arm_worker(cfg)
    except Exception as exc:  # never break the worker itself
        _sys.stderr.write(
            f"freezedsl lint: this worker process is not instrumented: {type(exc).__name__}: {exc}\\n"
        )


def _chain():
    import importlib.machinery
    import importlib.util

    here = _os.path.dirname(_os.path.abspath(__file__))
    path = [p for p in _sys.path if _os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


_freezedsl_lint_worker()
_chain()
'''


def arm_worker(cfg: dict[str, Any]) -> None:
    """In a child interpreter (through the shim): arm the hooks with a result file of its own."""
    result = f"{cfg['result']}.worker-{os.getpid()}.json"
    session = _Session(result, int(cfg.get("steps", 0)), str(cfg.get("script", "")))
    session.worker = True
    _arm(session)


def _share_with_workers(session: _Session, root: str | None) -> None:
    """Let child interpreters instrument themselves, and watch for their results."""
    shim = os.path.join(os.path.dirname(os.path.abspath(session.result)), "shim")
    os.makedirs(shim, exist_ok=True)
    with open(os.path.join(shim, "sitecustomize.py"), "w", encoding="utf-8") as fh:
        fh.write(_SHIM)
    os.environ[WORKER_ENV] = json.dumps(
        {"result": session.result, "steps": session.steps, "script": session.script, "root": root}
    )
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = shim + (os.pathsep + old if old else "")
    threading.Thread(
        target=_watch_workers, args=(session,), name="freezedsl-workers", daemon=True
    ).start()


def _worker_results(session: _Session) -> list[dict[str, Any]]:
    """The workers' result files (finished first, then by name)."""
    folder = os.path.dirname(os.path.abspath(session.result))
    prefix = os.path.basename(session.result) + ".worker-"
    found: list[dict[str, Any]] = []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return found
    for name in names:
        if name.startswith(prefix) and name.endswith(".json"):
            try:
                with open(os.path.join(folder, name), encoding="utf-8") as fh:
                    raw = json.load(fh)
            except (OSError, ValueError):
                continue
            if isinstance(raw, dict) and raw.get("checked"):
                found.append(raw)
    found.sort(key=lambda raw: not raw.get("final"))
    return found


def _watch_workers(session: _Session) -> None:
    """Main process: end the run when a worker has finished its checks.

    Progress of a worker (its first step passed, steps still running) is copied into the
    main result, so a timeout reports how far the checks got.
    """
    copied = False
    while True:
        time.sleep(0.1)
        if session.checked:  # the main process trains itself: its own hooks decide
            return
        results = _worker_results(session)
        if not results:
            continue
        first = results[0]
        if first.get("final"):
            session.merge(first)
            session.stop(crashed=first.get("crashed"))
        if not copied:
            with session.lock:
                session.merge(first)
                session.checked = False  # still the main process's own first step to come
                payload = dict(first, final=False, checked=True)
                _write_json(session.result, payload)
            copied = True


def _write_json(path: str, payload: dict[str, Any]) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, default=str)
    os.replace(tmp, path)


# ---------------------------------------------------------------------- installing hooks


def _install(module: types.ModuleType, session: _Session) -> None:
    optimizer_cls = module.Optimizer
    original = optimizer_cls.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        session.track(self)
        session.on_built(self)

    optimizer_cls.__init__ = __init__
    module.register_optimizer_step_pre_hook(session.pre_step)
    module.register_optimizer_step_post_hook(session.post_step)


class _Watcher(importlib.abc.MetaPathFinder):
    """Installs the hooks right after ``torch.optim.optimizer`` has executed."""

    def __init__(self, fullname: str, on_load: Callable[[types.ModuleType], None]) -> None:
        self.fullname = fullname
        self.on_load = on_load

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.fullname:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        loader = spec.loader if spec is not None else None
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module
        on_load = self.on_load

        def exec_module(module: types.ModuleType) -> None:
            run(module)
            on_load(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _install_accelerate(module: types.ModuleType, session: _Session) -> None:
    """Record what each model looks like when ``Accelerator.prepare`` wraps it (FZ314)."""
    accelerator = getattr(module, "Accelerator", None)
    original = getattr(accelerator, "prepare", None)
    if accelerator is None or original is None:
        return

    @functools.wraps(original)
    def prepare(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            from torch import nn

            from freezedsl.lint.runtime.distributed import requires_grad_at

            for arg in (*args, *kwargs.values()):
                if isinstance(arg, nn.Module):
                    session.prepared.append((weakref.ref(arg), requires_grad_at(arg)))
        except Exception:  # noqa: BLE001 - never break the script's prepare()
            traceback.print_exc()
        return original(self, *args, **kwargs)

    accelerator.prepare = prepare


def _arm(session: _Session) -> None:
    for name, install in (
        (_OPTIM_MODULE, _install),
        (_ACCELERATE_MODULE, _install_accelerate),
    ):
        loaded = sys.modules.get(name)
        if loaded is not None:
            install(loaded, session)
        else:
            sys.meta_path.insert(
                0, _Watcher(name, functools.partial(lambda i, m: i(m, session), install))
            )


def _restore_environment() -> str | None:
    """Undo what the parent added so the script sees the environment it would have.

    Returns the directory that holds freezedsl, as the parent put it on the path.
    """
    root = os.environ.pop("FREEZEDSL_BOOTSTRAP_ROOT", None)
    old = os.environ.pop("FREEZEDSL_BOOTSTRAP_PYTHONPATH", None)
    if root is None:
        return None
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old
    # Keep freezedsl importable for the hooks, behind everything the script may import.
    if root in sys.path:
        sys.path.remove(root)
    if root not in sys.path:
        sys.path.append(root)
    return root


def _print_traceback(exc: BaseException) -> None:
    """Print the traceback as ``python script.py`` would: without runpy's and our frames."""
    tb = exc.__traceback__
    ours = {os.path.realpath(__file__), os.path.realpath(runpy.__file__), "<frozen runpy>"}
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name not in ours and os.path.realpath(name) not in ours:
            break
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb)


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # what Python does with sys.exit("message")
    return 1


def _parse(argv: Sequence[str]) -> tuple[str, int, str, list[str]]:
    """``--result FILE [--steps N] -- script args...``; everything after ``--`` is the script's."""
    if "--" not in argv:
        raise SystemExit(
            "usage: python -m freezedsl.lint._bootstrap --result FILE --steps N -- script args..."
        )
    cut = list(argv).index("--")
    parser = argparse.ArgumentParser(prog="freezedsl.lint._bootstrap")
    parser.add_argument("--result", required=True)
    parser.add_argument("--steps", type=int, default=0)
    ns = parser.parse_args(list(argv[:cut]))
    rest = list(argv[cut + 1 :])
    if not rest:
        raise SystemExit("freezedsl.lint._bootstrap: no script given after --")
    return ns.result, ns.steps, rest[0], rest[1:]


def main(argv: Sequence[str] | None = None) -> int:
    result, steps, script, args = _parse(sys.argv[1:] if argv is None else argv)
    session = _Session(result, steps, script)
    root = _restore_environment()
    # If lint dies without cleaning up (SIGKILL), end the script's whole tree ourselves.
    from freezedsl.lint.supervise import watch_lifeline

    watch_lifeline()
    session.write(final=False, exit_code=None, stopped=False, crashed=None)
    _arm(session)
    _share_with_workers(session, root)

    sys.argv = [script, *args]
    sys.path[0] = os.path.dirname(os.path.realpath(script))
    exit_code, crashed = 0, None
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        exit_code = _exit_code(exc)
    except KeyboardInterrupt as exc:
        _print_traceback(exc)
        exit_code, crashed = 130, _one_line(exc, script)
    except BaseException as exc:  # noqa: BLE001 - report the script's crash like Python would
        _print_traceback(exc)
        exit_code, crashed = 1, _one_line(exc, script)
        with session.lock:  # the traceback still holds the script's model and optimizer
            try:
                session.check_on_crash()
            except Exception:  # noqa: BLE001 - the script's crash stays the headline
                traceback.print_exc()
    with session.lock:
        if session.checked:
            session.compare()
        else:  # the training ran in workers (mp.spawn, torchrun...): report theirs
            for raw in _worker_results(session)[:1]:
                session.merge(raw)
        session.write(final=True, exit_code=exit_code, stopped=False, crashed=crashed)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
