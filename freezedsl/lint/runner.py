"""The lint runner: collect files, run the check families, filter, merge runtime findings.

The checks themselves live elsewhere (``freezedsl.lint.static`` for Python,
``freezedsl.lint.rulefiles`` for ``.frz`` files, ``freezedsl.lint.instrument`` for a live
run); this module only decides *which* files and *which* codes, applies ``# noqa`` and
settings, and returns a :class:`LintReport`. Providers are imported inside functions so
that importing this module (and static linting) never imports torch.

Selection semantics (order-independent): a code is enabled when the *longest* prefix
that matches it comes from ``select``/``extend-select``; on a tie ``ignore`` wins;
``ALL`` is the shortest prefix of all. The command-line codes are a second layer on top
(:class:`~freezedsl.lint.config.CodeOverrides`, as in ruff). Code prefixes that match no
registered rule are errors, so a typo never silently disables nothing. Each file is
checked with the settings of the nearest ``pyproject.toml`` above it
(:class:`~freezedsl.lint.config.ConfigResolver`).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import io
import os
import re
import tokenize
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from freezedsl.errors import FreezeError, UsageError
from freezedsl.fsutil import unreadable_reason
from freezedsl.lint import registry
from freezedsl.lint.config import ConfigResolver, LintConfig, all_codes
from freezedsl.lint.registry import Diagnostic, Rule, Severity

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
    "resolve_selection",
]

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

#: Directory names never entered while walking a directory.
SKIP_DIRS = frozenset({".venv", "venv", "__pycache__", "build", "dist", "node_modules", ".git"})

SUFFIXES = (".py", ".frz")

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
    if runtime or not all(_is_known(code, registry.RULES) for code in needed):
        _import_families(RUNTIME_RULE_MODULES)
    return registry.RULES


def _is_known(code: str, known: Iterable[str]) -> bool:
    return code == "ALL" or any(k.startswith(code) for k in known)


# --------------------------------------------------------------------------- selection


def check_codes(codes: Iterable[str], known: Iterable[str], origin: str) -> None:
    """Raise :class:`UsageError` naming the first prefix that matches no known code."""
    known = sorted(known)
    for code in codes:
        if _is_known(code, known):
            continue
        hint = difflib.get_close_matches(code, known, n=1)
        more = f"; did you mean {hint[0]}?" if hint else ""
        raise UsageError(f"{origin}: unknown rule code {code!r}{more}")


def resolve_selection(config: LintConfig, known: Iterable[str]) -> frozenset[str]:
    """The set of enabled codes (see the module docstring for the precedence)."""
    known = list(known)
    for origin, code in all_codes(config):
        check_codes([code], known, origin)
    enable = list(config.select if config.select is not None else ("ALL",))
    enable += config.extend_select
    disable = list(config.ignore) + list(config.extend_ignore)
    cli = config.cli
    if cli.select is not None:  # the command line's selection is the new basis
        enable, disable = [*cli.select, *cli.extend_select], list(cli.ignore)
        return frozenset(c for c in known if _decide(c, enable, disable))
    adjust = [*cli.extend_select, *cli.ignore]
    return frozenset(
        c
        for c in known
        if (
            _decide(c, cli.extend_select, cli.ignore)
            if _matches_any(c, adjust)
            else _decide(c, enable, disable)
        )
    )


def _prefix_len(code: str, prefixes: Iterable[str]) -> int:
    """Length of the longest prefix matching ``code``; ALL counts 0, no match -1."""
    best = -1
    for p in prefixes:
        if p == "ALL":
            best = max(best, 0)
        elif code.startswith(p):
            best = max(best, len(p))
    return best


def _decide(code: str, enable: Sequence[str], disable: Sequence[str]) -> bool:
    on = _prefix_len(code, enable)
    return on >= 0 and on > _prefix_len(code, disable)


def _matches_any(code: str, prefixes: Iterable[str]) -> bool:
    return _prefix_len(code, prefixes) >= 0


# --------------------------------------------------------------------------- noqa

_LINE_NOQA = re.compile(r"#\s*noqa\b(?P<colon>\s*:)?(?P<rest>.*)", re.IGNORECASE)
_FILE_NOQA = re.compile(
    r"^\s*#\s*freezedsl\s*:\s*noqa\b(?P<colon>\s*:)?(?P<rest>.*)$", re.IGNORECASE
)
_NOQA_CODE = re.compile(r"[A-Za-z]+[0-9]+")


def _noqa_codes(rest: str) -> tuple[str, ...]:
    """Leading codes of ``rest`` (separated by commas/spaces), upper-cased (``fz204`` is
    ``FZ204``: a case slip must not silently keep a finding); stops at other text."""
    codes: list[str] = []
    for token in re.split(r"[,\s]+", rest.strip()):
        if not _NOQA_CODE.fullmatch(token):
            break
        codes.append(token.upper())
    return tuple(codes)


@dataclass(frozen=True)
class Noqa:
    """Suppressions found in one file.

    ``lines`` maps a 1-based line to the code prefixes it suppresses (``None`` = all);
    ``file_all`` is a bare file-level directive; ``file_codes`` the file-level prefixes.
    """

    lines: Mapping[int, tuple[str, ...] | None] = field(default_factory=dict)
    file_all: bool = False
    file_codes: tuple[str, ...] = ()

    def suppresses(self, d: Diagnostic) -> bool:
        if self.file_all or _matches_any(d.code, self.file_codes):
            return True
        if d.line is None or d.line not in self.lines:
            return False
        codes = self.lines[d.line]
        return codes is None or _matches_any(d.code, codes)


def parse_noqa(text: str) -> Noqa:
    """Find ``# noqa`` / ``# noqa: CODES`` comments and ``# freezedsl: noqa[: CODES]`` lines.

    A code list that does not parse (``# noqa: FZ-204``) suppresses nothing rather than
    everything, so a typo cannot hide all findings of a line.
    """
    lines: dict[int, tuple[str, ...] | None] = {}
    file_all = False
    file_codes: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if "noqa" not in line.lower():
            continue
        m = _FILE_NOQA.match(line)
        if m:
            if not m.group("colon"):
                file_all = True
            else:
                file_codes.extend(_noqa_codes(m.group("rest")))
            continue
        m = _LINE_NOQA.search(line)
        if m:
            if not m.group("colon"):
                lines[number] = None
            elif codes := _noqa_codes(m.group("rest")):
                lines[number] = codes
    return Noqa(lines, file_all, tuple(file_codes))


# --------------------------------------------------------------------------- files


def as_resolver(config: LintConfig | ConfigResolver | None) -> ConfigResolver:
    """A plain :class:`LintConfig` (or ``None``: the defaults) applies to every file."""
    if isinstance(config, ConfigResolver):
        return config
    return ConfigResolver(config or LintConfig(), fixed=True)


def collect_files(paths: Sequence[str], config: LintConfig | ConfigResolver) -> list[str]:
    """Files to lint, in a stable order, each once.

    Directories are walked for ``*.py``/``*.frz``, skipping hidden directories and
    :data:`SKIP_DIRS`. ``exclude`` applies to walked and explicitly named files alike
    (pre-commit names files explicitly), each path judged by the settings that apply to
    it (a folder by its own ``pyproject.toml`` if it has one, as ruff does). Named files
    must be ``.py`` or ``.frz``.
    """
    resolver = as_resolver(config)
    out: list[str] = []
    seen: set[str] = set()

    def excluded(path: str) -> bool:
        return resolver.for_path(path).is_excluded(path)

    def add(path: str) -> None:
        key = os.path.normcase(os.path.abspath(path))
        if key not in seen and not excluded(path):
            seen.add(key)
            out.append(path)

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            if excluded(raw) and raw not in (".", ""):
                continue
            found: list[str] = []
            tree = os.path.realpath(raw)
            for folder, dirs, files in os.walk(raw):
                dirs[:] = sorted(
                    d
                    for d in dirs
                    if not d.startswith(".")
                    and d not in SKIP_DIRS
                    and not excluded(os.path.join(folder, d))
                )
                found.extend(
                    os.path.join(folder, f)
                    for f in files
                    if f.endswith(SUFFIXES) and _inside(os.path.join(folder, f), tree)
                )
            for f in sorted(found):
                add(_tidy(f))
        elif unreadable_reason(raw):
            raise UsageError(f"{raw}: {unreadable_reason(raw)}; pass a .py or .frz file")
        elif path.is_file():
            if not raw.endswith(SUFFIXES):
                raise UsageError(f"{raw}: unsupported file type (expected .py or .frz)")
            add(raw)
        else:
            raise UsageError(f"{raw}: no such file or directory")
    return out


def _inside(path: str, tree: str) -> bool:
    """A walked file is linted only if it is a regular file that stays in the tree: a
    symlink out of it (to /proc/self/environ, say) is skipped; name it to lint it."""
    real = os.path.realpath(path)
    return (real == tree or real.startswith(tree.rstrip(os.sep) + os.sep)) and unreadable_reason(
        path
    ) is None


def _tidy(path: str) -> str:
    """Drop a leading ``./`` that walking ``.`` adds."""
    return path.removeprefix("." + os.sep)


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class RunSummary:
    """What happened when the script ran (for the report and the exit code)."""

    script: str
    args: tuple[str, ...]
    exit_code: int | None
    stopped_at_step: bool
    crashed: str | None
    models: tuple[str, ...]
    optimizers: tuple[str, ...]
    timed_out: bool = False  # stopped at --timeout: never described as "finished"
    steps: int = 0  # the --steps asked for; 0: stopped at the first optimizer.step()

    def failure(self) -> str | None:
        """One line if the script failed on its own; ``None`` if it ran fine or we stopped it.

        ``exit_code`` ``None`` means freezedsl stopped it (after ``--steps`` or at the
        timeout, which the runtime checks report as a finding of their own).
        """
        if self.stopped_at_step:
            return None
        if self.crashed:
            return f"{self.script} crashed: {self.crashed}"
        if self.exit_code is not None and self.exit_code != 0:
            return f"{self.script} exited with code {self.exit_code}"
        return None


@dataclass
class LintReport:
    """Findings after filtering, plus what was checked and what went wrong."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    suppressed: int = 0
    errors: list[str] = field(default_factory=list)  # files that could not be checked
    run: RunSummary | None = None
    sources: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def error_count(self) -> int:
        return sum(d.severity is Severity.ERROR for d in self.diagnostics)

    @property
    def warning_count(self) -> int:
        return len(self.diagnostics) - self.error_count

    def statistics(self) -> list[tuple[str, int]]:
        """``(code, count)`` by descending count, then code."""
        counts = Counter(d.code for d in self.diagnostics)
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))

    def exit_code(self, *, exit_zero: bool = False) -> int:
        """2 if a file could not be checked, 1 for findings or a failed script run, else 0.

        ``exit_zero`` silences findings only: a crashed script still fails the run.
        """
        if self.errors:
            return 2
        if self.run is not None and self.run.failure():
            return 1
        if self.diagnostics and not exit_zero:
            return 1
        return 0


def _sort_key(d: Diagnostic) -> tuple[Any, ...]:
    return (
        not d.path,
        d.path,
        d.line is None,
        d.line or 0,
        d.col or 0,
        d.code,
        d.obj or "",
        d.message,
    )


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
            _matches_any(d.code, config.ignored_for(d.path)) or self.noqa_for(d.path).suppresses(d)
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
        self.report.diagnostics.sort(key=_sort_key)


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


def read_source(path: str) -> str:
    """The text of a file to lint, decoded the way its interpreter reads it.

    Python files honour a UTF-8 BOM and a PEP 263 coding declaration (``# -*- coding:
    latin-1 -*-``), as ``python`` does (``tokenize.detect_encoding``); a BOM used to be a
    false FZ002 and a latin-1 declaration an unreadable file. Rule files are UTF-8,
    read by :func:`freezedsl.syntax.parser.read_rules` (its size limit, BOM and one-line
    errors, a :class:`~freezedsl.errors.FreezeError`). Raises ``OSError``,
    ``UnicodeDecodeError`` or ``SyntaxError`` (an unknown encoding in the declaration).
    """
    if not path.endswith(".py"):
        from freezedsl.syntax.parser import read_rules

        return read_rules(path)
    with open(path, "rb") as fh:
        data = fh.read()
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding).removeprefix("\ufeff")


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
