"""The lint runner: run the check families on the files, filter, merge runtime findings.

The checks themselves live elsewhere (``freezedsl.lint.static`` for Python,
``freezedsl.lint.rulefiles`` for ``.frz`` files, ``freezedsl.lint.instrument`` for a live
run); this module orchestrates a run: it loads the rule families, runs them on the files
that :mod:`freezedsl.lint.files` collects, keeps the findings whose codes are enabled
(:mod:`freezedsl.lint.selection`) and not suppressed (per-file-ignores,
:mod:`freezedsl.lint.noqa`), and returns a :class:`~freezedsl.lint.report.LintReport`.
Each file is checked with the settings of the nearest ``pyproject.toml`` above it
(:class:`~freezedsl.lint.config.ConfigResolver`). Providers are imported inside
functions so that importing this module (and static linting) never imports torch.

The names of those modules that callers used to import from here are re-exported.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from freezedsl.errors import FreezeError, UsageError
from freezedsl.lint import registry
from freezedsl.lint.config import ConfigResolver, LintConfig, all_codes
from freezedsl.lint.files import (
    SKIP_DIRS,
    SUFFIXES,
    as_resolver,
    collect_files,
    read_source,
)
from freezedsl.lint.noqa import Noqa, parse_noqa
from freezedsl.lint.registry import Diagnostic, Rule
from freezedsl.lint.report import LintReport, RunSummary, sort_key
from freezedsl.lint.selection import check_codes, is_known, matches_any, resolve_selection

__all__ = [
    "RULE_MODULES",
    "RUNTIME_RULE_MODULES",
    "SKIP_DIRS",
    "STATIC_RULE_MODULES",
    "LintReport",
    "Noqa",
    "RunSummary",
    "as_resolver",
    "check_codes",
    "collect_files",
    "lint_paths",
    "lint_script",
    "load_rules",
    "parse_noqa",
    "read_source",
    "resolve_selection",
]

_sort_key = sort_key  # the report order, under the name tests import from here

#: Modules that register rules at import time; missing ones are skipped. The runtime
#: families import torch, so static linting loads them only when a code needs them.
STATIC_RULE_MODULES = ("freezedsl.lint.rulefiles", "freezedsl.lint.static")
RUNTIME_RULE_MODULES = (
    "freezedsl.lint.runtime",
    "freezedsl.lint.peft_checks",  # also run by `lint --model` (rulefiles), which loads these
    "freezedsl.lint.instrument",
    "freezedsl.lint.cost",
)
RULE_MODULES = STATIC_RULE_MODULES + RUNTIME_RULE_MODULES

PythonChecker = Callable[[str, str], list[Diagnostic]]


class RuleChecker(Protocol):
    def __call__(self, path: str, text: str, model: object | None = None) -> list[Diagnostic]: ...


class RunResultLike(Protocol):
    """What ``freezedsl.lint.instrument.run_script`` returns."""

    diagnostics: list[Diagnostic]
    exit_code: int | None
    stopped_at_step: bool
    crashed: str | None
    models: list[str]
    optimizers: list[str]


# --------------------------------------------------------------------------- providers
# Thin lazy seams: the providers are written elsewhere and may import torch.


def _python_checker() -> PythonChecker:
    from freezedsl.lint.static import check_source

    return check_source


def _rule_checker() -> RuleChecker:
    from freezedsl.lint.rulefiles import check_source

    return check_source


def _script_runner() -> Callable[..., RunResultLike]:
    from freezedsl.lint.instrument import run_script

    return run_script


def _load_model(spec: str, arch: str | None, trust_pickle: bool, model_config: str | None = None) -> object:
    """The module for ``--model``; on the meta device, as checks only need names and shapes."""
    from freezedsl.loading import load_model

    loaded = load_model(spec, arch=arch, trust_pickle=trust_pickle, meta=True, config=model_config)
    return getattr(loaded, "module", loaded)


def _import_families(names: Iterable[str]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a missing dependency inside the module is a real error
                raise


def load_rules(*, runtime: bool = True, needed: Iterable[str] = ()) -> Mapping[str, Rule]:
    """Import the rule families so that ``registry.RULES`` is complete, and return it.

    With ``runtime=False`` the torch-importing runtime families are skipped unless one
    of the ``needed`` code prefixes is not known without them.
    """
    _import_families(STATIC_RULE_MODULES)
    if runtime or not all(is_known(code, registry.RULES) for code in needed):
        _import_families(RUNTIME_RULE_MODULES)
    return registry.RULES


# --------------------------------------------------------------------------- filtering


class _Filter:
    """Applies selection, per-file-ignores and noqa, reading sources on demand.

    Each finding is judged by the settings of its file (``resolver``); findings without
    a file by the base settings. The enabled set is computed once per settings file.
    """

    def __init__(
        self, resolver: ConfigResolver, rules: Mapping[str, Rule], report: LintReport
    ) -> None:
        self.resolver = resolver
        self.rules = rules
        self.report = report
        self._noqa: dict[str, Noqa] = {}
        self._enabled: dict[int, tuple[LintConfig, frozenset[str]]] = {}

    def config_for(self, path: str | None) -> LintConfig:
        return self.resolver.for_path(path) if path else self.resolver.base

    def enabled(self, config: LintConfig) -> frozenset[str]:
        """Codes ``config`` enables; a nested settings file may name a runtime code, so
        its families are loaded when the registry does not know one of its codes yet."""
        hit = self._enabled.get(id(config))
        if hit is None or hit[0] is not config:
            if self.rules is registry.RULES:
                load_rules(runtime=False, needed=[code for _, code in all_codes(config)])
            hit = (config, resolve_selection(config, self.rules))
            self._enabled[id(config)] = hit
        return hit[1]

    def noqa_for(self, path: str) -> Noqa:
        if path not in self._noqa:
            text = self.report.sources.get(path)
            if text is None and path.endswith(SUFFIXES) and os.path.isfile(path):
                try:
                    text = read_source(path)
                    self.report.sources[path] = text
                except (OSError, UnicodeDecodeError, SyntaxError, FreezeError):
                    text = None
            self._noqa[path] = parse_noqa(text) if text is not None else Noqa()
        return self._noqa[path]

    def keep(self, d: Diagnostic) -> bool:
        config = self.config_for(d.path)
        if d.code not in self.enabled(config):
            return False
        if d.path and (
            matches_any(d.code, config.ignored_for(d.path)) or self.noqa_for(d.path).suppresses(d)
        ):
            self.report.suppressed += 1
            return False
        return True

    def add(self, diagnostics: Iterable[Diagnostic]) -> None:
        have = set(self.report.diagnostics)
        for d in diagnostics:
            if d not in have and self.keep(d):
                have.add(d)
                self.report.diagnostics.append(d)
        self.report.diagnostics.sort(key=sort_key)


def lint_paths(
    paths: Sequence[str],
    config: LintConfig | ConfigResolver | None = None,
    *,
    model: str | None = None,
    arch: str | None = None,
    trust_pickle: bool = False,
    rules: Mapping[str, Rule] | None = None,
    model_config: str | None = None,
) -> LintReport:
    """Statically lint files and directories.

    ``config`` is one :class:`LintConfig` for every file, or a
    :class:`~freezedsl.lint.config.ConfigResolver` that gives each file the settings of
    the nearest ``pyproject.toml`` above it (what ``freezedsl lint`` passes).
    ``model`` is a model spec (``arch`` for a state dict file) for ``.frz`` checks that
    need the real parameter names (``model_config``: the config.json of a ``.safetensors``
    model, see :func:`freezedsl.loading.load_model`); it is loaded (importing torch) only when given and a
    ``.frz`` file is linted.
    Raises :class:`~freezedsl.errors.FreezeError` for bad paths or settings.
    """
    resolver = as_resolver(config)
    if rules is None:  # with a model, FZ350/FZ351 run on the planned state: runtime codes too
        rules = load_rules(runtime=model is not None, needed=[c for _, c in all_codes(resolver.base)])
    report = LintReport()
    filt = _Filter(resolver, rules, report)
    filt.enabled(resolver.base)  # bad codes in the base settings fail before any work
    files = collect_files(paths if paths else ["."], resolver)
    loaded_model: object | None = None
    for path in files:
        try:
            text = read_source(path)
        except FreezeError as exc:  # a rule file over the size limit, not UTF-8, ...
            report.errors.append(exc.one_line())
            continue
        except (OSError, UnicodeDecodeError, SyntaxError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            report.errors.append(f"{path}: cannot read file: {reason}")
            continue
        report.sources[path] = text
        report.files.append(path)
        noqa = filt.noqa_for(path)
        if noqa.file_all or not filt.enabled(filt.config_for(path)):
            continue  # nothing could survive; skip the work
        if path.endswith(".frz") and model is not None and loaded_model is None:
            extra = (model_config,) if model_config is not None else ()
            loaded_model = _load_model(model, arch, trust_pickle, *extra)
        filt.add(_check_file(path, text, loaded_model))
    return report


def _check_file(path: str, text: str, model: object | None) -> list[Diagnostic]:
    """Run the provider for one file; a provider bug names the file it choked on."""
    try:
        if path.endswith(".py"):
            return list(_python_checker()(path, text))
        return list(_rule_checker()(path, text, model))
    except FreezeError:
        raise
    except Exception as exc:
        raise RuntimeError(f"checking {path} failed: {type(exc).__name__}: {exc}") from exc


def _relative_to_cwd(d: Diagnostic) -> Diagnostic:
    """Show runtime findings (often reported with absolute paths) like static ones."""
    if not d.path or not os.path.isabs(d.path):
        return d
    try:
        rel = Path(d.path).resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return d
    return dataclasses.replace(d, path=str(rel))


def lint_script(
    script: str,
    args: Sequence[str],
    config: LintConfig | ConfigResolver | None = None,
    *,
    steps: int | None = None,
    timeout: float = 600.0,
    rules: Mapping[str, Rule] | None = None,
) -> LintReport:
    """Lint ``script`` statically, then run it with ``args`` and merge the runtime findings.

    ``steps`` defaults to the ``steps`` setting that applies to the script. A script
    failure is recorded in ``report.run`` (see :meth:`RunSummary.failure`), not raised.
    """
    resolver = as_resolver(config)
    rules = load_rules() if rules is None else rules
    if not os.path.isfile(script):
        raise UsageError(f"{script}: no such file")
    report = lint_paths([script], resolver, rules=rules)
    own = resolver.for_path(script)
    result = _script_runner()(
        script, list(args), steps=own.steps if steps is None else steps, timeout=timeout
    )
    filt = _Filter(resolver, rules, report)
    filt.add(_relative_to_cwd(d) for d in result.diagnostics)
    report.run = RunSummary(
        script=script,
        args=tuple(args),
        exit_code=result.exit_code,
        stopped_at_step=result.stopped_at_step,
        crashed=result.crashed,
        models=tuple(result.models),
        optimizers=tuple(result.optimizers),
        timed_out=bool(getattr(result, "timed_out", False)),
        steps=own.steps if steps is None else steps,
    )
    return report
