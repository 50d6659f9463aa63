"""The commands that write or edit spec text: migrate, import, and the language server."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dyncc.cli.group import main
from dyncc.cli.report import EXIT_INVALID, fail, say, show
from dyncc.diagnostics import DiagnosticError


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write here (a new file).")
@click.option(
    "--to",
    "to",
    default=None,
    metavar="VERSION",
    help="Rewrite it for this Dynamo release: dynamo.version set, what the release dropped rewritten, what it "
    "refuses listed (exit 1, nothing written).",
)
def migrate(spec: str, output: str | None, to: str | None) -> None:
    """Rewrite a spec's old forms as the current ones, and with --to for another Dynamo release (comments
    kept); the changes (path, old -> new, why) go to stderr, the spec to stdout or --output."""
    from dyncc.output import write_new_file
    from dyncc.tools.migrate import migrate_file

    try:
        result = migrate_file(spec, to)
    except DiagnosticError as exc:
        fail(exc.diagnostics)
    unchanged = "nothing to change: the spec is in the current form" + (f", for Dynamo {to}" if to else "")
    for change in result.changes or (unchanged,):
        say(f"{spec}: {change}", err=True)
    if not result.ok:
        if result.refused:
            say(f"{spec}: Dynamo {to} refuses, and no rewrite keeps the deployment's behaviour:", err=True)
            show(result.refused)
        if result.invalid:
            say(f"{spec}: invalid at its own Dynamo version too:", err=True)
            show(result.invalid)
        errors = len(result.refused) + len(result.invalid)
        say(f"dyncc: {errors} error(s); nothing written", err=True)
        sys.exit(EXIT_INVALID)
    if to:
        show(result.diagnostics)
    try:
        if output:
            write_new_file(Path(output), result.text)
        else:
            say(result.text, nl=False)
    except DiagnosticError as exc:
        fail(exc.diagnostics)


@main.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write the spec here (a new file).")
def import_(files: tuple[str, ...], output: str | None) -> None:
    """A dyncc spec from a DynamoGraphDeployment (and its engine ConfigMap or files); what cannot be
    represented is listed as coded warnings."""
    from dyncc.tools.importer import import_dgd

    try:
        result = import_dgd(files, base_dir=Path(output).parent if output else Path.cwd())
    except DiagnosticError as exc:
        fail(exc.diagnostics)
    show(result.warnings)
    if output:
        from dyncc.output import write_new_file

        try:
            write_new_file(Path(output), result.text)
        except DiagnosticError as exc:
            fail(exc.diagnostics)
        say(f"wrote {output}: `dyncc validate {output}`", err=True)
    else:
        click.echo(result.text, nl=False)


@main.command()
def lsp() -> None:
    """A language server on stdin/stdout: dyncc's diagnostics, hover and completion in the editor."""
    try:
        import pygls  # noqa: F401
    except ImportError:
        say("dyncc lsp needs pygls: pip install 'dyncc[lsp]'", err=True)
        sys.exit(EXIT_INVALID)
    from dyncc.tools.lsp import main as serve

    serve()
