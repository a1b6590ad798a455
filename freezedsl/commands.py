"""The ``freezedsl`` click command group: each command unpacks options and calls the library.

Exit codes: 0 ok, 1 a failed ``expect`` or check, 2 a usage or input error. Errors
are one clear message on stderr, never a traceback (set FREEZEDSL_DEBUG=1 to see one
for an internal error). ``check`` and ``fmt`` never import torch.

The entry point is :data:`freezedsl.cli.main`, which runs plain ``check`` and ``fmt``
invocations without importing click (they share their code with the commands here)
and hands everything else to the group defined here.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import click

from freezedsl.clitools import check_files, format_files, report_errors
from freezedsl.errors import UsageError
from freezedsl.planning.memory import optimizer_names

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(fn: F) -> F:
    """Turn library errors into one message and an exit code; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return report_errors(
            lambda: fn(*args, **kwargs), click.echo, (click.exceptions.Exit, click.ClickException, SystemExit)
        )

    return wrapper  # type: ignore[return-value]


class OneLineErrors(click.Group):
    """A click group whose usage errors are one line that leads with the problem.

    ``lint`` and ``rule`` are imported only when used, so ``check`` and ``fmt`` start fast.
    """

    lazy: ClassVar[dict[str, str]] = {"lint": "lint_command", "rule": "rule_command"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            import importlib

            module = importlib.import_module("freezedsl.lint.cli")
            self.add_command(getattr(module, self.lazy[cmd_name]), cmd_name)
        return super().get_command(ctx, cmd_name)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
        except click.exceptions.Abort:
            click.echo("freezedsl: aborted", err=True)
            sys.exit(1)
        except click.ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            where = ctx.command_path if ctx is not None else "freezedsl"
            click.echo(f"{where}: {exc.format_message()} (see '{where} --help')", err=True)
            sys.exit(exc.exit_code)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="freezedsl", prog_name="freezedsl")
def main() -> None:
    """Freeze and unfreeze parameters of PyTorch models with a small rule language.

    \b
    freezedsl show torchvision.models:resnet18          the module tree, with child indices
    freezedsl plan rules/resnet.frz torchvision.models:resnet18 --explain
    freezedsl apply rules/resnet.frz model.pt --arch torchvision.models:resnet18 -o frozen.pt
    freezedsl check rules/*.frz                         syntax and model-free checks
    freezedsl fmt rules/*.frz                           canonical formatting
    freezedsl lint train.py config                      lint a training script, then run it
    """


# ------------------------------------------------------------------ model options

_model_options = [
    click.option(
        "--arch",
        metavar="PKG.MODULE:CALLABLE",
        help="Architecture for a state-dict or .safetensors MODEL, e.g. torchvision.models:resnet18, "
        "or transformers:ClassName with --model-config.",
    ),
    click.option(
        "--model-config",
        metavar="CONFIG.JSON",
        default=None,
        help="Hugging Face config.json for a .safetensors or state-dict MODEL: builds the class it "
        "names (or the --arch transformers:ClassName) from it.",
    ),
    click.option(
        "--device",
        default="cpu",
        show_default=True,
        metavar="DEVICE",
        help="Device to load MODEL's weights onto and to build a real (non-meta) architecture on, "
        "e.g. cpu or cuda:0.",
    ),
    click.option(
        "--trust-pickle",
        is_flag=True,
        help="Allow MODEL to be a whole pickled module (torch.save(model)) or a TorchScript "
        "archive (torch.jit.save). Loading either runs code from the file: use it only for "
        "files you trust.",
    ),
]


def model_options(fn: F) -> F:
    for opt in reversed(_model_options):
        fn = opt(fn)
    return fn


def _load(
    model: str,
    arch: str | None,
    trust_pickle: bool,
    meta: bool | None = None,
    device: str = "cpu",
    model_config: str | None = None,
) -> Any:
    from freezedsl.loading import load_model

    loaded = load_model(
        model, arch=arch, trust_pickle=trust_pickle, meta=meta, map_location=device, config=model_config
    )
    for note in loaded.notes:
        click.echo(f"note: {note}", err=True)
    return loaded


def _color(ctx: click.Context, flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


# ------------------------------------------------------------------ plan / apply


def _plan_output(
    plan: Any, *, explain: bool, as_json: bool, color: bool, memory: Any = None, cost: Any = None
) -> None:
    if as_json:
        data = plan.to_dict()
        if memory is not None:
            data["memory"] = memory.to_dict()
        if cost is not None:
            data["cost"] = cost.to_dict()
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(plan.render(explain=explain, color=color), color=color)
        for part in (cost if cost is not None else memory,):  # the step estimate includes the memory one
            if part is not None:
                click.echo("")
                click.echo(part.render())


_input_options = [
    click.option(
        "--input",
        "input_shapes",
        multiple=True,
        metavar="SHAPE",
        help="Estimate a whole training step for a float input of this shape, e.g. 128x3x224x224 "
        "(repeat for several positional inputs).",
    ),
    click.option(
        "--input-ids",
        "input_ids",
        multiple=True,
        metavar="SHAPE",
        help="A token-id input (int64) of this shape, e.g. 8x512; passed before any --input.",
    ),
    click.option(
        "--dtype",
        type=click.Choice(["bf16", "fp16", "fp32"], case_sensitive=False),
        default=None,
        help="Cast weights and float inputs to this dtype for the step (default: the model's).",
    ),
]


def input_options(fn: F) -> F:
    for opt in reversed(_input_options):
        fn = opt(fn)
    return fn


def _input_specs(input_ids: tuple[str, ...], input_shapes: tuple[str, ...]) -> list[Any]:
    from freezedsl.planning.cost import InputSpec

    return [InputSpec.parse(s, ids=True) for s in input_ids] + [InputSpec.parse(s) for s in input_shapes]


@main.command("plan")
@click.argument("rules", type=click.Path(dir_okay=True, allow_dash=False))
@click.argument("model")
@model_options
@click.option("--explain", is_flag=True, help="List every parameter with the statement that decided it.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option(
    "--optimizer",
    type=click.Choice(optimizer_names(), case_sensitive=False),
    default=None,
    help="Also estimate the gradient and optimizer-state memory the freeze saves with this optimizer "
    "(with --input: the optimizer of the step estimate, default adamw).",
)
@click.option(
    "--epoch",
    type=click.IntRange(min=0),
    default=None,
    help="Show the state at this epoch: statements without `at` plus every `at epoch` one due by then.",
)
@click.option(
    "--step",
    type=click.IntRange(min=0),
    default=None,
    help="Show the state at this step (for a file that schedules by `at step`).",
)
@input_options
@click.option("--color/--no-color", default=None, help="Colour the output (default: on a terminal).")
@click.pass_context
@handle_errors
def plan_cmd(
    ctx: click.Context,
    rules: str,
    model: str,
    arch: str | None,
    model_config: str | None,
    device: str,
    trust_pickle: bool,
    explain: bool,
    as_json: bool,
    optimizer: str | None,
    epoch: int | None,
    step: int | None,
    input_shapes: tuple[str, ...],
    input_ids: tuple[str, ...],
    dtype: str | None,
    color: bool | None,
) -> None:
    """Show what RULES would do to MODEL, without changing anything.

    Every `at epoch` / `at step` phase is planned too, so a scheduled statement that
    does not fit MODEL fails now; --epoch N / --step N show the state at that time.

    With --input/--input-ids, also estimate one training step (on the meta device)
    with the freeze and with full fine-tuning: FLOPs, activations, gradients,
    optimizer state, where backward stops, and FZ340 findings.

    Exits 1 when an `expect` statement fails.
    """
    from freezedsl.api import load

    specs = _input_specs(input_ids, input_shapes)
    if dtype and not specs:
        raise UsageError("--dtype needs --input or --input-ids (it sets the dtype of the step estimate)")
    program = load(rules)
    if epoch is not None or step is not None:
        _check_time_option(program, epoch, step)
    loaded = _load(model, arch, trust_pickle, device=device, model_config=model_config)
    from freezedsl.pipeline.groups import check_phases

    timed = epoch is not None or step is not None
    plan = (program.at(epoch=epoch, step=step) if timed else program).plan(loaded.module)
    check_phases(program, loaded.module)
    memory = cost = None
    if optimizer:
        from freezedsl.planning.memory import estimate

        memory = estimate(plan, optimizer)
    if specs:
        from freezedsl.lint.cost import check_expensive_freeze
        from freezedsl.planning.cost import estimate_cost

        cost = estimate_cost(
            plan, loaded.module, specs, dtype=dtype, optimizer=optimizer, checks=(check_expensive_freeze,)
        )
    _plan_output(plan, explain=explain, as_json=as_json, color=_color(ctx, color), memory=memory, cost=cost)
    if not plan.ok:
        from freezedsl.application import check_expectations

        check_expectations(plan)


def _check_time_option(program: Any, epoch: int | None, step: int | None) -> None:
    """--epoch / --step must match the file's `at` unit (checked before the model loads)."""
    if epoch is not None and step is not None:
        raise UsageError("give --epoch or --step, not both")
    given = "epoch" if epoch is not None else "step"
    unit = program.schedule_unit
    name = program.path or "the rules"
    if unit is None:
        raise UsageError(f"--{given} shows a phase of a schedule, but {name} has no `at` statements; drop --{given}")
    if unit != given:
        raise UsageError(f"{name} schedules by {unit} (`at {unit} N`); pass --{unit}, not --{given}")


@main.command("apply")
@click.argument("rules", type=click.Path(dir_okay=True))
@click.argument("model")
@model_options
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=True, writable=False),
    help="Write the frozen model here (same kind as MODEL; a state dict gets a freeze manifest; "
    "a model folder gives a folder).",
)
@click.option("--explain", is_flag=True, help="List every parameter with the statement that decided it.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--color/--no-color", default=None, help="Colour the output (default: on a terminal).")
@click.pass_context
@handle_errors
def apply_cmd(
    ctx: click.Context,
    rules: str,
    model: str,
    arch: str | None,
    model_config: str | None,
    device: str,
    trust_pickle: bool,
    output: str | None,
    explain: bool,
    as_json: bool,
    quiet: bool,
    color: bool | None,
) -> None:
    """Apply RULES to MODEL atomically, print the plan, and write it with -o.

    \b
    MODEL is one of:
      torchvision.models:resnet18          an architecture (built on the meta device
                                           unless -o needs real weights)
      weights.pt --arch pkg.mod:builder    a state dict or checkpoint (weights_only load)
      scripted.pt --trust-pickle           a TorchScript archive (runs code from the file)
      model.pt --trust-pickle              a whole pickled module (runs code from the file)
      bert/                                a Hugging Face save_pretrained folder
      w.safetensors --arch pkg.mod:builder a .safetensors file (or --model-config
                                           config.json for a transformers model)

    Nothing is written when a rule or an `expect` fails; the input is never modified.
    """
    from freezedsl.api import load

    if output is not None:
        _check_output(output, rules, model)
    program = load(rules)
    loaded = _load(model, arch, trust_pickle, meta=False if output else None, device=device, model_config=model_config)
    plan = program.plan(loaded.module)
    if not quiet:
        _plan_output(plan, explain=explain, as_json=as_json, color=_color(ctx, color))
    from freezedsl.application import apply_plan

    apply_plan(plan)
    if output:
        from freezedsl.loading import save_model
        from freezedsl.manifest import make_manifest

        manifest = make_manifest(loaded.module, rules_text=program.text, rules_path=program.path)
        save_model(loaded, output, manifest=manifest)
        if loaded.kind == "arch":
            click.echo(
                f"warning: {model} is an architecture, so {output} holds freshly initialised "
                "(random) weights; pass a checkpoint with --arch to freeze trained weights",
                err=True,
            )
        if not quiet and not as_json:
            from freezedsl.loaders.writing import writes_sidecar
            from freezedsl.loading import sidecar_path

            side = f" and {sidecar_path(output)}" if writes_sidecar(loaded) else ""
            click.echo(f"wrote {output}{side}")


def _check_output(output: str, *inputs: str) -> None:
    """-o must name a new file: never an input (the rule file included) or nothing."""
    if not output.strip():
        raise UsageError("-o needs a file path; got an empty string")
    out = os.path.realpath(output)
    for given in inputs:
        if os.path.exists(given) and os.path.exists(output):
            same = os.path.samefile(given, output)
        else:
            same = out == os.path.realpath(given)
        if same:
            raise UsageError(f"-o {output} is an input ({given}); write the frozen model to a new file")
    model = inputs[-1]
    if os.path.isdir(model):  # a model folder is written as a folder
        from freezedsl.loaders.hffiles import is_hf_folder

        if is_hf_folder(model):
            from freezedsl.loaders.hfwrite import check_folder_target

            check_folder_target(output, model)
            return
    from freezedsl.fsutil import check_target

    check_target(output, probe=True)  # a read-only folder or a too-long name fails now


# ------------------------------------------------------------------ bench


@main.command("bench")
@click.argument("rules", type=click.Path(dir_okay=True, allow_dash=False))
@click.argument("model")
@model_options
@input_options
@click.option("--steps", type=click.IntRange(min=1), default=10, show_default=True, help="Timed steps.")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True, help="Untimed steps first.")
@click.option(
    "--optimizer",
    type=click.Choice(optimizer_names(), case_sensitive=False),
    default="adamw",
    show_default=True,
    help="Optimizer of the training steps.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def bench_cmd(
    rules: str,
    model: str,
    arch: str | None,
    model_config: str | None,
    trust_pickle: bool,
    input_shapes: tuple[str, ...],
    input_ids: tuple[str, ...],
    dtype: str | None,
    device: str,
    steps: int,
    warmup: int,
    optimizer: str,
    as_json: bool,
) -> None:
    """Train MODEL for real with RULES' freeze and without it; compare with the estimate.

    Synthetic inputs, loss output.float().sum(); step time is the median of --steps
    steps after --warmup. Peak memory: CUDA's max_memory_allocated minus the weights;
    on CPU a traced step on the real tensors. MODEL's weights are random when it is an
    architecture; nothing is written.
    """
    from freezedsl.api import load
    from freezedsl.bench import run_bench

    specs = _input_specs(input_ids, input_shapes)
    if not specs:
        raise UsageError("bench needs an input: --input SHAPE (floats) or --input-ids SHAPE (token ids)")
    program = load(rules)
    loaded = _load(model, arch, trust_pickle, meta=False, model_config=model_config)
    result = run_bench(
        program.plan(loaded.module), loaded.module, specs,
        device=device, steps=steps, warmup=warmup, dtype=dtype, optimizer=optimizer, copy=False,
    )
    click.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.render())


# ------------------------------------------------------------------ show


@main.command("show")
@click.argument("model")
@model_options
@click.option("--depth", type=click.IntRange(min=1), default=None, help="Show only this many levels.")
@click.option("--params", "show_params", is_flag=True, help="List every parameter under its module.")
@click.option("--root", metavar="PATH", default=None, help="Show only the subtree at this module path (e.g. blocks.3).")
@click.option(
    "--collapse/--no-collapse",
    default=True,
    help="Fold runs of identical sibling modules into one row [i..j] (default) or list each.",
)
@click.option("--color/--no-color", default=None, help="Colour the output (default: on a terminal).")
@click.pass_context
@handle_errors
def show_cmd(
    ctx: click.Context,
    model: str,
    arch: str | None,
    model_config: str | None,
    device: str,
    trust_pickle: bool,
    depth: int | None,
    show_params: bool,
    root: str | None,
    collapse: bool,
    color: bool | None,
) -> None:
    """Print MODEL's module tree: child indices for children[...] and PATH[...],
    full paths, parameter counts and trainable/frozen state."""
    from freezedsl.planning.index import build_index
    from freezedsl.planning.tree import render_tree

    loaded = _load(model, arch, trust_pickle, device=device, model_config=model_config)
    use_color = _color(ctx, color)
    text = render_tree(
        build_index(loaded.module), depth=depth, params=show_params, color=use_color, root=root, collapse=collapse
    )
    click.echo(text, color=use_color)


# ------------------------------------------------------------------ check / fmt


@main.command("check")
@click.argument("rules", nargs=-1, required=True)
@handle_errors
def check_cmd(rules: tuple[str, ...]) -> None:
    """Check rule files for syntax errors and model-free problems (fast; no torch).

    Exits 2 on a syntax error, 1 when a model-free check finds a problem.
    """
    check_files(rules, click.echo)


@main.command("fmt")
@click.argument("rules", nargs=-1, required=True)
@click.option("--check", "check_only", is_flag=True, help="Write nothing; exit 1 if a file is not formatted.")
@click.option("--diff", is_flag=True, help="Write nothing; print a unified diff of the changes.")
@handle_errors
def fmt_cmd(rules: tuple[str, ...], check_only: bool, diff: bool) -> None:
    """Rewrite rule files in the canonical form ('-' reads stdin, writes stdout).

    Comments and single blank lines are kept; every file is parsed before any is written.
    """
    format_files(rules, check_only, diff, click.echo)


if __name__ == "__main__":  # pragma: no cover
    main()
