"""Errors that freezedsl reports to people.

Every error a user can cause is a :class:`FreezeError`: it carries where the problem
is (file, line, column or a parameter name), what was wrong and what would be right,
and renders as one ``path:line:col: message`` line, optionally followed by the source
line with a caret. The CLI turns it into exit code 2 (or 1 for a failed ``expect``)
without a traceback. This module must not import torch: ``freezedsl check`` relies on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from freezedsl.safetext import printable, source_with_caret

MAX_MESSAGE = 600  # characters of one error line; longer selectors are elided in the middle


def source_lines(text: str) -> list[str]:
    """Lines as the lexer counts them: only \n ends a line (not \r, \f or U+2028)."""
    return [line.rstrip("\r") for line in text.split("\n")]


def elide(text: str, limit: int = MAX_MESSAGE) -> str:
    """Shorten over-long words (a 100k-character path) so the message's own words stay."""
    if len(text) <= limit:
        return text
    words = [w if len(w) <= 80 else f"{w[:36]}...{w[-36:]}" for w in text.split(" ")]
    text = " ".join(words)
    if len(text) <= limit:
        return text
    keep = (limit - 5) // 2
    return f"{text[:keep]} ... {text[-keep:]}"


@dataclass(frozen=True)
class Span:
    """A 1-based source position range; ``end_*`` is exclusive."""

    line: int
    col: int
    end_line: int
    end_col: int


class FreezeError(Exception):
    """Base of every user-facing error; exit code 2 on the command line."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        col: int | None = None,
        source_line: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.col = col
        self.source_line = source_line
        self.hint = hint

    def location(self) -> str:
        parts = [self.path or "<rules>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.col is not None:
                parts.append(str(self.col))
        return ":".join(parts)

    def one_line(self) -> str:
        """``path:line:col: message (hint)`` in a single line."""
        text = self.message
        if self.hint:
            text = f"{text}; {self.hint}"
        text = printable(elide(" ".join(text.split("\n"))))  # a name may hold ANSI escapes
        if self.path is None and self.line is None:
            return text
        return f"{printable(self.location())}: {text}"

    def render(self) -> str:
        """The one-line message plus the offending source line and a caret."""
        out = self.one_line()
        if self.source_line is not None and self.col is not None:
            shown, col = source_with_caret(self.source_line, self.col)
            if len(shown) > 120:  # show a window around the caret
                start = max(0, col - 60)
                shown = shown[start : start + 120]
                col -= start
            out += f"\n  {shown}\n  {' ' * (col - 1)}^"
        return out

    def __str__(self) -> str:
        return self.one_line()


class RuleSyntaxError(FreezeError):
    """The rule text does not parse."""


class SelectionError(FreezeError):
    """A selector does not fit the model (matches nothing, slices a leaf, bad regex...)."""


class ExpectationError(FreezeError):
    """An ``expect`` statement failed; nothing was applied."""

    exit_code = 1


class ModelLoadError(FreezeError):
    """A model file or architecture string could not be loaded."""


class UsageError(FreezeError):
    """The command line or API call is inconsistent."""


#: How to get PyTorch into an environment that installed freezedsl without it.
TORCH_INSTALL = "pip install 'freezedsl[torch]'"


def is_missing_torch(exc: BaseException) -> bool:
    """``exc`` says that ``torch`` (or one of its submodules) is not installed.

    torch is an optional dependency (the ``freezedsl[torch]`` extra): static lint,
    ``check`` and ``fmt`` work without it, and everything that needs a model says so in
    one line (:func:`torch_needed`) instead of an internal error.
    """
    return isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "torch"


def torch_needed(what: str) -> str:
    """``"<what> needs PyTorch: pip install 'freezedsl[torch]'"``."""
    return f"{what} needs PyTorch: {TORCH_INSTALL}"
