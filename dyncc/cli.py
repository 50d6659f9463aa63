"""``dyncc`` command line: thin click commands over :mod:`dyncc.api`.

Exit status: 0 valid / built, 1 invalid spec or drift found, 2 usage error (click's own).
"""

from __future__ import annotations

import json
import sys

import click

from dyncc import __version__
from dyncc.diagnostics import Diagnostic, DiagnosticError

EXIT_INVALID = 1


def _print(diagnostics, err: bool = True) -> None:
    for d in diagnostics:
        click.echo(d.render(), err=err)


def _fail(diagnostics: list[Diagnostic]) -> None:
    _print(diagnostics)
    errors = sum(d.is_error for d in diagnostics)
    click.echo(f"dyncc: {errors} error(s)", err=True)
    sys.exit(EXIT_INVALID)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dyncc")
def main() -> None:
    """Compile one topology spec into Dynamo + TensorRT-LLM deployments."""


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one machine-readable report for CI.")
def validate(specs: tuple[str, ...], fmt: str) -> None:
    """Check SPECS; exit 1 if any has an error."""
    from dyncc.api import validate as validate_spec

    results = [validate_spec(path) for path in specs]
    if fmt == "json":
        report = {"valid": all(r.ok for r in results),
                  "files": [{"file": r.file, "valid": r.ok, "diagnostics": [d.to_json() for d in r.diagnostics]}
                            for r in results]}
        click.echo(json.dumps(report, indent=2))
    else:
        for r in results:
            _print(r.diagnostics, err=not r.ok)
            errors = sum(d.is_error for d in r.diagnostics)
            click.echo(f"{r.file}: " + ("valid" if r.ok else f"invalid ({errors} error(s))"), err=not r.ok)
    sys.exit(0 if all(r.ok for r in results) else EXIT_INVALID)


def _target_choices() -> list[str]:
    from dyncc.targets import target_names

    return [*target_names(), "all"]


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-t", "--target", "targets", multiple=True, default=("all",), show_default=True,
              type=click.Choice(_target_choices()), help="Target to build; repeat for several.")
@click.option("-o", "--out", "out_dir", default="build", show_default=True, type=click.Path(file_okay=False),
              help="Output directory; each target writes OUT/<target>/.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the files on disk differ from a fresh build.")
@click.option("--engine", type=click.Choice(["trtllm", "mocker"]), default=None,
              help="Local target's worker engine (default: the spec's local.engine).")
def build(spec: str, targets: tuple[str, ...], out_dir: str, check: bool, engine: str | None) -> None:
    """Compile SPEC and write each target's files."""
    from dyncc.api import build as build_spec

    try:
        result = build_spec(spec, targets, out_dir, check=check, engine=engine)
    except DiagnosticError as exc:
        _fail(exc.diagnostics)
    _print(result.diagnostics)
    stale = False
    for output in result.outputs:
        if check:
            for rel in output.drift:
                click.echo(f"drift: {output.directory / rel}")
            stale = stale or bool(output.drift)
        else:
            click.echo(f"{output.target}: wrote {len(output.files)} file(s) to {output.directory}")
    if check:
        click.echo("dyncc: generated files are stale; run `dyncc build` again" if stale else "dyncc: up to date")
        sys.exit(EXIT_INVALID if stale else 0)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--engine", type=click.Choice(["trtllm", "mocker"]), default=None,
              help="mocker: Dynamo's mock engine instead of TensorRT-LLM (runs without a GPU).")
@click.option("-o", "--out", "out_dir", default="build", show_default=True, type=click.Path(file_okay=False))
@click.option("--smoke", is_flag=True, help="Once ready, send a plain and a streaming chat completion, stop, "
                                            "and exit 0 if both succeed.")
@click.option("--timeout", type=float, default=None, help="Seconds to wait for readiness (default: the spec's).")
def up(spec: str, engine: str | None, out_dir: str, smoke: bool, timeout: float | None) -> None:
    """Build SPEC for the local target and run it until Ctrl-C."""
    from dyncc.api import build as build_spec
    from dyncc.run import up as run_up

    try:
        result = build_spec(spec, ["local"], out_dir, engine=engine)
    except DiagnosticError as exc:
        _fail(exc.diagnostics)
    _print(result.diagnostics)
    (output,) = result.outputs
    plan = result.compilation.plan
    wait = timeout if timeout is not None else plan.local.ready_timeout_s + 30
    sys.exit(run_up(output.directory / "launch.sh", wait, smoke, plan.served_name,
                    echo=lambda line: click.echo(line)))


if __name__ == "__main__":
    main()
