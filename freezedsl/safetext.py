"""Text from files, printed safely: control characters are shown escaped, never obeyed.

A parameter name, a path or a source line comes from a file the user may not have
written; printed raw, an ANSI escape in it repaints the terminal, a carriage return
hides the start of the line and a bidi override reorders what the reader sees
("Trojan Source"). Every printer that shows such text passes it through
:func:`printable` (this module imports nothing heavy: ``check`` uses it without torch).
"""

from __future__ import annotations

__all__ = ["printable", "source_with_caret"]

# C0 controls, DEL and C1 controls, plus the invisible bidi and direction marks.
_ESCAPED = [*range(0x20), *range(0x7F, 0xA0), 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_TABLE = {c: (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _ESCAPED}


def printable(text: str, *, keep_tabs: bool = False) -> str:
    """``text`` with control and bidi characters written as ``\\x1b`` / ``\\u202e``.

    ``keep_tabs`` leaves tabs alone (source lines, where the caller turns them into
    spaces so a caret stays under its column).
    """
    if text.isprintable() or (keep_tabs and text.replace("\t", " ").isprintable()):
        return text
    if keep_tabs:
        return "\t".join(part.translate(_TABLE) for part in text.split("\t"))
    return text.translate(_TABLE)


def source_with_caret(line: str, col: int) -> tuple[str, int]:
    """A source line as printed under an error (tabs as spaces, controls escaped) and
    the 1-based column of the caret in it, moved right past any escapes before it."""
    shown = line.rstrip("\n").replace("\t", " ")
    col = max(col, 1)
    return printable(shown), len(printable(shown[: col - 1])) + 1
