"""``dyncc`` command line: thin click commands over :mod:`dyncc.api`.

Exit status: 0 valid / built, 1 invalid spec or drift found, 2 usage error (click's own), 3 internal
error: a bug in dyncc, reported in one line that names the file holding the full trace.
"""

from __future__ import annotations

import gc
import json
import math
import os
import sys
import tempfile
import textwrap
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from dyncc import __version__
from dyncc.diagnostics import Diagnostic, DiagnosticError, Location, printable

if TYPE_CHECKING:
    from dyncc.api import Validation
    from dyncc.compiler import Compilation

# Defining the commands imports the spec and every target's settings (pydantic models: hundreds of thousands
# of objects, nearly none garbage); the collector walking them again and again cost a build 5-15% of its CPU
# (benchmarks/results.md). It waits until they are made, and they are frozen: they live as long as the
# process, so later collections need not walk them. (A collection first would find ~700 unreachable objects,
# under 0.5 MB, and take 12 ms: longer than they are worth.)
_COLLECTING = gc.isenabled()
gc.disable()

EXIT_INVALID = 1
# The invalid examples explain-code shows: beside the package in a checkout (not shipped in a wheel).
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples" / "invalid"
EXIT_INTERNAL = 3
# Parameters that name files a command writes; an OSError on any other file is a read error.
OUTPUT_PARAMS = ("out_dir", "output")


def _source_line(diagnostic: Diagnostic, cache: dict[str, list[str] | None]) -> str | None:
    loc = diagnostic.location
    if loc is None:
        return None
    if loc.file not in cache:
        try:
            cache[loc.file] = _read_text_bounded(Path(loc.file)).splitlines()
        except (OSError, UnicodeDecodeError, ValueError):
            cache[loc.file] = None
    lines = cache[loc.file]
    return lines[loc.line - 1] if lines and 0 < loc.line <= len(lines) else None


def _read_text_bounded(path: Path) -> str:
    from dyncc.spec.loader import MAX_SPEC_BYTES

    if not path.is_file():  # a device or FIFO named in a diagnostic is not read a second time
        return ""
    with path.open("rb") as stream:
        return stream.read(MAX_SPEC_BYTES + 1).decode("utf-8")


def _say(text: str, err: bool = False, nl: bool = True) -> None:
    """Echo text that may hold spec content (keys, values, names) with its control characters escaped."""
    click.echo(printable(text), err=err, nl=nl)


def _print(diagnostics: Iterable[Diagnostic], err: bool = True) -> None:
    cache: dict[str, list[str] | None] = {}
    for d in diagnostics:
        click.echo(d.render(_source_line(d, cache)), err=err)


def _fail(diagnostics: list[Diagnostic]) -> NoReturn:
    _print(diagnostics)
    errors = sum(d.is_error for d in diagnostics)
    click.echo(f"dyncc: {errors} error(s)", err=True)
    sys.exit(EXIT_INVALID)


def _is_output(filename: str, params: dict[str, Any]) -> bool:
    """Whether ``filename`` is (inside) a path the command was told to write."""
    target = Path(os.path.abspath(filename))
    for name in OUTPUT_PARAMS:
        value = params.get(name)
        if isinstance(value, str) and value:
            out = Path(os.path.abspath(value))
            if target == out or out in target.parents:
                return True
    return False


def _os_error_diagnostic(exc: OSError, params: dict[str, Any]) -> Diagnostic:
    """An OSError that reached the CLI: a write to an output path, or a read of anything else."""
    reason = exc.strerror or type(exc).__name__
    filename = os.fsdecode(exc.filename) if exc.filename is not None else None
    if filename is not None and not _is_output(filename, params):
        return Diagnostic(
            "DYN020",
            f"cannot read {filename}: {reason}",
            hint="check that the path exists, is readable and is not too long",
        )
    return Diagnostic(
        "DYN505",
        f"cannot write {filename or 'output'}: {reason}",
        hint="choose an output path in a writable, existing directory",
    )


def _internal_error(exc: BaseException) -> NoReturn:
    """One line instead of a traceback; the trace goes to a file the user can attach to a bug report."""
    trace = "".join(traceback.format_exception(exc))
    where = _write_trace(trace)
    kept = f"the full trace is in {where}" if where else "the full trace could not be written anywhere"
    click.echo(f"dyncc: internal error, this is a bug in dyncc ({type(exc).__name__}); {kept}", err=True)
    sys.exit(EXIT_INTERNAL)


def _write_trace(trace: str) -> str | None:
    for directory in (tempfile.gettempdir(), _cache_dir()):
        if not directory:
            continue
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix="dyncc-crash-", suffix=".txt", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as stream:
                stream.write(f"dyncc {__version__}: {' '.join(sys.argv)}\n{trace}")
            return name
        except OSError:
            continue
    return None


def _cache_dir() -> str:
    """dyncc's cache directory (as the template cache finds it): the second place a trace may go."""
    base = os.environ.get("DYNCC_CACHE_DIR")
    if base is None:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dyncc")
    return base


class DynccCommand(click.Command):
    """Every command's failures end as coded errors (exit 1) or one internal-error line (exit 3)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except DiagnosticError as exc:
            _fail(exc.diagnostics)
        except OSError as exc:
            _fail([_os_error_diagnostic(exc, ctx.params)])
        except Exception as exc:  # noqa: BLE001 - the boundary: anything else is a bug, shown without a traceback
            _internal_error(exc)


class DynccGroup(click.Group):
    """The command group; the commands of other modules are imported when one of them is run or listed."""

    command_class = DynccCommand

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            LAZY_COMMANDS[cmd_name](self)
        return self.commands.get(cmd_name)


def _finite_seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
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


def _target_option(help_text: str, default: str = "all") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
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


def _runtime_options(command: Callable[..., Any]) -> Callable[..., Any]:
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
        type=click.Choice(["trtllm", "mocker"]),
        default=None,
        help="Worker runtime, over the spec's `worker_runtime` (mocker: Dynamo's mock engine, no GPU).",
    )(command)


def _aic_progress() -> Callable[[float, str], None]:
    """Progress lines while AIConfigurator times the mock engine; its runner is imported only when it runs
    (a build of real engines or builtin timing never does)."""
    shown: list[Callable[[float, str], None]] = []

    def progress(elapsed: float, note: str) -> None:
        if not shown:
            from dyncc.aic.runner import stderr_progress

            shown.append(stderr_progress("dyncc: AIConfigurator estimating the mock engine's timing"))
        shown[0](elapsed, note)

    return progress


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
@_target_option("Run this target's checks too; `all`: every target that can run the spec (the others are named).")
def validate(specs: tuple[str, ...], fmt: str, targets: tuple[str, ...]) -> None:
    """Check SPECS and the checks of the targets they are meant for; exit 1 if any has an error."""
    results = [_validate_one(path, targets) for path in specs]
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
            _print(r.diagnostics, err=not r.ok)
            errors = sum(d.is_error for d in r.diagnostics)
            _say(f"{r.file}: " + ("valid" if r.ok else f"invalid ({errors} error(s))"), err=not r.ok)
    sys.exit(0 if all(r.ok for r in results) else EXIT_INVALID)


def _validate_one(path: str, targets: tuple[str, ...]) -> Validation:
    """One file's result; a file that cannot be read is a diagnostic of its own, so the others (and the
    JSON report) are still given."""
    from dyncc.api import Validation
    from dyncc.api import validate as validate_spec

    try:
        return validate_spec(path, targets)
    except OSError as exc:
        diagnostic = _os_error_diagnostic(exc, {})
        return Validation(path, (diagnostic.located(Location(path, 1, 1)),))


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@_target_option("Target to build; repeat for several.")
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
@_runtime_options
@click.option(
    "--dynamo-version",
    default=None,
    help="Deploy this Dynamo version instead of the spec's (e.g. 0.5.1: the 2025 profile).",
)
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
            progress=_aic_progress(),
        )
    except DiagnosticError as exc:
        _fail(exc.diagnostics)
    _print(result.diagnostics)
    stale = False
    for output in result.outputs:
        if check:
            for rel in output.drift:
                _say(f"drift: {output.directory / rel}")
            stale = stale or bool(output.drift)
        else:
            _say(f"{output.target}: wrote {len(output.files)} file(s) to {output.directory}")
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
@_runtime_options
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
    callback=_finite_seconds,
    help="Seconds to wait for readiness (default: the spec's; on Slurm pending time counts, 600 s more).",
)
@click.option(
    "--dynamo-version",
    default=None,
    help="Deploy this Dynamo version instead of the spec's (as `dyncc build --dynamo-version`).",
)
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
            smoke=smoke, detach=detach, bench=bench, timeout=timeout, progress=_aic_progress(), show=_print,
            dynamo_version=dynamo_version,
        )  # fmt: skip
    except DiagnosticError as exc:  # a deployment already running there, a port taken, no cluster: nothing runs
        _fail(exc.diagnostics)
    sys.exit(status)


def _compile(spec: str) -> Compilation:
    from dyncc.compiler import compile_spec
    from dyncc.deployment import load_spec

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

    from dyncc.tools import views

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
        from dyncc.output import replace_file

        replace_file(Path(output), data)  # atomically; never through a symlink or into a FIFO (DYN507)
    else:
        sys.stdout.buffer.write(data)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
def explain(spec: str) -> None:
    """Placement (node x GPU -> pool, replica, rank) and each engine value's origin."""
    from dyncc.tools.views import explain as explain_compilation

    _say(explain_compilation(_compile(spec)), nl=False)


@main.command("explain-code")
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
    _say(f"{info.code} ({info.severity}, {info.family}): {info.title}\n")
    click.echo(textwrap.fill(info.explanation, width=100))
    example = example_for(info.code, EXAMPLES_DIR)
    if example is not None:
        _say(f"\nExample ({example.relative_to(EXAMPLES_DIR.parent)}):\n")
        _say(example.read_text(encoding="utf-8"), nl=False)
    elif info.no_example_because:
        _say(f"\nNo example spec: {info.no_example_because}")


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
        _fail(exc.diagnostics)
    unchanged = "nothing to change: the spec is in the current form" + (f", for Dynamo {to}" if to else "")
    for change in result.changes or (unchanged,):
        _say(f"{spec}: {change}", err=True)
    if not result.ok:
        if result.refused:
            _say(f"{spec}: Dynamo {to} refuses, and no rewrite keeps the deployment's behaviour:", err=True)
            _print(result.refused)
        if result.invalid:
            _say(f"{spec}: invalid at its own Dynamo version too:", err=True)
            _print(result.invalid)
        errors = len(result.refused) + len(result.invalid)
        _say(f"dyncc: {errors} error(s); nothing written", err=True)
        sys.exit(EXIT_INVALID)
    if to:
        _print(result.diagnostics)
    try:
        if output:
            write_new_file(Path(output), result.text)
        else:
            _say(result.text, nl=False)
    except DiagnosticError as exc:
        _fail(exc.diagnostics)


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
def diff(old: str, new: str | None, old_version: str | None, new_version: str | None) -> None:
    """What changes between two specs, and on the cluster: replicas, GPUs, flags, engine keys, files.
    With one spec and --new-version: what changes when it is deployed on another Dynamo release."""
    from dyncc.tools.diff import compile_for_release, diff_compilations

    if new is None and new_version is None:
        raise click.UsageError("give NEW, or --new-version to compare OLD with itself on another Dynamo release")
    try:
        before = compile_for_release(old, old_version)
        after = compile_for_release(new or old, new_version)
    except DiagnosticError as exc:
        _fail(exc.diagnostics)
    for line in diff_compilations(before, after):
        _say(line)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out_dir", default="sweep", show_default=True, type=click.Path(file_okay=False))
@_target_option("Target to build each point for; repeat for several (--run adds local).", default="local")
@_runtime_options
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
    callback=_finite_seconds,
    help="Readiness timeout per point (s).",
)
@click.option(
    "--dynamo-version",
    default=None,
    help="Build every point for this Dynamo version instead of the spec's (as `dyncc build --dynamo-version`).",
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
        _fail(exc.diagnostics)
    out = Path(out_dir)
    targets_list = list(dict.fromkeys([*targets, *(["local"] if run_points else [])]))
    sweeps.build_points(points, out, targets_list, engine, spec_path.parent, timing, _aic_progress())
    for p in points:
        status = "built" if p.valid else "invalid: " + "; ".join(p.messages[:2])
        _say(f"p{p.index} [{p.label()}]: {status}")
    _say(f"index: {out / 'index.md'}")
    verdict = [d.located(base.source.locate(d.path)) for d in sweeps.summary(points)]
    if any(d.is_error for d in verdict):  # DYN804: no point built
        _fail(verdict)
    _print(verdict)
    if not run_points:
        return
    valid = [p for p in points if p.valid]
    if valid and any(p.directory is None or not (p.directory / "local" / "bench.sh").exists() for p in valid):
        click.echo("dyncc sweep --run: the spec needs a `benchmark:` section", err=True)
        sys.exit(EXIT_INVALID)
    with click.progressbar(length=len(valid), label="running points", file=sys.stderr) as bar:
        sweeps.run_points(points, out, timeout=timeout, progress=lambda p: bar.update(1))
    failed = [p for p in valid if not p.results]
    _say(f"results: {out / 'results.md'}, {out / 'results.csv'}, {out / 'results.png'}")
    if failed:
        for p in failed:
            _say(f"p{p.index}: {', '.join(p.codes)} {' '.join(p.messages)[:300]}", err=True)
        sys.exit(EXIT_INVALID)


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
        _fail(exc.diagnostics)
    _print(result.warnings)
    if output:
        from dyncc.output import write_new_file

        try:
            write_new_file(Path(output), result.text)
        except DiagnosticError as exc:
            _fail(exc.diagnostics)
        _say(f"wrote {output}: `dyncc validate {output}`", err=True)
    else:
        click.echo(result.text, nl=False)


@main.command()
def lsp() -> None:
    """A language server on stdin/stdout: dyncc's diagnostics, hover and completion in the editor."""
    try:
        import pygls  # noqa: F401
    except ImportError:
        _say("dyncc lsp needs pygls: pip install 'dyncc[lsp]'", err=True)
        sys.exit(EXIT_INVALID)
    from dyncc.tools.lsp import main as serve

    serve()


# --- commands built on demand ---------------------------------------------------------------------------
# Their modules (AIConfigurator's runner, the deployment lifecycle) are imported only when one of these
# commands is run or `--help` lists them: `dyncc build` and `dyncc validate` never import them.


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
                _fail(exc.diagnostics)
            return
        from dyncc.spec.schema import starter_text

        try:
            text = starter_text(template, name)
        except DiagnosticError as exc:
            _fail(exc.diagnostics)
        if output:
            from dyncc.output import write_new_file

            try:
                write_new_file(Path(output), text)  # never over an existing file, nor through a (dangling) symlink
            except DiagnosticError as exc:
                _fail(exc.diagnostics)
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

gc.freeze()
if _COLLECTING:
    gc.enable()

if __name__ == "__main__":
    main()
