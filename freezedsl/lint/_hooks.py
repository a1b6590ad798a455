"""Installing the lint hooks in the linted script's process: not a public API.

The optimizer hooks (``Optimizer.__init__`` and the global step pre-/post-hooks) and
the ``Accelerator.prepare`` recorder go in when the script itself imports
``torch.optim.optimizer`` / ``accelerate.accelerator`` (:class:`_Watcher`, an import
hook), so torch is never imported here and environment variables the script sets
before importing torch keep working. Used by :mod:`freezedsl.lint._bootstrap` (the
script's process) and :mod:`freezedsl.lint._workers` (each worker process).
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import sys
import traceback
import types
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from freezedsl.lint._session import _Session

_OPTIM_MODULE = "torch.optim.optimizer"
_ACCELERATE_MODULE = "accelerate.accelerator"


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
