"""Child-process entry of ``freezedsl lint train.py ...``; not a public API.

``python -m freezedsl.lint._bootstrap --result FILE --steps N -- script args...`` runs
the script as ``__main__`` (its own ``sys.argv``, ``sys.path[0]``, exit code and crash)
with two hooks: ``Optimizer.__init__`` records every optimizer and a global step
pre-hook runs :func:`freezedsl.lint.runtime.check` right before the first
``optimizer.step()``. With ``--steps N`` the frozen parameters are copied there and
compared after N steps of that optimizer. Then the results are written as JSON and the
process ends with ``os._exit`` (no training beyond what was asked).

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
import traceback
import types
import weakref
from collections.abc import Callable, Sequence
from typing import Any

_OPTIM_MODULE = "torch.optim.optimizer"
# Frozen parameters copied for --steps are capped here (CPU memory).
SNAPSHOT_BUDGET_BYTES = 2 << 30


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
        self.snapshot: dict[str, Any] | None = None
        self.diagnostics: list[dict[str, Any]] = []
        self.models: list[str] = []
        self.optimizer_names: list[str] = []
        self.notes: list[str] = []

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
        """Write the final result and end the process now, without running more training."""
        self.write(final=True, exit_code=None, stopped=True, crashed=crashed)
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                if stream is not None:
                    stream.flush()
            except Exception:  # noqa: BLE001, S110 - a closed or odd stream must not block exit
                pass
        os._exit(0)

    # ------------------------------------------------------------------ hooks

    def track(self, opt: object) -> None:
        self.optimizers.append(weakref.ref(opt))

    def live_optimizers(self, stepping: object) -> list[Any]:
        out = [o for o in (r() for r in self.optimizers) if o is not None]
        if not any(o is stepping for o in out):
            out.insert(0, stepping)
        return out

    def pre_step(self, opt: Any, args: object, kwargs: object) -> None:
        if os.getpid() != self.pid:
            return
        depth = self.depth.get(id(opt), 0) + 1
        self.depth[id(opt)] = depth
        if depth > 1 or self.checked:  # a subclass's step() calling super().step()
            return
        self.checked = True
        try:
            self._first_step(opt)
        except Exception as exc:  # noqa: BLE001 - our bug must not look like the script's
            traceback.print_exc()
            self.stop(crashed=f"freezedsl internal error: {_one_line(exc, None)}")
        if self.steps <= 0:
            self.stop()
        # Progress for the parent in case the run is cut short during the N steps.
        self.write(final=False, exit_code=None, stopped=False, crashed=None)

    def post_step(self, opt: Any, args: object, kwargs: object) -> None:
        if os.getpid() != self.pid:
            return
        depth = self.depth.get(id(opt), 1) - 1
        self.depth[id(opt)] = depth
        if depth > 0 or id(opt) != self.primary:
            return
        self.done_steps += 1
        if self.done_steps < self.steps:
            self.write(final=False, exit_code=None, stopped=False, crashed=None)
        else:
            try:
                self.compare()
            except Exception as exc:  # noqa: BLE001
                traceback.print_exc()
                self.stop(crashed=f"freezedsl internal error: {_one_line(exc, None)}")
            self.stop()

    def _first_step(self, opt: Any) -> None:
        from freezedsl.lint import runtime

        opts = self.live_optimizers(opt)
        models = find_models(opts)
        self.optimizer_names = [runtime.describe_optimizer(o) for o in opts]
        self.models = [runtime.describe_model(m) for m in models]
        found = runtime.check(models, opts, path=self.script)
        self.diagnostics = [_to_json(d) for d in found]
        if self.steps > 0:
            self.primary = id(opt)
            self.snapshot = runtime.snapshot_frozen(models, budget_bytes=SNAPSHOT_BUDGET_BYTES)
            frozen = sum(1 for m in models for p in m.parameters() if not p.requires_grad)
            if len(self.snapshot) < frozen:
                self.notes.append(
                    f"only {len(self.snapshot)} of {frozen} frozen tensors were compared "
                    f"(copy budget {SNAPSHOT_BUDGET_BYTES >> 20} MiB)"
                )

    def compare(self) -> None:
        if self.snapshot is None:
            return
        from freezedsl.lint import runtime

        changed = runtime.frozen_changes(self.snapshot, steps=self.done_steps, path=self.script)
        self.diagnostics += [_to_json(d) for d in changed]
        self.snapshot = None


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
    modules = [o for o in gc.get_objects() if issubclass(type(o), nn.Module)]
    children = {id(c) for m in modules for c in m._modules.values() if c is not None}
    found: list[tuple[int, Any]] = []
    for m in modules:
        if id(m) in children:
            continue
        first = min((order[id(p)] for p in m.parameters() if id(p) in order), default=None)
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


# ---------------------------------------------------------------------- installing hooks


def _install(module: types.ModuleType, session: _Session) -> None:
    optimizer_cls = module.Optimizer
    original = optimizer_cls.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        session.track(self)

    optimizer_cls.__init__ = __init__
    module.register_optimizer_step_pre_hook(session.pre_step)
    module.register_optimizer_step_post_hook(session.post_step)


class _Watcher(importlib.abc.MetaPathFinder):
    """Installs the hooks right after ``torch.optim.optimizer`` has executed."""

    def __init__(self, on_load: Callable[[types.ModuleType], None]) -> None:
        self.on_load = on_load

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _OPTIM_MODULE:
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


def _arm(session: _Session) -> None:
    loaded = sys.modules.get(_OPTIM_MODULE)
    if loaded is not None:
        _install(loaded, session)
    else:
        sys.meta_path.insert(0, _Watcher(lambda m: _install(m, session)))


def _restore_environment() -> None:
    """Undo what the parent added so the script sees the environment it would have."""
    root = os.environ.pop("FREEZEDSL_BOOTSTRAP_ROOT", None)
    old = os.environ.pop("FREEZEDSL_BOOTSTRAP_PYTHONPATH", None)
    if root is None:
        return
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old
    # Keep freezedsl importable for the hooks, behind everything the script may import.
    if root in sys.path:
        sys.path.remove(root)
    if root not in sys.path:
        sys.path.append(root)


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
    _restore_environment()
    # If lint dies without cleaning up (SIGKILL), end the script's whole tree ourselves.
    from freezedsl.lint.supervise import watch_lifeline

    watch_lifeline()
    session.write(final=False, exit_code=None, stopped=False, crashed=None)
    _arm(session)

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
    if session.checked:
        session.compare()
    session.write(final=True, exit_code=exit_code, stopped=False, crashed=crashed)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
