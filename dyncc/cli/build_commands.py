"""The commands that check, build and run a spec: validate, build, up, sweep."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dyncc.cli.group import aic_progress, dynamo_version_option, finite_seconds, main, runtime_options, target_option
from dyncc.cli.report import EXIT_INVALID, fail, os_error_diagnostic, say, show
from dyncc.diagnostics import DiagnosticError, Location

if TYPE_CHECKING:
    from dyncc.api import Validation


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github", "sarif", "junit"]),
    default="text",
    show_default=True,
    help="json: one machine-readable report; github: workflow annotations; sarif: SARIF 2.1.0; junit: JUnit XML.",
)
@target_option("Run this target's checks too; `all`: every target that can run the spec (the others are named).")
@dynamo_version_option(
    "Check the specs as deploying this Dynamo version instead of their own (as `dyncc build --dynamo-version`)."
)
def validate(specs: tuple[str, ...], fmt: str, targets: tuple[str, ...], dynamo_version: str | None) -> None:
    """Check SPECS and the checks of the targets they are meant for; exit 1 if any has an error."""
    results = [_validate_one(path, targets, dynamo_version) for path in specs]
    if fmt in ("github", "sarif", "junit"):
        from dyncc.tools.formats import render

        click.echo(render(fmt, results), nl=False)
    elif fmt == "json":
        report = {
            "valid": all(r.ok for r in results),
            "files": [
                {"file": r.file, "valid": r.ok, "diagnostics": [d.to_json() for d in r.diagnostics]} for r in results
            ],
        }
        click.echo(json.dumps(report, indent=2))
    else:
        for r in results:
            show(r.diagnostics, err=not r.ok)
            errors = sum(d.is_error for d in r.diagnostics)
            say(f"{r.file}: " + ("valid" if r.ok else f"invalid ({errors} error(s))"), err=not r.ok)
    sys.exit(0 if all(r.ok for r in results) else EXIT_INVALID)


def _validate_one(path: str, targets: tuple[str, ...], dynamo_version: str | None) -> Validation:
    """One file's result; a file that cannot be read is a diagnostic of its own, so the others (and the
    JSON report) are still given."""
    from dyncc.api import Validation
    from dyncc.api import validate as validate_spec

    try:
        return validate_spec(path, targets, dynamo_version)
    except OSError as exc:
        diagnostic = os_error_diagnostic(exc, {})
        return Validation(path, (diagnostic.located(Location(path, 1, 1)),))


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@target_option("Target to build; repeat for several.")
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
@runtime_options
@dynamo_version_option("Deploy this Dynamo version instead of the spec's (e.g. 0.5.1: the 2025 profile).")
def build(
    spec: str,
    targets: tuple[str, ...],
    out_dir: str,
    check: bool,
    engine: str | None,
    timing: str | None,
    dynamo_version: str | None,
) -> None:
    """Compile SPEC and write each target's files."""
    from dyncc.api import build as build_spec

    try:
        result = build_spec(
            spec,
            targets,
            out_dir,
            check=check,
            engine=engine,
            dynamo_version=dynamo_version,
            timing=timing,
            progress=aic_progress(),
        )
    except DiagnosticError as exc:
        fail(exc.diagnostics)
    show(result.diagnostics)
    stale = False
    for output in result.outputs:
        if check:
            for rel in output.drift:
                say(f"drift: {output.directory / rel}")
            stale = stale or bool(output.drift)
        else:
            say(f"{output.target}: wrote {len(output.files)} file(s) to {output.directory}")
    if check:
        click.echo("dyncc: generated files are stale; run `dyncc build` again" if stale else "dyncc: up to date")
        sys.exit(EXIT_INVALID if stale else 0)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option(
    "-t",
    "--target",
    type=click.Choice(["local", "slurm", "k8s"]),
    default="local",
    show_default=True,
    help="local: this machine; slurm: sbatch the job; k8s: kubectl apply -k (needs a reachable cluster).",
)
@runtime_options
@click.option(
    "-o",
    "--out",
    "out_dir",
    default="build",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Builds into OUT/up-<spec name>/ (OUT/up-<spec name>-<target>/ for slurm and k8s; never what "
    "`dyncc build` writes).",
)
@click.option(
    "--smoke",
    is_flag=True,
    help="Once ready, send a plain and a streaming chat completion (16 tokens each, ignore_eos), stop, "
    "and exit 0 if both succeed.",
)
@click.option(
    "--detach",
    is_flag=True,
    help="Once ready and smoke-tested, leave it running and exit; `dyncc status|logs|down DIR` find it.",
)
@click.option(
    "--bench",
    is_flag=True,
    help="Once ready, run the SLA gate (`dyncc bench`), then stop (unless --detach); exit 1 if it fails.",
)
@click.option(
    "--timeout",
    type=float,
    default=None,
    callback=finite_seconds,
    help="Seconds to wait for readiness (default: the spec's; on Slurm pending time counts, 600 s more).",
)
@dynamo_version_option("Deploy this Dynamo version instead of the spec's (as `dyncc build --dynamo-version`).")
def up(
    spec: str,
    target: str,
    engine: str | None,
    timing: str | None,
    out_dir: str,
    smoke: bool,
    detach: bool,
    bench: bool,
    timeout: float | None,
    dynamo_version: str | None,
) -> None:
    """Build SPEC for TARGET and run it until Ctrl-C (which stops it), or as --smoke/--detach/--bench say."""
    from dyncc.tools.lifecycle.commands import up_command

    try:
        status = up_command(
            spec, target, engine, timing, out_dir,
            smoke=smoke, detach=detach, bench=bench, timeout=timeout, progress=aic_progress(), show=show,
            dynamo_version=dynamo_version,
        )  # fmt: skip
    except DiagnosticError as exc:  # a deployment already running there, a port taken, no cluster: nothing runs
        fail(exc.diagnostics)
    sys.exit(status)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out_dir", default="sweep", show_default=True, type=click.Path(file_okay=False))
@target_option("Target to build each point for; repeat for several (--run adds local).", default="local")
@runtime_options
@click.option(
    "--run",
    "run_points",
    is_flag=True,
    help="Start, benchmark (aiperf) and stop every valid point in turn (local target); write results.csv/.md/.png.",
)
@click.option(
    "--timeout",
    type=float,
    default=300,
    show_default=True,
    callback=finite_seconds,
    help="Readiness timeout per point (s).",
)
@dynamo_version_option(
    "Build every point for this Dynamo version instead of the spec's (as `dyncc build --dynamo-version`)."
)
def sweep(
    spec: str,
    out_dir: str,
    targets: tuple[str, ...],
    engine: str | None,
    timing: str | None,
    run_points: bool,
    timeout: float,
    dynamo_version: str | None,
) -> None:
    """Expand SPEC's `sweep:` lists into one spec per combination; validate and build each."""
    from dyncc.tools import sweep as sweeps

    spec_path = Path(spec)
    try:
        base, points = sweeps.load_sweep(spec_path, dynamo_version)
    except DiagnosticError as exc:
        fail(exc.diagnostics)
    out = Path(out_dir)
    targets_list = list(dict.fromkeys([*targets, *(["local"] if run_points else [])]))
    sweeps.build_points(points, out, targets_list, engine, spec_path.parent, timing, aic_progress())
    for p in points:
        status = "built" if p.valid else "invalid: " + "; ".join(p.messages[:2])
        say(f"p{p.index} [{p.label()}]: {status}")
    say(f"index: {out / 'index.md'}")
    verdict = [base.located(d) for d in sweeps.summary(points)]
    if any(d.is_error for d in verdict):  # DYN804: no point built
        fail(verdict)
    show(verdict)
    if not run_points:
        return
    valid = [p for p in points if p.valid]
    if valid and any(p.directory is None or not (p.directory / "local" / "bench.sh").exists() for p in valid):
        click.echo("dyncc sweep --run: the spec needs a `benchmark:` section", err=True)
        sys.exit(EXIT_INVALID)
    with click.progressbar(length=len(valid), label="running points", file=sys.stderr) as bar:
        sweeps.run_points(points, out, timeout=timeout, progress=lambda p: bar.update(1))
    failed = [p for p in valid if not p.results]
    say(f"results: {out / 'results.md'}, {out / 'results.csv'}, {out / 'results.png'}")
    if failed:
        for p in failed:
            say(f"p{p.index}: {', '.join(p.codes)} {' '.join(p.messages)[:300]}", err=True)
        sys.exit(EXIT_INVALID)
