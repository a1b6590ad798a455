"""Matching rule-file regexes against a model's names within one time budget per file.

A rule file may come from anyone, and a backtracking regex can take exponential time
on a name that almost matches. Two guards:

* the parser refuses patterns that are catastrophic on sight (nested repetition, see
  :func:`freezedsl.syntax.parser.nested_repetition`), with a located error;
* everything else is matched against **one deadline for the whole rule file**
  (``FREEZEDSL_REGEX_TIMEOUT`` seconds, default 2): all ``name~``/``type~`` matching of
  one plan (or one ``lint --model`` check) shares it, only the time spent matching counts,
  and each match gets only the time that is left.

The deadline is enforced by the ``regex`` package's native ``timeout=`` argument: a
well-kept engine whose matcher checks the clock itself, so the bound holds in every
thread, needs no signal (the former SIGALRM guard worked only in the main thread and
switched off when the program had its own ``setitimer`` running) and cannot be
disabled by the program. ``timeout=`` costs about 4 microseconds per call, so patterns
that cannot backtrack much -- at most one repetition whose giving back could matter, of
a single character -- are matched with the standard ``re`` engine in chunks, with the
deadline checked between chunks (one such match is O(n^2) steps in the name's length).

The dialect is Python's ``re`` in both cases: the parser validates every pattern with
``re.compile`` and refuses the few constructs ``regex`` reads differently (see
:func:`check_dialect`). Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import re
import time
import warnings
from functools import lru_cache
from itertools import compress, count

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds of start-up
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any

__all__ = [
    "DEFAULT_REGEX_BUDGET",
    "REGEX_BUDGET_ENV",
    "Budget",
    "Matcher",
    "RegexTimeout",
    "budget",
    "check_dialect",
    "file_budget",
    "matcher",
    "shared_budget",
]

REGEX_BUDGET_ENV = "FREEZEDSL_REGEX_TIMEOUT"
DEFAULT_REGEX_BUDGET = 2.0  # seconds for all regex matching of one rule file
#: names matched by the fast engine between two looks at the clock
_CHUNK = 64


class RegexTimeout(Exception):
    """The rule file's regex budget ran out while matching ``pattern``."""

    def __init__(self, pattern: str, seconds: float) -> None:
        super().__init__(f"regex {pattern!r} ran out of the {seconds:g} s budget")
        self.pattern = pattern
        self.seconds = seconds


def budget() -> float:
    """The budget in seconds (``FREEZEDSL_REGEX_TIMEOUT``; a bad value means the default)."""
    try:
        value = float(os.environ.get(REGEX_BUDGET_ENV, DEFAULT_REGEX_BUDGET))
    except ValueError:
        return DEFAULT_REGEX_BUDGET
    return value if value > 0 and math.isfinite(value) else DEFAULT_REGEX_BUDGET


class Budget:
    """Seconds of regex matching left to one rule file; only time spent matching counts.

    Building the model's index or selecting paths does not use it up, so a large model
    does not make a cheap regex at the end of a long file fail.
    """

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = budget() if seconds is None else seconds
        self.left = self.seconds

    @contextlib.contextmanager
    def running(self) -> Iterator[float]:
        """Charge the block's time to the budget; yields its deadline (``time.monotonic``)."""
        start = time.monotonic()
        try:
            yield start + self.left
        finally:
            self.left -= time.monotonic() - start


_SHARED: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "freezedsl_regex_budget", default=None
)


@contextlib.contextmanager
def shared_budget(seconds: float | None = None) -> Iterator[Budget]:
    """One budget for all matching in the block (e.g. every pass of ``lint --model``).

    Nested blocks keep the outer budget; the value is per thread and per task (a
    context variable).
    """
    outer = _SHARED.get()
    if outer is not None:
        yield outer
        return
    shared = Budget(seconds)
    token = _SHARED.set(shared)
    try:
        yield shared
    finally:
        _SHARED.reset(token)


def file_budget() -> Budget:
    """The budget of the enclosing :func:`shared_budget`, else a new one."""
    current = _SHARED.get()
    return current if current is not None else Budget()


# ---------------------------------------------------------------------- dialect


def check_dialect(pattern: str) -> str | None:
    """Why ``pattern`` is not plain Python ``re`` that ``regex`` reads the same, or ``None``.

    ``re`` warns (FutureWarning) where the two engines disagree: ``[[:alpha:]]`` is a
    POSIX class for ``regex`` and a set of characters for ``re``; ``[a--b]``, ``[a&&b]``,
    ``[a||b]``, ``[a~~b]`` are set operations in ``regex``'s version 1. Such patterns are
    refused rather than matched with two meanings. ``re.error`` propagates.
    """
    sre = _sre()
    with warnings.catch_warnings():  # parse(), not compile(): re's cache would hide the warning
        warnings.simplefilter("error", FutureWarning)
        try:
            sre.parse(pattern)
        except FutureWarning as warning:
            return str(warning)
    return None


# ---------------------------------------------------------------------- matching


def _sre() -> Any:
    try:
        import re._parser as sre_parse
    except ImportError:  # pragma: no cover - Python < 3.11
        import sre_parse
    return sre_parse


def _single_char(sre: Any, item: tuple[Any, Any]) -> bool:
    return item[0] in (sre.LITERAL, sre.NOT_LITERAL, sre.IN, sre.ANY, sre.CATEGORY)


def _cannot_match(sre: Any, state: Any, item: tuple[Any, Any], char: int) -> bool:
    """True when the single-character ``item`` never matches ``chr(char)``."""
    try:
        from re import _compiler as sre_compile  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - Python < 3.11
        import sre_compile
    sub = sre.SubPattern(state, [item])
    try:
        return sre_compile.compile(sub, state.flags).fullmatch(chr(char)) is None
    except Exception:  # noqa: BLE001 - unsure: treat as overlapping
        return False


def is_fast(pattern: str) -> bool:
    """Whether ``pattern`` is safe for the signal-free ``re`` engine in chunks.

    Safe: no group repetition, no backreference, look-around or conditional, and at most
    one repetition of a single character whose backtracking matters -- one that is not
    followed by a literal it cannot match (``\\d+\\.`` gives back digits that ``\\.``
    never takes, so it backtracks at most the run's length). One search is then at most
    quadratic in the name's length.
    """
    return _is_fast(pattern)


@lru_cache(maxsize=1024)
def _is_fast(pattern: str) -> bool:
    sre = _sre()
    try:
        tree = sre.parse(pattern)
    except Exception:  # noqa: BLE001
        return False
    repeats = {sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)}
    slow_ops = {
        sre.GROUPREF,
        sre.GROUPREF_EXISTS,
        sre.ASSERT,
        sre.ASSERT_NOT,
        sre.BRANCH,
        getattr(sre, "ATOMIC_GROUP", None),
        getattr(sre, "GROUPREF_IGNORE", None),
        getattr(sre, "GROUPREF_LOC_IGNORE", None),
        getattr(sre, "GROUPREF_UNI_IGNORE", None),
    }

    def repetition_free(items: Any) -> bool:
        for op, arg in items:
            if op in repeats or op in slow_ops - {sre.BRANCH, sre.ASSERT, sre.ASSERT_NOT}:
                return False
            if op == sre.SUBPATTERN and not repetition_free(arg[-1]):
                return False
            if op == sre.BRANCH and not all(repetition_free(b) for b in arg[1]):
                return False
            if op in (sre.ASSERT, sre.ASSERT_NOT) and not repetition_free(arg[1]):
                return False
        return True

    stack = list(reversed(list(tree)))  # next item last: popping is O(1)
    # Flatten plain groups (no repetition around them) into one sequence. Alternatives
    # and look-arounds without repetition inside cost a constant per position.
    flat: list[tuple[Any, Any]] = []
    while stack:
        op, arg = stack.pop()
        if op == sre.SUBPATTERN:
            stack.extend(reversed(list(arg[-1])))
        elif op in (sre.BRANCH, sre.ASSERT, sre.ASSERT_NOT):
            if not repetition_free([(op, arg)]):
                return False
            flat.append((op, arg))
        elif op in slow_ops:
            return False
        else:
            flat.append((op, arg))
    ambiguous = 0
    for i, (op, arg) in enumerate(flat):
        if op not in repeats:
            continue
        lo, hi, sub = arg
        body = list(sub)
        if len(body) != 1 or not _single_char(sre, body[0]):
            return False
        if hi <= 1 or lo == hi:  # a fixed count has nothing to give back
            continue
        nxt = flat[i + 1] if i + 1 < len(flat) else None
        if (
            nxt is not None
            and nxt[0] == sre.LITERAL
            and _cannot_match(sre, tree.state, body[0], nxt[1])
        ):
            continue
        ambiguous += 1
    return ambiguous <= 1


class Matcher:
    """One compiled pattern; searches within a deadline (see the module docstring)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.fast = is_fast(pattern)
        self._re = re.compile(pattern)
        self._regex: Any = None
        if not self.fast:
            import regex  # the bounded engine; only imported for patterns that need it

            self._regex = regex.compile(pattern)

    def _out_of_time(self, spent: Budget) -> RegexTimeout:
        return RegexTimeout(self.pattern, spent.seconds)

    def _search(self, text: str, deadline: float, spent: Budget) -> Any:
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._out_of_time(spent)
        if self.fast:
            return self._re.search(text)
        try:
            # concurrent: the GIL is released while it backtracks, other threads go on
            return self._regex.search(text, concurrent=True, timeout=left)
        except TimeoutError:
            raise self._out_of_time(spent) from None

    def search(self, text: str, spent: Budget) -> Any:
        """``re.search`` semantics; raises :class:`RegexTimeout` when ``spent`` runs out."""
        with spent.running() as deadline:
            return self._search(text, deadline, spent)

    def hits(self, texts: Sequence[str], spent: Budget) -> list[int]:
        """Indices of ``texts`` that the pattern is found in, in order."""
        out: list[int] = []
        with spent.running() as deadline:
            if self.fast:
                search = self._re.search
                for start in range(0, len(texts), _CHUNK):
                    if time.monotonic() > deadline:
                        raise self._out_of_time(spent)
                    out.extend(compress(count(start), map(search, texts[start : start + _CHUNK])))
                return out
            for i, text in enumerate(texts):
                if self._search(text, deadline, spent) is not None:
                    out.append(i)
        return out

    def matches(self, texts: Sequence[str], spent: Budget) -> list[tuple[int, Any]]:
        """``(index, match)`` for each of ``texts`` that the pattern is found in, in order."""
        out: list[tuple[int, Any]] = []
        with spent.running() as deadline:
            for start in range(0, len(texts), _CHUNK):
                chunk = texts[start : start + _CHUNK]
                found: Iterator[Any]
                if self.fast:
                    if time.monotonic() > deadline:
                        raise self._out_of_time(spent)
                    found = map(self._re.search, chunk)
                else:
                    found = (self._search(text, deadline, spent) for text in chunk)
                out.extend((start + i, m) for i, m in enumerate(found) if m is not None)
        return out

    def tester(self, spent: Budget) -> Callable[[str], bool]:
        """``text -> found?`` charged to ``spent``."""
        return lambda text: self.search(text, spent) is not None


@lru_cache(maxsize=512)
def matcher(pattern: str) -> Matcher:
    """The (cached) :class:`Matcher` of ``pattern``."""
    return Matcher(pattern)
