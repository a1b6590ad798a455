"""Which rule codes are enabled: code prefixes, ``select``/``ignore`` and their precedence.

Why a module of its own: the precedence is the one subtle rule of the settings, and
the runner, the command line and ``# noqa`` all match codes against prefixes the same
way (:func:`matches_any`).

Selection semantics (order-independent): a code is enabled when the *longest* prefix
that matches it comes from ``select``/``extend-select``; on a tie ``ignore`` wins;
``ALL`` is the shortest prefix of all. The command-line codes are a second layer on top
(:class:`~freezedsl.lint.config.CodeOverrides`, as in ruff). Code prefixes that match no
registered rule are errors, so a typo never silently disables nothing.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from freezedsl.errors import UsageError
from freezedsl.lint.config import LintConfig, all_codes

__all__ = ["check_codes", "is_known", "matches_any", "resolve_selection"]


def is_known(code: str, known: Iterable[str]) -> bool:
    """Whether the prefix ``code`` (or ``ALL``) matches one of the ``known`` codes."""
    return code == "ALL" or any(k.startswith(code) for k in known)


def check_codes(codes: Iterable[str], known: Iterable[str], origin: str) -> None:
    """Raise :class:`UsageError` naming the first prefix that matches no known code."""
    known = sorted(known)
    for code in codes:
        if is_known(code, known):
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
            if matches_any(c, adjust)
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


def matches_any(code: str, prefixes: Iterable[str]) -> bool:
    """Whether one of ``prefixes`` (``ALL`` included) matches ``code``."""
    return _prefix_len(code, prefixes) >= 0
