"""``dyncc`` command line: thin click commands over :mod:`dyncc.api`.

Exit status: 0 valid / built, 1 invalid spec or drift found, 2 usage error (click's own).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from dyncc import __version__
from dyncc.diagnostics import Diagnostic, DiagnosticError

EXIT_INVALID = 1


def _source_line(diagnostic: Diagnostic, cache: dict) -> str | None:
    loc = diagnostic.location
    if loc is None:
        return None
    if loc.file not in cache:
        try:
            cache[loc.file] = Path(loc.file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            cache[loc.file] = None
    lines = cache[loc.file]
    return lines[loc.line - 1] if lines and 0 < loc.line <= len(lines) else None


def _print(diagnostics, err: bool = True) -> None:
    cache: dict = {}
    for d in diagnostics:
        click.echo(d.render(_source_line(d, cache)), err=err)


def _fail(diagnostics: list[Diagnostic]) -> None:
    _print(diagnostics)
    errors = sum(d.is_error for d in diagnostics)
    click.echo(f"dyncc: {errors} error(s)", err=True)
    sys.exit(EXIT_INVALID)


class DynccGroup(click.Group):
    """Every command's file-system failures (an -o path that can't be written) end as coded errors."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OSError as exc:
            where = exc.filename or "output"
            _fail(
                [
                    Diagnostic(
                        "DYN505",
                        f"cannot write {where}: {exc.strerror or type(exc).__name__}",
                        hint="choose an output path in a writable, existing directory",
                    )
                ]
            )


@click.group(cls=DynccGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dyncc")
def main() -> None:
    """Compile one topology spec into Dynamo + TensorRT-LLM deployments."""


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one machine-readable report for CI.",
)
def validate(specs: tuple[str, ...], fmt: str) -> None:
    """Check SPECS; exit 1 if any has an error."""
    from dyncc.api import validate as validate_spec

    results = [validate_spec(path) for path in specs]
    if fmt == "json":
        report = {
            "valid": all(r.ok for r in results),
            "files": [
                {"file": r.file, "valid": r.ok, "diagnostics": [d.to_json() for d in r.diagnostics]} for r in results
            ],
        }
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
@click.option(
    "-t",
    "--target",
    "targets",
    multiple=True,
    default=("all",),
    show_default=True,
    type=click.Choice(_target_choices()),
    help="Target to build; repeat for several.",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    default="build",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Output directory; each target writes OUT/<target>/.",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the files on disk differ from a fresh build.")
@click.option(
    "--engine",
    type=click.Choice(["trtllm", "mocker"]),
    default=None,
    help="Worker engine of the local and slurm targets (default: the spec's).",
)
@click.option(
    "--dynamo-version",
    default=None,
    help="Deploy this Dynamo version instead of the spec's (e.g. 0.5.1: the 2025 profile).",
)
def build(
    spec: str, targets: tuple[str, ...], out_dir: str, check: bool, engine: str | None, dynamo_version: str | None
) -> None:
    """Compile SPEC and write each target's files."""
    from dyncc.api import build as build_spec

    try:
        result = build_spec(spec, targets, out_dir, check=check, engine=engine, dynamo_version=dynamo_version)
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
@click.option(
    "--engine",
    type=click.Choice(["trtllm", "mocker"]),
    default=None,
    help="mocker: Dynamo's mock engine instead of TensorRT-LLM (runs without a GPU).",
)
@click.option("-o", "--out", "out_dir", default="build", show_default=True, type=click.Path(file_okay=False))
@click.option(
    "--smoke",
    is_flag=True,
    help="Once ready, send a plain and a streaming chat completion, stop, and exit 0 if both succeed.",
)
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
    sys.exit(run_up(output.directory / "launch.sh", wait, smoke, plan.served_name, echo=lambda line: click.echo(line)))


def _compile(spec: str):
    from dyncc.compiler import compile_spec
    from dyncc.spec import load_spec

    try:
        return compile_spec(load_spec(spec))
    except DiagnosticError as exc:
        _fail(exc.diagnostics)


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

    from dyncc import views

    compilation = _compile(spec)
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
        Path(output).write_bytes(data)
    else:
        sys.stdout.buffer.write(data)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
def explain(spec: str) -> None:
    """Placement (node x GPU -> pool, replica, rank) and each engine value's origin."""
    from dyncc.views import explain as explain_compilation

    click.echo(explain_compilation(_compile(spec)), nl=False)


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None)
def schema(output: str | None) -> None:
    """The spec's JSON Schema, for editors (yaml-language-server) and CI."""
    from dyncc.spec.schema import schema_text

    text = schema_text()
    if output:
        Path(output).write_text(text)
    else:
        click.echo(text, nl=False)


@main.command()
@click.option(
    "--template",
    type=click.Choice(["agg", "disagg", "disagg-router", "wide-ep", "mtp", "eagle"]),
    default="agg",
    show_default=True,
)
@click.option("-n", "--name", default=None, help="The deployment's name (a DNS label).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write here instead of stdout.")
def init(template: str, name: str | None, output: str | None) -> None:
    """A commented starter spec that validates as written."""
    from dyncc.spec.schema import starter_text

    try:
        text = starter_text(template, name)
    except DiagnosticError as exc:
        _fail(exc.diagnostics)
    if output:
        if Path(output).exists():
            click.echo(f"dyncc: {output} exists; not overwriting it", err=True)
            sys.exit(EXIT_INVALID)
        Path(output).write_text(text)
        click.echo(f"wrote {output}: edit it, then `dyncc validate {output}`", err=True)
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
def diff(old: str, new: str) -> None:
    """What changes between two specs, and on the cluster: replicas, GPUs, flags, engine keys, files."""
    from dyncc.diff import diff_compilations

    for line in diff_compilations(_compile(old), _compile(new)):
        click.echo(line)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out_dir", default="sweep", show_default=True, type=click.Path(file_okay=False))
@click.option(
    "-t",
    "--target",
    "targets",
    multiple=True,
    default=("local",),
    show_default=True,
    type=click.Choice(_target_choices()),
)
@click.option("--engine", type=click.Choice(["trtllm", "mocker"]), default=None)
@click.option(
    "--run",
    "run_points",
    is_flag=True,
    help="Start, benchmark (aiperf) and stop every valid point in turn (local target); write results.csv/.md/.png.",
)
@click.option("--timeout", type=float, default=300, show_default=True, help="Readiness timeout per point (s).")
def sweep(
    spec: str, out_dir: str, targets: tuple[str, ...], engine: str | None, run_points: bool, timeout: float
) -> None:
    """Expand SPEC's `sweep:` lists into one spec per combination; validate and build each."""
    from dyncc import sweep as sweeps

    spec_path = Path(spec)
    try:
        points = sweeps.expand(spec_path)
    except DiagnosticError as exc:
        _fail(exc.diagnostics)
    out = Path(out_dir)
    targets_list = list(dict.fromkeys([*targets, *(["local"] if run_points else [])]))
    sweeps.build_points(points, out, targets_list, engine, spec_path.parent)
    for p in points:
        status = "built" if p.valid else "invalid: " + "; ".join(p.messages[:2])
        click.echo(f"p{p.index} [{p.label()}]: {status}")
    click.echo(f"index: {out / 'index.md'}")
    if not run_points:
        return
    valid = [p for p in points if p.valid]
    if valid and any(not (p.directory / "local" / "bench.sh").exists() for p in valid):
        click.echo("dyncc sweep --run: the spec needs a `benchmark:` section", err=True)
        sys.exit(EXIT_INVALID)
    with click.progressbar(length=len(valid), label="running points", file=sys.stderr) as bar:
        sweeps.run_points(points, out, timeout=timeout, progress=lambda p: bar.update(1))
    failed = [p for p in valid if not p.results]
    click.echo(f"results: {out / 'results.md'}, {out / 'results.csv'}, {out / 'results.png'}")
    if failed:
        for p in failed:
            click.echo(f"p{p.index}: {', '.join(p.codes)} {' '.join(p.messages)[:300]}", err=True)
        sys.exit(EXIT_INVALID)


if __name__ == "__main__":
    main()
