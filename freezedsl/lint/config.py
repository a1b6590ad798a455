"""Lint settings: the ``[tool.freezedsl]`` tables of ``pyproject.toml`` plus CLI overrides.

Settings are read once, validated strictly (a misspelt key silently doing nothing is
worse than an error) and merged with command-line options into one immutable
:class:`LintConfig`, so the result never depends on where options or file names stand
on the command line (pre-commit appends file names). Rule codes are only checked for
*shape* here; whether a code exists is decided by the runner once all rule families
have registered. This module must not import torch.
"""

from __future__ import annotations

import fnmatch
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from freezedsl.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib

__all__ = [
    "CONFIG_FILE",
    "LINT_KEYS",
    "SHARED_KEYS",
    "CodeOverrides",
    "ConfigError",
    "ConfigResolver",
    "LintConfig",
    "find_config_file",
    "load_config",
    "parse_codes",
    "path_matches",
]

CONFIG_FILE = "pyproject.toml"

#: Keys accepted in ``[tool.freezedsl.lint]`` (and, for brevity, in ``[tool.freezedsl]``).
LINT_KEYS = frozenset(
    {"select", "ignore", "extend-select", "extend-ignore", "exclude", "per-file-ignores", "steps"}
)

#: Other keys allowed directly in ``[tool.freezedsl]``: sub-tables and settings that
#: belong to other subcommands. Extend this when another subcommand grows settings,
#: otherwise the linter rejects them as unknown.
SHARED_KEYS: frozenset[str] = frozenset({"lint"})

_CODE_RE = re.compile(r"^(ALL|[A-Z]+[0-9]*)$")


class ConfigError(UsageError):
    """A settings file or option value is malformed; exit code 2."""


@dataclass(frozen=True)
class CodeOverrides:
    """The rule codes given on the command line: a layer resolved on top of the file's.

    As in ruff, ``--select`` (when given) is the new basis and the file's ``select``,
    ``ignore`` and ``extend-*`` no longer count; ``--extend-select`` and ``--ignore``
    (``--extend-ignore`` is the same option) adjust what the file enabled. Within this
    layer the longest prefix wins and ``ignore`` wins a tie, as within a file.
    """

    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.select is not None or bool(self.extend_select or self.ignore)


@dataclass(frozen=True)
class LintConfig:
    """Effective lint settings.

    ``select`` of ``None`` means "every registered rule". Globs in ``exclude`` and
    ``per_file_ignores`` are matched against paths relative to ``root`` (the directory of
    the settings file, or the current directory when there is none).
    """

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    extend_ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    steps: int = 0
    root: Path | None = None
    source: Path | None = field(default=None, compare=False)
    cli: CodeOverrides = CodeOverrides()

    def with_overrides(
        self,
        *,
        select: Sequence[str] | None = None,
        ignore: Sequence[str] | None = None,
        extend_select: Sequence[str] | None = None,
        extend_ignore: Sequence[str] | None = None,
        extend_exclude: Sequence[str] | None = None,
        steps: int | None = None,
    ) -> LintConfig:
        """Apply command-line options on top of file settings.

        The code options are kept as a layer of their own (:class:`CodeOverrides`,
        resolved after the file's selection, as ruff does): ``select`` replaces the
        basis, ``ignore``/``extend_ignore`` (the same thing) and ``extend_select``
        adjust it. ``extend_exclude`` adds to ``exclude``; ``steps`` replaces ``steps``.
        """
        cfg = self
        cli = cfg.cli
        if select is not None:
            cli = replace(cli, select=tuple(select))
        if extend_select:
            cli = replace(cli, extend_select=cli.extend_select + tuple(extend_select))
        for codes in (ignore, extend_ignore):
            if codes:
                cli = replace(cli, ignore=cli.ignore + tuple(codes))
        cfg = replace(cfg, cli=cli)
        if extend_exclude:
            cfg = replace(cfg, exclude=cfg.exclude + tuple(extend_exclude))
        if steps is not None:
            cfg = replace(cfg, steps=steps)
        return cfg

    def relative(self, path: str | os.PathLike[str]) -> str:
        """``path`` relative to :attr:`root` with forward slashes (as given if outside)."""
        root = (self.root or Path.cwd()).resolve()
        full = Path(os.path.abspath(path))
        try:
            return full.relative_to(root).as_posix()
        except ValueError:
            return Path(path).as_posix()

    def is_excluded(self, path: str | os.PathLike[str]) -> bool:
        rel = self.relative(path)
        return any(path_matches(pattern, rel) for pattern in self.exclude)

    def ignored_for(self, path: str | os.PathLike[str]) -> tuple[str, ...]:
        """Code prefixes that ``per-file-ignores`` switches off for ``path``."""
        rel = self.relative(path)
        out: list[str] = []
        for pattern, codes in self.per_file_ignores:
            if path_matches(pattern, rel):
                out.extend(codes)
        return tuple(out)


def path_matches(pattern: str, rel: str) -> bool:
    """gitignore-like glob match of a forward-slash relative path.

    A pattern with a ``/`` is matched against the whole path (``*`` crosses
    directories; a directory pattern also matches everything below it); a pattern
    without one is matched against every single path component, so ``tests`` excludes
    a directory anywhere and ``test_*.py`` matches a file name anywhere.
    """
    pattern = pattern.strip()
    pattern = pattern.removeprefix("./")
    if "/" in pattern.rstrip("/"):
        pattern = pattern.rstrip("/")
        return fnmatch.fnmatchcase(rel, pattern) or fnmatch.fnmatchcase(rel, pattern + "/*")
    pattern = pattern.rstrip("/")
    return any(fnmatch.fnmatchcase(part, pattern) for part in rel.split("/"))


def parse_codes(value: object, *, origin: str) -> tuple[str, ...]:
    """Codes from ``"FZ2, FZ301"`` or ``["FZ2", "FZ301"]``, upper-cased and shape-checked.

    ``origin`` names the option or key in the error message.
    """
    if isinstance(value, str):
        items: list[object] = [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ConfigError(f"{origin}: expected a list of rule codes, got {_type_name(value)}")
    codes: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"{origin}: expected rule codes as strings, got {_type_name(item)}")
        for part in re.split(r"[,\s]+", item):
            if not part:
                continue
            code = part.upper()
            if not _CODE_RE.match(code):
                raise ConfigError(f"{origin}: malformed rule code {part!r}")
            codes.append(code)
    return tuple(codes)


def find_config_file(start: Path | None = None) -> Path | None:
    """The nearest ``pyproject.toml`` upward from ``start`` that has a ``[tool.freezedsl]``.

    Files without the table are skipped (like ruff) so a nested package's own
    ``pyproject.toml`` does not hide the project's settings.
    """
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file() and _freezedsl_table(_read_toml(candidate)) is not None:
            return candidate
    return None


def load_config(path: Path | None = None, *, start: Path | None = None) -> LintConfig:
    """Settings from ``path`` (``--config``), else from :func:`find_config_file`.

    Without any settings file the defaults apply and globs are relative to the current
    directory.
    """
    if path is not None:
        from freezedsl.fsutil import unreadable_reason

        reason = unreadable_reason(path)
        if reason:
            raise ConfigError(f"{path}: config file {reason}; pass a pyproject.toml")
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        source: Path | None = path
    else:
        source = find_config_file(start)
    if source is None:
        return LintConfig(root=(start or Path.cwd()).resolve())
    table = _freezedsl_table(_read_toml(source)) or {}
    return _from_table(table, source)


@dataclass
class ConfigResolver:
    """Settings per linted file, as ruff finds them: the nearest ``pyproject.toml`` with a
    ``[tool.freezedsl]`` table above each file, with the command-line overrides applied
    on top of every one of them.

    ``base`` is what applies where no settings file is found (the settings of the
    current directory, overrides applied). With ``fixed`` (``--config PATH``) every file
    gets ``base``. Lookups are cached per folder, so a tree of thousands of files reads
    each settings file once. The lint runner can call :meth:`for_path` for each file to
    pick its selection, ``per-file-ignores`` and ``exclude`` (globs stay relative to the
    folder of the settings file that states them).
    """

    base: LintConfig
    overrides: Mapping[str, Any] = field(default_factory=dict)
    fixed: bool = False
    _by_folder: dict[Path, LintConfig] = field(default_factory=dict, repr=False)
    _by_source: dict[Path, LintConfig] = field(default_factory=dict, repr=False)

    def for_path(self, path: str | os.PathLike[str]) -> LintConfig:
        """Effective settings for the file or folder ``path``."""
        if self.fixed:
            return self.base
        full = Path(os.path.abspath(path))
        folder = full if full.is_dir() else full.parent
        missed: list[Path] = []
        found: LintConfig | None = None
        for here in (folder, *folder.parents):
            if here in self._by_folder:
                found = self._by_folder[here]
                break
            missed.append(here)
            candidate = here / CONFIG_FILE
            if candidate.is_file() and _freezedsl_table(_read_toml(candidate)) is not None:
                found = self._load(candidate)
                break
        result = found if found is not None else self.base
        for here in missed:
            self._by_folder[here] = result
        return result

    def _load(self, source: Path) -> LintConfig:
        if source not in self._by_source:
            if self.base.source is not None and source.resolve() == self.base.source.resolve():
                self._by_source[source] = self.base
            else:
                table = _freezedsl_table(_read_toml(source)) or {}
                self._by_source[source] = _from_table(table, source).with_overrides(
                    **self.overrides
                )
        return self._by_source[source]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from exc


def _freezedsl_table(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    tool = doc.get("tool")
    if not isinstance(tool, dict):
        return None
    table = tool.get("freezedsl")
    return table if isinstance(table, dict) else None


def _from_table(table: Mapping[str, Any], source: Path) -> LintConfig:
    """Merge ``[tool.freezedsl]`` lint keys and ``[tool.freezedsl.lint]`` strictly."""
    values: dict[str, tuple[str, Any]] = {}
    for key, value in table.items():
        if key in LINT_KEYS:
            values[key] = ("[tool.freezedsl]", value)
        elif key not in SHARED_KEYS:
            raise ConfigError(f"{source}: unknown key {key!r} in [tool.freezedsl]")
    lint = table.get("lint", {})
    if not isinstance(lint, dict):
        raise ConfigError(f"{source}: [tool.freezedsl] lint must be a table")
    for key, value in lint.items():
        if key not in LINT_KEYS:
            raise ConfigError(f"{source}: unknown key {key!r} in [tool.freezedsl.lint]")
        if key in values:
            raise ConfigError(
                f"{source}: key {key!r} is set in both [tool.freezedsl] and [tool.freezedsl.lint]"
            )
        values[key] = ("[tool.freezedsl.lint]", value)

    def codes(key: str) -> tuple[str, ...] | None:
        if key not in values:
            return None
        section, value = values[key]
        return parse_codes(value, origin=f"{source}: {section} {key}")

    per_file: list[tuple[str, tuple[str, ...]]] = []
    if "per-file-ignores" in values:
        section, raw = values["per-file-ignores"]
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: {section} per-file-ignores must be a table glob = codes")
        for glob, value in raw.items():
            origin = f"{source}: {section} per-file-ignores {glob!r}"
            per_file.append((glob, parse_codes(value, origin=origin)))

    exclude: tuple[str, ...] = ()
    if "exclude" in values:
        section, raw = values["exclude"]
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise ConfigError(f"{source}: {section} exclude must be a list of glob strings")
        exclude = tuple(raw)

    steps = 0
    if "steps" in values:
        section, raw = values["steps"]
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
            raise ConfigError(f"{source}: {section} steps must be a non-negative integer")
        steps = raw

    return LintConfig(
        select=codes("select"),
        ignore=codes("ignore") or (),
        extend_select=codes("extend-select") or (),
        extend_ignore=codes("extend-ignore") or (),
        exclude=exclude,
        per_file_ignores=tuple(per_file),
        steps=steps,
        root=source.resolve().parent,
        source=source,
    )


def _type_name(value: object) -> str:
    return type(value).__name__


def all_codes(config: LintConfig) -> Iterable[tuple[str, str]]:
    """Every ``(origin, code)`` the settings mention, for checking that the codes exist."""
    where = str(config.source) if config.source else "config"
    for key, codes in (
        ("select", config.select or ()),
        ("ignore", config.ignore),
        ("extend-select", config.extend_select),
        ("extend-ignore", config.extend_ignore),
    ):
        for code in codes:
            yield f"{where}: {key}", code
    for glob, codes in config.per_file_ignores:
        for code in codes:
            yield f"{where}: per-file-ignores {glob!r}", code
    for option, codes in (
        ("--select", config.cli.select or ()),
        ("--extend-select", config.cli.extend_select),
        ("--ignore", config.cli.ignore),
    ):
        for code in codes:
            yield option, code
