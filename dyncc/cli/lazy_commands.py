"""The commands built on demand.

Their modules (AIConfigurator's runner, the deployment lifecycle) are imported only when one of these commands
is run or `--help` lists them: `dyncc build` and `dyncc validate` never import them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dyncc.cli.report import fail
from dyncc.diagnostics import DiagnosticError


def _add_init(group: click.Group) -> None:
    """Add ``init``: its --from-sla options come from :mod:`dyncc.tools.sla`."""
    from dyncc.tools.sla import init_from_sla_command, with_from_sla_options

    @group.command()
    @click.option(
        "--template",
        type=click.Choice(["agg", "disagg", "disagg-router", "wide-ep", "mtp", "eagle"]),
        default="agg",
        show_default=True,
    )
    @click.option("-n", "--name", default=None, help="The deployment's name (a DNS label).")
    @click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write here instead of stdout.")
    @with_from_sla_options
    def init(template: str, name: str | None, output: str | None, **sla: Any) -> None:
        """A commented starter spec that validates as written; --from-sla: the topology AIConfigurator picks."""
        if sla.get("from_sla"):
            try:
                init_from_sla_command(name=name, output=output, **sla)
            except DiagnosticError as exc:
                fail(exc.diagnostics)
            return
        from dyncc.spec.schema import starter_text

        try:
            text = starter_text(template, name)
        except DiagnosticError as exc:
            fail(exc.diagnostics)
        if output:
            from dyncc.output import write_new_file

            try:
                write_new_file(Path(output), text)  # never over an existing file, nor through a (dangling) symlink
            except DiagnosticError as exc:
                fail(exc.diagnostics)
            click.echo(f"wrote {output}: edit it, then `dyncc validate {output}`", err=True)
        else:
            click.echo(text, nl=False)


def _add_sla_commands(group: click.Group) -> None:
    from dyncc.tools.sla import register

    register(group)  # estimate


def _add_lifecycle_commands(group: click.Group) -> None:
    from dyncc.tools.lifecycle.commands import register

    register(group)  # status, logs, down, bench


LAZY_COMMANDS: dict[str, Callable[[click.Group], None]] = {
    "init": _add_init,
    "estimate": _add_sla_commands,
    **dict.fromkeys(("status", "logs", "down", "bench"), _add_lifecycle_commands),
}
