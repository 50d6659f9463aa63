"""The command group, its error boundary, and the options and helpers the commands share."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from dyncc import __version__
from dyncc.cli.lazy_commands import LAZY_COMMANDS
from dyncc.cli.report import fail, internal_error, os_error_diagnostic, reader_gone, stdout_reader_gone
from dyncc.diagnostics import DiagnosticError
from dyncc.engines import engine_names

if TYPE_CHECKING:
    from dyncc.compiler import Compilation


class DynccCommand(click.Command):
    """Every command's failures end as coded errors (exit 1) or one internal-error line (exit 3)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except DiagnosticError as exc:
            fail(exc.diagnostics)
        except BrokenPipeError as exc:
            if stdout_reader_gone():
                reader_gone()
            fail([os_error_diagnostic(exc, ctx.params)])
        except OSError as exc:
            fail([os_error_diagnostic(exc, ctx.params)])
        except Exception as exc:  # noqa: BLE001 - the boundary: anything else is a bug, shown without a traceback
            internal_error(exc)


class DynccGroup(click.Group):
    """The command group; the commands of other modules are imported when one of them is run or listed."""

    command_class = DynccCommand

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            LAZY_COMMANDS[cmd_name](self)
        return self.commands.get(cmd_name)


def finite_seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A timeout is a positive, finite number of seconds (``inf``/``nan`` would overflow the wait)."""
    if value is not None and not (math.isfinite(value) and 0 < value <= 7 * 24 * 3600):
        raise click.BadParameter(f"{value!r} is not a number of seconds between 0 and 604800")
    return value


@click.group(cls=DynccGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dyncc")
def main() -> None:
    """Compile one topology spec into Dynamo + TensorRT-LLM deployments."""


def _target_choices() -> list[str]:
    from dyncc.targets import target_names

    return [*target_names(), "all"]


def target_option(help_text: str, default: str = "all") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`-t/--target`, repeatable; `all` is every registered target that can run the spec."""
    return click.option(
        "-t",
        "--target",
        "targets",
        multiple=True,
        default=(default,),
        show_default=True,
        type=click.Choice(_target_choices()),
        help=help_text,
    )


def dynamo_version_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--dynamo-version`: the command works for that Dynamo release instead of the spec's."""
    return click.option("--dynamo-version", default=None, metavar="VERSION", help=help_text)


def runtime_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--engine` and `--timing`: what the workers run, and how long the mock engine's steps take."""
    command = click.option(
        "--timing",
        default=None,
        metavar="MODEL",
        help="The mock engine's step times, over the spec's `mocker_timing`: `aiconfigurator` (each pool as "
        "AIConfigurator estimates it on cluster.gpu_type; cached), a timing NPZ, or `builtin`.",
    )(command)
    return click.option(
        "--engine",
        type=click.Choice(list(engine_names())),
        default=None,
        help="Worker runtime, over the spec's `worker_runtime` (mocker: Dynamo's mock engine, no GPU).",
    )(command)


def aic_progress() -> Callable[[float, str], None]:
    """Progress lines while AIConfigurator times the mock engine; its runner is imported only when it runs
    (a build of real engines or builtin timing never does)."""
    shown: list[Callable[[float, str], None]] = []

    def progress(elapsed: float, note: str) -> None:
        if not shown:
            from dyncc.aic.runner import stderr_progress

            shown.append(stderr_progress("dyncc: AIConfigurator estimating the mock engine's timing"))
        shown[0](elapsed, note)

    return progress


def compile_or_fail(spec: str) -> Compilation:
    """SPEC loaded and compiled; its errors end the command (exit 1)."""
    from dyncc.compiler import compile_spec
    from dyncc.deployment import load_spec

    try:
        return compile_spec(load_spec(spec))
    except DiagnosticError as exc:
        fail(exc.diagnostics)
