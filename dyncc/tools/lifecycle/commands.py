"""The lifecycle commands: the body of ``dyncc up``, and ``status``, ``logs``, ``down`` and ``bench``, which
:func:`register` adds to the CLI group (the group's command class turns coded errors into exit 1)."""

from __future__ import annotations

import re
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

import click

from dyncc.diagnostics import Diagnostic, DiagnosticError, printable
from dyncc.tools.lifecycle.options import BENCH_TIMEOUT_S, K8S_DEFAULT_WAIT_S, SLURM_PENDING_ALLOWANCE_S, STATISTICS

if TYPE_CHECKING:
    from dyncc.tools.lifecycle.state import DeploymentState, Prediction, Target

# Colour and other SGR sequences of the processes' logs are dropped; any other control character is shown
# escaped (printable), so no log line can drive the terminal.
_SGR = re.compile(r"\x1b\[[0-9;]*m")


def say(text: str, err: bool = False) -> None:
    click.echo(printable(_SGR.sub("", text)), err=err)


def up_command(
    spec: str,
    target: str,
    engine: str | None,
    timing: str | None,
    out_dir: str,
    *,
    smoke: bool,
    detach: bool,
    bench: bool,
    timeout: float | None,
    progress: Callable[[float, str], None] | None,
    show: Callable[[Iterable[Diagnostic]], None],
    dynamo_version: str | None = None,
) -> int:
    """Build SPEC for ``target`` (for ``dynamo_version`` instead of the spec's release, when given) into its
    own directory, start it, and follow it as the flags say."""
    from dyncc.tools.lifecycle import api
    from dyncc.tools.lifecycle.gate import GateOptions

    chosen = cast("Target", target)  # click's Choice: local, slurm or k8s
    result = api.build(
        spec, out_dir, chosen, engine=engine, timing=timing, progress=progress, dynamo_version=dynamo_version
    )
    show(result.diagnostics)
    (output,) = result.outputs
    loaded = result.compilation.loaded
    if target == "local":
        say(f"dyncc up: built into {output.directory} (logs in {output.directory / 'run' / 'logs'})")
        wait = loaded.spec.local.ready_timeout_s + 30
    elif target == "slurm":
        say(f"dyncc up: built into {output.directory}")
        wait = loaded.spec.slurm.ready_timeout_s + SLURM_PENDING_ALLOWANCE_S
    else:
        say(f"dyncc up: built into {output.directory}")
        wait = K8S_DEFAULT_WAIT_S
    options = GateOptions() if bench else None
    return api.up(
        result, chosen, timeout if timeout is not None else wait, smoke=smoke, detach=detach, bench=options, echo=say
    )


@contextmanager
def _interruptible() -> Iterator[threading.Event]:
    """An event set by Ctrl-C, SIGTERM or SIGHUP while the block runs (the handlers are put back after)."""
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stopping.is_set():
            say(f"dyncc: {signal.Signals(signum).name}, stopping", err=True)
        stopping.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield stopping
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _render(problems: Iterable[Diagnostic]) -> None:
    for problem in problems:
        say(problem.render(), err=True)


DIRECTORY = click.argument("directory", type=click.Path(file_okay=False))


def register(group: click.Group) -> None:
    """Add ``status``, ``logs``, ``down`` and ``bench`` to ``group``."""

    @group.command("status")
    @DIRECTORY
    @click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
    def status_command(directory: str, fmt: str) -> None:
        """Every component of the deployment `dyncc up` started in DIRECTORY: running, ready or why not.
        Exit 0 when it runs and every component is ready, 1 otherwise."""
        import json

        from dyncc.tools.lifecycle import api

        report = api.status(directory)
        if fmt == "json":
            click.echo(json.dumps(report.to_json(), indent=2))
        else:
            say(report.headline)
            width = max((len(c.name) for c in report.components), default=8)
            for c in report.components:
                health = "ready" if c.ready else "not ready"
                say(f"  {c.name:<{width}}  {c.where or '-':<12}  {c.process:<11}  {health}: {c.detail or '-'}")
            if report.listing:
                say(report.listing)
        if not report.running:
            _render([api.not_running(report.state)])
        sys.exit(0 if report.healthy else 1)

    @group.command("logs")
    @DIRECTORY
    @click.argument("component", required=False)
    @click.option("-f", "--follow", is_flag=True, help="Keep printing what is written, until Ctrl-C or the end.")
    @click.option("-n", "--lines", type=click.IntRange(0, 1_000_000), default=None, help="Only the last N lines.")
    def logs_command(directory: str, component: str | None, follow: bool, lines: int | None) -> None:
        """COMPONENT's log (a process such as decode-0 or frontend, or a pool: each replica's), or the
        launch script's / the job's own output without it."""
        from dyncc.tools.lifecycle import api, logs

        state = api.read_state(directory)
        chosen = logs.select(state, component)
        with _interruptible() as stopping:
            logs.show(
                chosen,
                say,
                lines=lines,
                follow=follow,
                still_running=lambda: api.is_running(api.read_state(directory)),
                stopping=stopping.is_set,
            )

    @group.command("down")
    @DIRECTORY
    def down_command(directory: str) -> None:
        """Stop the deployment `dyncc up` started in DIRECTORY: its processes, its Slurm job (scancel), or
        its Kubernetes objects (kubectl delete -k); wait until they are gone."""
        from dyncc.tools.lifecycle import api

        problems = api.down(directory, say)
        if problems:
            raise DiagnosticError(problems)

    @group.command("bench")
    @DIRECTORY
    @click.option(
        "--ttft-ms", type=click.FloatRange(0, 1e9, min_open=True), default=None, help="TTFT SLA (ms), over the spec's."
    )
    @click.option(
        "--itl-ms", type=click.FloatRange(0, 1e9, min_open=True), default=None, help="ITL SLA (ms), over the spec's."
    )
    @click.option("--statistic", type=click.Choice(STATISTICS), default="avg", show_default=True,
                  help="What of each level's TTFT/ITL is held to the SLA.")  # fmt: skip
    @click.option("--results", type=click.Path(file_okay=False), default=None,
                  help="Where aiperf's exports and gate.json/gate.md go (default: DIRECTORY/run/bench-<time>).")  # fmt: skip
    @click.option("--timeout", type=click.FloatRange(0, 7 * 24 * 3600, min_open=True), default=BENCH_TIMEOUT_S,
                  show_default=True, help="Seconds the whole benchmark may take; then it is stopped.")  # fmt: skip
    @click.option(
        "--estimate", is_flag=True, help="Ask AIConfigurator (`dyncc estimate`) for the prediction to compare."
    )
    def bench_command(directory: str, estimate: bool, results: str | None, **options: Any) -> None:
        """The SLA gate: run the compiled aiperf benchmark against the deployment in DIRECTORY; exit 1 (coded)
        when a request failed, a reply was empty or short, or TTFT/ITL break the SLA. Report: gate.json, gate.md."""
        from dyncc.tools.lifecycle import api
        from dyncc.tools.lifecycle.gate import GateOptions

        state = api.read_state(directory)
        prediction = _estimate(state) if estimate else None
        gate = GateOptions(results=Path(results) if results else None, prediction=prediction, **options)
        with _interruptible() as stopping:
            problems = api.bench(directory, gate, say, stopping)
        _render([p for p in problems if not p.is_error])
        errors = [p for p in problems if p.is_error]
        if errors:
            raise DiagnosticError(errors)


def _estimate(state: DeploymentState) -> Prediction | None:
    from dyncc.aic.runner import stderr_progress
    from dyncc.tools.lifecycle.state import Prediction
    from dyncc.tools.sla import estimate

    bench = state.benchmark
    try:
        found = estimate(
            Path(state.spec),
            isl=bench.isl if bench else None,
            osl=bench.osl if bench else None,
            progress=stderr_progress("dyncc: AIConfigurator estimating"),
        )
    except DiagnosticError as exc:  # no prediction to compare: the gate still runs
        _render(
            [
                Diagnostic(d.code, f"no prediction: {d.message}", hint=d.hint, severity="warning")
                for d in exc.diagnostics
            ]
        )
        return None
    return Prediction(
        ttft_ms=found.ttft,
        itl_ms=found.tpot,
        tokens_per_s_per_gpu=found.tokens_per_s_per_gpu,
        source=f"dyncc estimate ({found.mode}) on {state.spec}",
    )
