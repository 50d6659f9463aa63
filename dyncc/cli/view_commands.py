"""The commands that show what a spec compiles to: graph, explain, explain-code, schema, diff."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import click

from dyncc.cli.group import compile_or_fail, main
from dyncc.cli.report import EXIT_INVALID, fail, say
from dyncc.diagnostics import DiagnosticError

# The invalid examples explain-code shows: beside the package in a checkout (not shipped in a wheel).
EXAMPLES_DIR = Path(__file__).resolve().parent.parent.parent / "examples" / "invalid"


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot", "text", "svg", "png"]),
    default="text",
    show_default=True,
    help="svg/png need Graphviz's `dot`.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write here instead of stdout.")
def graph(spec: str, fmt: str, output: str | None) -> None:
    """Draw SPEC's topology: frontend and router, pools, KV transfer and KV events, planner."""
    import shutil
    import subprocess

    from dyncc.tools import views

    compilation = compile_or_fail(spec)
    if fmt in ("svg", "png"):
        dot = shutil.which("dot")
        if dot is None:
            click.echo("dyncc: --format svg/png needs Graphviz (`dot`); use --format dot or mermaid", err=True)
            sys.exit(EXIT_INVALID)
        data = subprocess.run(
            [dot, f"-T{fmt}"], input=views.render_dot(compilation.graph).encode(), capture_output=True, check=True
        ).stdout
    else:
        renderer = {"mermaid": views.render_mermaid, "dot": views.render_dot, "text": views.render_text}[fmt]
        data = renderer(compilation.graph).encode()
    if output:
        from dyncc.output import replace_file

        replace_file(Path(output), data)  # atomically; never through a symlink or into a FIFO (DYN507)
    else:
        sys.stdout.buffer.write(data)


@main.command(short_help="Placement (node x GPU -> pool, replica, rank) and each engine value's origin.")
@click.argument("spec", type=click.Path(dir_okay=False))
def explain(spec: str) -> None:
    """Placement (node x GPU -> pool, replica, rank) and each engine value's origin."""
    from dyncc.codes import lookup
    from dyncc.tools.views import explain as explain_compilation

    if not Path(spec).exists() and lookup(spec.upper()) is not None:  # `explain DYN014`: a code, not a spec
        raise click.UsageError(
            f"{spec} is a diagnostic code, not a spec file: `dyncc explain-code {spec.upper()}` says what it means"
        )

    say(explain_compilation(compile_or_fail(spec)), nl=False)


@main.command("explain-code", short_help="What a diagnostic code means, with a spec that triggers it.")
@click.argument("code")
def explain_code(code: str) -> None:
    """What diagnostic CODE (e.g. DYN205) means, and the example spec that triggers it."""
    from dyncc.codes import code_range, example_for, lookup

    info = lookup(code)
    if info is None:
        raise click.UsageError(
            f"{code!r} is not a dyncc diagnostic code (they run {code_range()}, with gaps; each is listed in "
            "docs/error-codes.md)"
        )
    say(f"{info.code} ({info.severity}, {info.family}): {info.title}\n")
    click.echo(textwrap.fill(info.explanation, width=100))
    example = example_for(info.code, EXAMPLES_DIR)
    if example is not None:
        say(f"\nExample ({example.relative_to(EXAMPLES_DIR.parent)}):\n")
        say(example.read_text(encoding="utf-8"), nl=False)
    elif info.no_example_because:
        say(f"\nNo example spec: {info.no_example_because}")


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None)
def schema(output: str | None) -> None:
    """The spec's JSON Schema, for editors (yaml-language-server) and CI."""
    from dyncc.deployment import schema_text

    text = schema_text()
    if output:
        from dyncc.output import replace_file

        replace_file(Path(output), text.encode())  # atomically; never through a symlink or into a FIFO (DYN507)
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False), required=False)
@click.option(
    "--old-version",
    default=None,
    metavar="VERSION",
    help="Build OLD for this Dynamo release (as `dyncc migrate --to` rewrites it) instead of its own.",
)
@click.option(
    "--new-version",
    default=None,
    metavar="VERSION",
    help="Build NEW (OLD when NEW is not given) for this Dynamo release, as `dyncc migrate --to` rewrites it.",
)
@click.option("--exit-code", is_flag=True, help="Exit 1 when anything differs (as `git diff --exit-code`), for CI.")
def diff(old: str, new: str | None, old_version: str | None, new_version: str | None, exit_code: bool) -> None:
    """What changes between two specs, and on the cluster: replicas, GPUs, flags, engine keys, files.
    With one spec and --new-version: what changes when it is deployed on another Dynamo release."""
    from dyncc.tools.diff import compile_for_release, diff_compilations

    if new is None and new_version is None:
        raise click.UsageError("give NEW, or --new-version to compare OLD with itself on another Dynamo release")
    try:
        before = compile_for_release(old, old_version)
        after = compile_for_release(new or old, new_version)
    except DiagnosticError as exc:
        fail(exc.diagnostics)
    found = diff_compilations(before, after)
    for line in found.lines:
        say(line)
    if exit_code and found.changed:
        sys.exit(EXIT_INVALID)
