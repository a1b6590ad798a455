"""Which files a lint run checks, and how their text is read.

Why a module of its own: walking directories (hidden and :data:`SKIP_DIRS` folders,
symlinks out of the tree, ``exclude`` judged by each path's own settings) and decoding
a file the way its interpreter does are questions of their own, apart from which codes
run on the files (:mod:`freezedsl.lint.runner`).
"""

from __future__ import annotations

import io
import os
import tokenize
from collections.abc import Sequence
from pathlib import Path

from freezedsl.errors import UsageError
from freezedsl.fsutil import unreadable_reason
from freezedsl.lint.config import ConfigResolver, LintConfig

__all__ = ["SKIP_DIRS", "SUFFIXES", "as_resolver", "collect_files", "read_source"]

#: Directory names never entered while walking a directory.
SKIP_DIRS = frozenset({".venv", "venv", "__pycache__", "build", "dist", "node_modules", ".git"})

SUFFIXES = (".py", ".frz")


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
