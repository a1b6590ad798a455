"""``freezedsl lint`` and ``freezedsl rule``: click front-ends for the lint runner.

``lint`` has two forms. ``freezedsl lint [OPTIONS] [PATHS]...`` lints files statically;
``freezedsl lint [OPTIONS] SCRIPT.py [SCRIPT_ARGS]...`` lints the script and then runs
it (``python SCRIPT.py SCRIPT_ARGS``) to check the live model and optimizer. The second
form is chosen when the first positional argument is a ``.py`` file and ``--no-run``
is not given; then *everything after the script belongs to the script* (like
``python -m pdb``/``torchrun``), because training scripts commonly reuse option names
such as ``--config`` or ``--steps``. The one exception is a literal ``--no-run`` before
any ``--``: it always means "do not execute anything". All errors are one line on
stderr with exit code 2, never a traceback. Importing this module does not import torch.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from freezedsl.errors import (
    TORCH_INSTALL,
    FreezeError,
    UsageError,
    is_missing_torch,
    torch_needed,
)
from freezedsl.fsutil import atomic_write_text, check_target
from freezedsl.lint import runner
from freezedsl.lint.config import ConfigResolver, all_codes, load_config, parse_codes
from freezedsl.lint.grouping import group_runtime
from freezedsl.lint.output import FORMATS, render
from freezedsl.lint.registry import Rule
from freezedsl.lint.report import RunSummary
from freezedsl.lint.selection import check_codes
from freezedsl.lint.supervise import Terminated, fatal_signals_raise

__all__ = ["lint_command", "rule_command"]

_META_SCRIPT = "freezedsl.lint.script"
_META_TORCH_FOR = "freezedsl.lint.torch_for"
TORCH_NOTE = f"they need PyTorch: {TORCH_INSTALL}"
TORCH_NEED = f"need PyTorch: {TORCH_INSTALL}"

F = TypeVar("F", bound=Callable[..., Any])


class _OneLineCommand(click.Command):
    """Reports bad options as a single ``freezedsl <cmd>: message`` line, exit code 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            click.echo(f"freezedsl {self.name}: {exc.format_message()}", err=True)
            ctx.exit(2)


class _LintCommand(_OneLineCommand):
    """Splits ``SCRIPT.py SCRIPT_ARGS...`` off before click sees the arguments."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ours, script, script_args = split_script_args(args, self._value_options())
        if script is not None:
            ctx.meta[_META_SCRIPT] = (script, script_args)
        return super().parse_args(ctx, ours)

    def _value_options(self) -> frozenset[str]:
        names: set[str] = set()
        for param in self.params:
            if isinstance(param, click.Option) and not param.is_flag and not param.count:
                names.update(param.opts)
        return frozenset(names)


def split_script_args(
    args: Sequence[str], value_options: frozenset[str]
) -> tuple[list[str], str | None, list[str]]:
    """``(freezedsl args, script or None, script args)`` for the lint command line.

    ``value_options`` are the option names that take a value (so ``--steps 5 train.py``
    is not mistaken for a positional ``5``).
    """
    args = list(args)
    i = 0
    first: int | None = None
    separated = False
    while i < len(args):
        tok = args[i]
        if tok == "--":
            first, separated = (i + 1 if i + 1 < len(args) else None), True
            break
        if tok.startswith("--"):
            i += 2 if "=" not in tok and tok in value_options else 1
            continue
        if tok.startswith("-") and len(tok) > 1:
            i += 2 if len(tok) == 2 and tok in value_options else 1
            continue
        first = i
        break
    if first is None:
        return args, None, []
    script = args[first]
    if not script.endswith(".py") or os.path.isdir(script):
        return args, None, []
    before = args[: first - 1] if separated else args[:first]
    rest = args[first + 1 :]
    up_to_sep = rest[: rest.index("--")] if "--" in rest else rest
    if "--no-run" in before or "--no-run" in up_to_sep:
        return args, None, []
    if rest and rest[0] == "--":
        rest = rest[1:]
    return before, script, rest


def _globs(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(g.strip() for v in values for g in v.split(",") if g.strip())


def _tool_version() -> str | None:
    from importlib import metadata  # lazily: ~8 ms of start-up

    try:
        return metadata.version("freezedsl")
    except metadata.PackageNotFoundError:  # running from a checkout
        import freezedsl

        version = getattr(freezedsl, "__version__", None)
        return version if isinstance(version, str) else None


def _guarded(fn: F) -> F:
    """Turn every failure into one stderr line and exit code 2 (no tracebacks)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        try:
            # SIGTERM/SIGHUP unwind like Ctrl-C: a report being written is not left half
            # done (atomic_write removes its temporary file), a run is ended first.
            with fatal_signals_raise():
                return fn(*args, **kwargs)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Terminated as exc:  # SIGTERM/SIGHUP during a run: the script was ended first
            click.echo(
                f"freezedsl: terminated by {exc.name}; no report was written and nothing "
                "the command started is left running",
                err=True,
            )
            raise
        except KeyboardInterrupt:  # Ctrl-C: the documented exit code 130, not click's 1
            click.echo(f"freezedsl: {INTERRUPTED}", err=True)
            ctx.exit(130)
        except click.ClickException as exc:
            click.echo(f"freezedsl: {exc.format_message()}", err=True)
            ctx.exit(2)
        except FreezeError as exc:
            click.echo(f"freezedsl: {exc.one_line()}", err=True)
            ctx.exit(exc.exit_code)
        except ModuleNotFoundError as exc:
            if not is_missing_torch(exc):
                click.echo(f"freezedsl: internal error: {type(exc).__name__}: {exc}", err=True)
                ctx.exit(2)
            # static checks never need torch; say what asked for it
            what = ctx.meta.get(_META_TORCH_FOR, f"freezedsl {ctx.info_name}")
            click.echo(torch_needed(what), err=True)
            ctx.exit(2)
        except Exception as exc:  # noqa: BLE001 - the point is to catch everything
            click.echo(f"freezedsl: internal error: {type(exc).__name__}: {exc}", err=True)
            ctx.exit(2)

    return wrapper  # type: ignore[return-value]


#: The message of an interrupted command (docs/errors.md; the same words as the other commands).
INTERRUPTED = "interrupted (files are written atomically: each is complete or untouched)"

_CODES_HELP = "Comma-separated rule codes or prefixes (FZ2, FZ204, ALL)."


@click.command(
    "lint",
    cls=_LintCommand,
    context_settings={"help_option_names": ["-h", "--help"]},
    short_help="Lint .frz rule files and Python training code.",
)
@click.argument("paths", nargs=-1, metavar="[PATHS]... | SCRIPT.py [SCRIPT_ARGS]...")
@click.option("--no-run", is_flag=True, help="Never execute a script; lint every path statically.")
@click.option(
    "--steps",
    type=click.IntRange(min=0),
    default=None,
    help="Run the script for N optimizer steps and check frozen parameters stay unchanged "
    "(default: setting 'steps', else 0).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=600.0,
    show_default=True,
    metavar="SECONDS",
    help="Stop the script after this long.",
)
@click.option("--model", "model_spec", metavar="SPEC", help="Model for checking .frz files.")
@click.option("--arch", metavar="ARCH", help="Architecture for a --model state dict file.")
@click.option(
    "--model-config",
    metavar="CONFIG.JSON",
    help="Hugging Face config.json for a --model .safetensors or state dict file (see freezedsl apply --help).",
)
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="Allow --model to be a pickled module or a TorchScript archive (both run code from the file).",
)
@click.option(
    "--select",
    multiple=True,
    metavar="CODES",
    help=f"Enable only these, instead of the settings' selection. {_CODES_HELP}",
)
@click.option(
    "--ignore",
    multiple=True,
    metavar="CODES",
    help=f"Disable these too (added to the settings' ignore). {_CODES_HELP}",
)
@click.option("--extend-select", multiple=True, metavar="CODES", help="Enable these too.")
@click.option("--extend-ignore", multiple=True, metavar="CODES", help="Same as --ignore.")
@click.option(
    "--extend-exclude", multiple=True, metavar="GLOBS", help="Comma-separated paths to skip too."
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="One settings file for every file (default: for each file, the nearest "
    "pyproject.toml with [tool.freezedsl] above it).",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option(
    "-o",
    "--output-file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="Write the report to PATH instead of standard output.",
)
@click.option("--statistics", is_flag=True, help="Count findings per code instead of listing them.")
@click.option("--show-source", is_flag=True, help="Show the offending source line.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option("-q", "--quiet", is_flag=True, help="Print findings only (no summary or notes).")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="List every tensor of a runtime finding (text output groups them by module).",
)
@click.pass_context
@_guarded
def lint_command(
    ctx: click.Context,
    paths: tuple[str, ...],
    no_run: bool,
    steps: int | None,
    timeout: float,
    model_spec: str | None,
    arch: str | None,
    model_config: str | None,
    trust_pickle: bool,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    extend_select: tuple[str, ...],
    extend_ignore: tuple[str, ...],
    extend_exclude: tuple[str, ...],
    config_path: Path | None,
    fmt: str,
    output_file: Path | None,
    statistics: bool,
    show_source: bool,
    exit_zero: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Lint .frz rule files and Python training code; run a training script to check it live.

    \b
    freezedsl lint src/ rules/freeze.frz     # static checks only
    freezedsl lint train.py config.yaml      # static checks, then run train.py config.yaml
    freezedsl lint --steps 3 train.py -- --lr 1e-4

    Everything after SCRIPT.py is passed to the script. Exit codes: 0 clean, 1 findings
    or a failed script run, 2 usage, settings or internal error, 130 interrupted (Ctrl-C),
    143 / 129 ended by SIGTERM / SIGHUP.
    """
    if statistics and fmt not in ("text", "grouped", "json"):
        raise UsageError("--statistics works with --format text, grouped or json")
    script_form = ctx.meta.get(_META_SCRIPT) if not no_run else None
    inputs = [*paths, *(script_form[:1] if script_form else ())]
    inputs += [str(p) for p in (config_path, model_spec) if p is not None]
    if output_file is not None:  # before any work, like apply -o
        check_report_target(output_file, inputs)
    cli_codes = {
        origin: parse_codes(list(values), origin=origin) if values else None
        for origin, values in (
            ("--select", select),
            ("--ignore", ignore),
            ("--extend-select", extend_select),
            ("--extend-ignore", extend_ignore),
        )
    }
    ctx.meta[_META_TORCH_FOR] = (
        "freezedsl lint SCRIPT.py (running a script)"
        if script_form is not None
        else "freezedsl lint --model"
        if model_spec is not None
        else "freezedsl lint with runtime codes (FZ3xx) in the selection"
    )
    file_config = load_config(config_path)
    needed = [c for codes in cli_codes.values() for c in codes or ()]
    needed += [code for _, code in all_codes(file_config)]
    # Runtime rule families import torch: load them only to run a script, with --model
    # (FZ350/FZ351 check the planned state) or when a code needs them, so static
    # linting stays fast.
    rules = runner.load_rules(runtime=script_form is not None or model_spec is not None, needed=needed)
    for origin, codes in cli_codes.items():
        check_codes(codes or (), rules, origin)
    overrides: dict[str, Any] = {
        "select": cli_codes["--select"],
        "ignore": cli_codes["--ignore"],
        "extend_select": cli_codes["--extend-select"],
        "extend_ignore": cli_codes["--extend-ignore"],
        "extend_exclude": _globs(extend_exclude),
        "steps": steps,
    }
    # Each file gets the settings of the nearest pyproject.toml above it (as ruff does);
    # --config fixes one settings file for all of them.
    config = ConfigResolver(
        file_config.with_overrides(**overrides),
        overrides=overrides,
        fixed=config_path is not None,
    )
    if script_form is not None:
        script, script_args = script_form
        report = runner.lint_script(script, script_args, config, timeout=timeout, rules=rules)
    else:
        report = runner.lint_paths(
            list(paths),
            config,
            model=model_spec,
            arch=arch,
            trust_pickle=trust_pickle,
            rules=rules,
            model_config=model_config,
        )

    if not verbose and fmt != "json" and not statistics:  # one finding per mistake
        report.diagnostics = group_runtime(report.diagnostics)
    text = render(
        report,
        fmt,
        rules,
        show_source=show_source,
        statistics=statistics,
        quiet=quiet,
        tool_version=_tool_version(),
    )
    if output_file is not None:
        check_report_target(output_file, report.files)  # files found inside linted folders
        atomic_write_text(output_file, text)
    else:
        click.echo(text, nl=False)

    for error in report.errors:
        click.echo(f"freezedsl: {error}", err=True)
    if report.run is not None:
        failure = report.run.failure()
        if failure:
            click.echo(failure, err=True)
        elif not quiet:
            click.echo(f"freezedsl: {_describe_run(report.run)}", err=True)
    ctx.exit(report.exit_code(exit_zero=exit_zero))


def check_report_target(output: Path, inputs: Sequence[str]) -> None:
    """Refuse ``-o`` naming one of the linted files (also through a symlink or hard link).

    ``lint -o keep.frz keep.frz`` used to replace the rule file with the report. Inputs
    that are folders only count through the files found in them (checked after the walk).
    """
    shown = str(output)
    if not shown.strip():
        raise UsageError("-o needs a file path; got an empty string")
    real = os.path.realpath(output)
    for given in inputs:
        if os.path.isdir(given):
            continue
        try:
            same = os.path.samefile(given, output)
        except OSError:  # one of them does not exist (yet)
            same = real == os.path.realpath(given)
        if same:
            raise UsageError(
                f"-o {shown} is one of the inputs ({given}); write the report to a new file"
            )
    check_target(shown)


def _describe_run(run: RunSummary) -> str:
    def named(kind: str, names: Sequence[str]) -> str:
        noun = kind if len(names) == 1 else kind + "s"
        return f"{len(names)} {noun}" + (f" ({', '.join(names)})" if names else "")

    if run.timed_out:
        how = "stopped at the timeout (not finished)"
    elif run.stopped_at_step and run.steps > 0:
        how = f"stopped after the requested {run.steps} steps"
    elif run.stopped_at_step:
        how = "stopped at its first optimizer.step() (no --steps)"
    elif run.exit_code is None:
        how = "stopped before it finished"
    else:
        how = "finished"
    return (
        f"ran {run.script}: {how}; saw {named('model', run.models)}, "
        f"{named('optimizer', run.optimizers)}"
    )


@click.command(
    "rule",
    cls=_OneLineCommand,
    context_settings={"help_option_names": ["-h", "--help"]},
    short_help="Explain a lint code.",
)
@click.argument("code", required=False)
@click.option("--all", "show_all", is_flag=True, help="List every code with its summary.")
@click.pass_context
@_guarded
def rule_command(ctx: click.Context, code: str | None, show_all: bool) -> None:
    """Print the documentation of a lint CODE (or its name), or list all codes with --all."""
    try:
        rules = runner.load_rules()
        complete = True
    except ModuleNotFoundError as exc:  # the runtime families need torch; the rest do not
        if not is_missing_torch(exc):
            raise
        rules, complete = runner.load_rules(runtime=False), False
    if show_all or code is None:
        if code is not None:
            raise UsageError("give either a rule CODE or --all, not both")
        if not show_all:
            raise UsageError("give a rule CODE (e.g. freezedsl rule FZ204) or --all")
        click.echo("\n".join(_rule_table(rules)))
        if not complete:
            click.echo(f"freezedsl: runtime rules (FZ3xx) not listed: {TORCH_NOTE}", err=True)
        return
    if not complete and code.strip().upper() not in rules:
        raise UsageError(f"{code!r} is not a static rule, and runtime rules (FZ3xx) {TORCH_NEED}")
    rule = _find_rule(code, rules)
    click.echo(rule.doc(), nl=False)


def _rule_table(rules: Mapping[str, Rule]) -> list[str]:
    ordered = [rules[c] for c in sorted(rules)]
    width = max((len(r.name) for r in ordered), default=0)
    return [f"{r.code}  {r.name:<{width}}  {r.severity.value:<7}  {r.summary}" for r in ordered]


def _find_rule(code: str, rules: Mapping[str, Rule]) -> Rule:
    wanted = code.strip()
    if wanted.upper() in rules:
        return rules[wanted.upper()]
    by_name = {r.name: r for r in rules.values()}
    if wanted.lower() in by_name:
        return by_name[wanted.lower()]
    prefixed = sorted(c for c in rules if c.startswith(wanted.upper()))
    if prefixed:
        listed = ", ".join(prefixed[:8]) + (", ..." if len(prefixed) > 8 else "")
        raise UsageError(f"{code!r} is a prefix of several codes ({listed}); give one code")
    candidates = difflib.get_close_matches(wanted.upper(), list(rules), n=1) or (
        difflib.get_close_matches(wanted.lower(), list(by_name), n=1)
    )
    hint = f"; did you mean {candidates[0]}?" if candidates else ""
    raise UsageError(f"unknown rule code {code!r}{hint}")
