"""What the click commands and the click-free ``check``/``fmt`` path share.

Why a module of its own: :mod:`freezedsl.cli` (the entry point, which runs plain
``check``/``fmt`` without click) and :mod:`freezedsl.commands` (the click group) both
need these; keeping them here, below both, keeps the two free of an import cycle.
Nothing here imports click, torch or Lark at module level, so ``check``/``fmt`` start fast.
"""

from __future__ import annotations

import io
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn

    from freezedsl.errors import FreezeError

    Echo = Callable[..., Any]

__all__ = ["check_files", "echo", "format_files", "report_errors"]


# ------------------------------------------------------------------ check / fmt


def _read(path: str) -> str:
    from freezedsl.syntax.parser import read_rules

    if path == "-":
        return sys.stdin.read()
    return read_rules(path)


def check_files(rules: tuple[str, ...], echo: Echo) -> None:
    """``freezedsl check RULES...`` (``echo`` is click.echo or its click-free twin)."""
    from freezedsl.syntax.parser import parse

    findings = 0
    for path in rules:
        text = _read(path)
        program = parse(text, path="<stdin>" if path == "-" else path)
        try:
            from freezedsl.lint.rulefiles import check_program
        except ImportError:  # pragma: no cover - lint package incomplete
            diags: list[Any] = []
        else:
            diags = check_program(program)
        for d in diags:
            echo(d.format())
        findings += len(diags)
        if not diags:
            echo(f"{program.path}: ok ({len(program.statements)} statements)")
    if findings:
        sys.exit(1)


def format_files(rules: tuple[str, ...], check_only: bool, diff: bool, echo: Echo) -> None:
    """``freezedsl fmt [--check] [--diff] RULES...``."""
    from freezedsl.syntax.parser import parse
    from freezedsl.syntax.printer import format_program

    results: list[tuple[str, str, str]] = []
    for path in rules:
        text = _read(path)
        formatted = format_program(parse(text, path="<stdin>" if path == "-" else path))
        results.append((path, text, formatted))
    changed = [r for r in results if r[1] != r[2]]
    if diff:
        import difflib

        for path, old, new in changed:
            echo("".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), path, path)), nl=False)
    if check_only or diff:
        for path, _, _ in changed:
            if check_only:
                echo(f"would reformat {path}", err=True)
        if check_only:
            echo(f"{len(changed)} of {len(results)} files would be reformatted", err=True)
        sys.exit(1 if changed else 0)
    for path, _old, new in results:
        if path == "-":
            echo(new, nl=False)
    from freezedsl.fsutil import atomic_write_text

    for path, _old, new in changed:
        if path != "-":
            atomic_write_text(path, new)
            echo(f"reformatted {path}", err=True)


# ------------------------------------------------------------------ without click


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """``click.echo(message, err=err, nl=nl)`` for text, without importing click.

    click.echo writes a str straight to a sound ``sys.stdout``/``sys.stderr`` (a text
    file whose encoding is not ASCII) and flushes; it also strips ANSI escape codes
    when the stream is not a terminal. For any other stream, or a message with an
    escape character, this calls click.echo itself.
    """
    stream = sys.stderr if err else sys.stdout
    if type(stream) is not io.TextIOWrapper or "\x1b" in message or not _sound(stream):
        import click

        click.echo(message, err=err, nl=nl)
        return
    stream.write(message + "\n" if nl else message)
    stream.flush()


def _sound(stream: io.TextIOWrapper) -> bool:
    """click's test for a text stream it writes to as it is (else it re-wraps it)."""
    import codecs

    if stream.errors is None or not stream.encoding:
        return False
    try:
        return codecs.lookup(stream.encoding).name != "ascii"
    except LookupError:
        return True


def _fail(err: FreezeError, echo: Echo) -> NoReturn:
    echo(err.render(), err=True)
    for extra in getattr(err, "failures", [])[1:]:
        echo(extra.one_line(), err=True)
    sys.exit(err.exit_code)


def report_errors(call: Callable[[], Any], echo: Echo, passthrough: tuple[type[BaseException], ...] = (SystemExit,)) -> Any:
    """Run ``call()``; library errors become one message and an exit code, never a traceback.

    Shared by the click commands (``commands.handle_errors``) and the click-free path.
    ``passthrough`` exceptions propagate unchanged.
    """
    from freezedsl.errors import FreezeError

    try:
        return call()
    except FreezeError as err:
        _fail(err, echo)
    except KeyboardInterrupt:
        echo("freezedsl: interrupted (files are written atomically: each is complete or untouched)", err=True)
        sys.exit(130)
    except passthrough:
        raise
    except Exception as exc:
        from freezedsl.errors import is_missing_torch, torch_needed

        if is_missing_torch(exc) and not os.environ.get("FREEZEDSL_DEBUG"):
            echo(torch_needed(_command_name()), err=True)
            sys.exit(2)
        if os.environ.get("FREEZEDSL_DEBUG"):
            raise
        echo(
            f"freezedsl: internal error: {type(exc).__name__}: {exc} (set FREEZEDSL_DEBUG=1 for a traceback)",
            err=True,
        )
        sys.exit(2)


def _command_name() -> str:
    """``freezedsl show`` for the click command being run (``freezedsl`` outside one)."""
    import click

    ctx = click.get_current_context(silent=True)
    name = ctx.info_name if ctx is not None else None
    return f"freezedsl {name}" if name and name != "freezedsl" else "freezedsl"
