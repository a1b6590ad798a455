"""The ``freezedsl`` command line: each command unpacks options and calls the library.

Exit codes: 0 ok, 1 a failed ``expect`` or check, 2 a usage or input error. Errors
are one clear message on stderr, never a traceback (set FREEZEDSL_DEBUG=1 to see one
for an internal error). ``check`` and ``fmt`` never import torch.

The commands are a click group (:mod:`freezedsl.commands`). :data:`main`, the entry
point, hands every invocation to it except the everyday ``freezedsl check FILE...``
and ``freezedsl fmt [--check] [--diff] FILE...``: those run here, through the same
code as the click commands (:mod:`freezedsl.clitools`), without
importing click, which alone costs about as much as starting Python. Anything else --
an option these do not take, ``--help``, ``--``, a missing file argument, shell
completion, FREEZEDSL_DEBUG -- goes to click, so output and exit codes are click's.
"""

from __future__ import annotations

import os
import sys

from freezedsl.clitools import check_files, echo, format_files, report_errors

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

__all__ = ["check_files", "format_files", "main"]


# ------------------------------------------------------------------ without click


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
