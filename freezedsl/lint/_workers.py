"""Worker processes of a linted script: instrumented like the script's own process.

Spawned Python workers (``torch.multiprocessing.spawn``, ``multiprocessing`` with the
spawn start method, DataLoader workers started by spawn, ``subprocess`` running
``python``, torchrun) load a ``sitecustomize`` shim that the bootstrap puts on
``PYTHONPATH`` (:func:`_share_with_workers`); the shim calls :func:`arm_worker`, which
arms the hooks with a result file of the worker's own. A thread in the main process
(:func:`_watch_workers`) takes the first finished worker's result and ends the run.
Forked children become workers in :meth:`freezedsl.lint._session._Session.become_worker`.
Not a public API.

The shim imports this module by name in every child interpreter, so :func:`arm_worker`
must stay here. Besides the two modules above it imports only the standard library (no
argparse or runpy, which only the script's own process needs): each worker starts cheaply.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from freezedsl.lint._hooks import _arm
from freezedsl.lint._session import _Session

#: Names the run for child interpreters: JSON with the main result file, steps, script
#: and the directory that holds freezedsl (for a child that cannot import it otherwise).
WORKER_ENV = "FREEZEDSL_LINT_WORKER"

_SHIM = '''"""freezedsl lint: instrument this Python process as a worker of the linted script.

Written by freezedsl.lint._workers; loaded by every child interpreter through
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
        from freezedsl.lint._workers import arm_worker

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
