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

The parts: :mod:`freezedsl.lint._session` (what the hooks see and report),
:mod:`freezedsl.lint._hooks` (installing them), :mod:`freezedsl.lint._workers` (worker
processes); this module parses the arguments, runs the script and writes the final
result.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import traceback
from collections.abc import Sequence

from freezedsl.lint._hooks import _arm
from freezedsl.lint._session import _one_line, _Session
from freezedsl.lint._workers import _share_with_workers, _worker_results


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
