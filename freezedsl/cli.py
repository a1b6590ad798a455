"""The ``freezedsl`` command line: each command unpacks options and calls the library.

Exit codes: 0 ok, 1 a failed ``expect`` or check, 2 a usage or input error. Errors
are one clear message on stderr, never a traceback (set FREEZEDSL_DEBUG=1 to see one
for an internal error). ``check`` and ``fmt`` never import torch.

The commands are a click group (:mod:`freezedsl.commands`). :data:`main`, the entry
point, hands every invocation to it except the everyday ``freezedsl check FILE...``
and ``freezedsl fmt [--check] [--diff] FILE...``: those run here, through the same
code as the click commands (:func:`check_files`, :func:`format_files`), without
importing click, which alone costs about as much as starting Python. Anything else --
an option these do not take, ``--help``, ``--``, a missing file argument, shell
completion, FREEZEDSL_DEBUG -- goes to click, so output and exit codes are click's.
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

__all__ = ["check_files", "format_files", "main"]


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


def _fast_command(argv: list[str]) -> tuple[str, tuple[str, ...], bool, bool] | None:
    """(command, rule files, --check, --diff) for the invocations run without click."""
    if not argv or argv[0] not in ("check", "fmt"):
        return None
    if sys.platform == "win32" or os.environ.get("FREEZEDSL_DEBUG"):
        return None  # click expands globs on Windows; debug runs keep click's handling
    if any(name.startswith("_") and name.endswith("_COMPLETE") for name in os.environ):
        return None  # a shell-completion request (click's _FREEZEDSL_COMPLETE)
    command, rules, check_only, diff = argv[0], [], False, False
    for arg in argv[1:]:
        if arg[:1] != "-" or arg == "-":
            rules.append(arg)
        elif command == "fmt" and arg == "--check":
            check_only = True
        elif command == "fmt" and arg == "--diff":
            diff = True
        else:  # --help, --, an unknown option...: click's parser and messages
            return None
    if not rules:
        return None
    return command, tuple(rules), check_only, diff


class _Pacified:
    """click's wrapper of a broken-pipe stream: flushing it at exit raises nothing."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped

    def flush(self) -> None:
        import errno

        try:
            self.wrapped.flush()
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.wrapped, attr)


def _run_fast(command: str, rules: tuple[str, ...], check_only: bool, diff: bool) -> NoReturn:
    """What the click group does for these arguments: run the command, exit."""
    try:
        if command == "check":
            report_errors(lambda: check_files(rules, echo), echo)
        else:
            report_errors(lambda: format_files(rules, check_only, diff, echo), echo)
    except (EOFError, KeyboardInterrupt):  # click's main, then commands.OneLineErrors
        echo(err=True)
        echo("freezedsl: aborted", err=True)
        sys.exit(1)
    except OSError as exc:  # click's main: a closed pipe ends the command quietly
        import errno

        if exc.errno != errno.EPIPE:
            raise
        sys.stdout = _Pacified(sys.stdout)
        sys.stderr = _Pacified(sys.stderr)
        sys.exit(1)
    sys.exit(0)


# ------------------------------------------------------------------ the entry point


def _group() -> Any:
    from freezedsl.commands import main as group

    return group


class _Main:
    """The ``freezedsl`` command: the click group of :mod:`freezedsl.commands`.

    Calling it with no arguments (the console script; ``python -m freezedsl``) runs
    ``check``/``fmt`` without click when :func:`_fast_command` accepts ``sys.argv``;
    every other call and every attribute (``main.main(args)``, as click's CliRunner
    uses, ``main.commands``...) go to the group.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not args and set(kwargs) <= {"prog_name"}:
            fast = _fast_command(sys.argv[1:])
            if fast is not None:
                _run_fast(*fast)
        return _group()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(_group(), name)

    def __repr__(self) -> str:
        return f"<freezedsl command line: {_group()!r}>"


main: Any = _Main()


if __name__ == "__main__":  # pragma: no cover
    main()
