"""`dyncc up -t slurm`: submit the built job, wait until it serves, smoke-test it; status and down.

Readiness is what the job itself writes: it probes the frontend and every worker's /health and only then
writes ``run/<job id>/frontend_url`` and prints ``dyncc: ready: URL``; dyncc reads that file, relays the
job's own ``dyncc:`` lines, and while it waits says where the job is (pending and why, which workers do not
serve yet). Every Slurm command runs with the SLURM_CONF the job was submitted with, so `status` and
`down` reach that cluster from any shell; before cancelling, the job's script path must be this
directory's job.sbatch (a job id Slurm reused for another job is never cancelled).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import msgspec

from dyncc.api import BuildResult
from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.targets.ready_probe import not_ready_worker
from dyncc.tools.lifecycle import facts, run
from dyncc.tools.lifecycle.logs import Tail, end_offset, last_lines
from dyncc.tools.lifecycle.state import DeploymentState, SlurmRun, now, read_state, update_state, write_state

Echo = Callable[[str], None]
Bench = Callable[[DeploymentState, threading.Event], int]
ENDED = {
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
    "REVOKED", "TIMEOUT", "SPECIAL_EXIT",
}  # fmt: skip
COMMAND_TIMEOUT_S = 30
PROGRESS_EVERY_S = 15.0
POLL_S = 1.0
CANCEL_WAIT_S = 90  # scancel, then Slurm's KillWait and the epilog: the job leaves COMPLETING
UNKNOWN_JOB = "Invalid job id"


class JobInfo(msgspec.Struct, frozen=True):
    state: str  # PENDING, RUNNING, COMPLETING, CANCELLED, ...
    reason: str
    command: str
    nodes: str
    run_time: str
    exit_code: str

    @property
    def ended(self) -> bool:
        return self.state in ENDED


def slurm_env(slurm_conf: str | None) -> dict[str, str]:
    """The environment a Slurm command of this job runs with: the SLURM_CONF it was submitted with."""
    env = dict(os.environ)
    env.pop("SLURM_CONF", None)
    if slurm_conf:
        env["SLURM_CONF"] = slurm_conf
    return env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DiagnosticError(
            [Diagnostic("DYN593", f"`{name}` is not installed here", hint="run dyncc on a Slurm login node")]
        )
    return path


def _slurm(args: list[str], env: dict[str, str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [_tool(args[0]), *args[1:]], capture_output=True, text=True, env=env, timeout=COMMAND_TIMEOUT_S, **kwargs
        )  # type: ignore[call-overload]
    except subprocess.TimeoutExpired:
        raise DiagnosticError(
            [Diagnostic("DYN593", f"`{' '.join(args)}` did not answer within {COMMAND_TIMEOUT_S} s", hint=_reach())]
        ) from None


def _reach() -> str:
    return "check that slurmctld answers (`sinfo`), and SLURM_CONF if the cluster has its own config"


def _fields(line: str) -> dict[str, str]:
    """``Key=value Key2=value with spaces`` (scontrol --oneliner) as a dict."""
    return dict(part.partition("=")[::2] for part in re.split(r" (?=[A-Za-z][A-Za-z0-9_:/]*=)", line.strip()))


def job_info(job_id: str, env: dict[str, str]) -> JobInfo | None:
    """The job as slurmctld knows it; None once it has forgotten it (MinJobAge after the end)."""
    proc = _slurm(["scontrol", "-o", "show", "job", job_id], env)
    if proc.returncode != 0:
        if UNKNOWN_JOB in proc.stderr:
            return None
        raise DiagnosticError([Diagnostic("DYN593", f"scontrol failed: {proc.stderr.strip()[-300:]}", hint=_reach())])
    fields = _fields(proc.stdout.splitlines()[0] if proc.stdout else "")
    return JobInfo(
        state=fields.get("JobState", "?"),
        reason=fields.get("Reason", ""),
        command=fields.get("Command", ""),
        nodes=fields.get("NodeList", ""),
        run_time=fields.get("RunTime", ""),
        exit_code=fields.get("ExitCode", ""),
    )


def job_steps(job_id: str, env: dict[str, str]) -> dict[str, str]:
    """step name -> its nodes, for the job's running steps."""
    proc = _slurm(["squeue", "-h", "-s", "-j", job_id, "-o", "%j|%N"], env)
    steps = {}
    for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
        name, _, nodes = line.partition("|")
        steps[name] = nodes
    return steps


def is_ours(state: DeploymentState, info: JobInfo) -> bool:
    assert state.slurm is not None
    return os.path.realpath(info.command) == os.path.realpath(state.slurm.command)


def is_running(state: DeploymentState) -> bool:
    assert state.slurm is not None
    info = job_info(state.slurm.job_id, slurm_env(state.slurm.slurm_conf))
    return info is not None and not info.ended and is_ours(state, info)


# --- up -------------------------------------------------------------------------------------------------


def submit(directory: Path, benchmark: bool) -> tuple[str, str]:
    """sbatch the job in ``directory``; (job id, its output file). Its benchmark (if the spec has one) is
    not run by the job: `dyncc bench` / `up --bench` run it and keep the job serving."""
    directory = directory.resolve()
    (directory / "run").mkdir(exist_ok=True)
    env = dict(os.environ)
    if benchmark:
        env["DYNCC_BENCHMARK"] = "0"
    # The job's output under run/, which a rebuild carries over (a file beside job.sbatch would make the
    # directory hold something dyncc did not write). A new session: Ctrl-C must not kill sbatch mid-submit.
    proc = _slurm(
        ["sbatch", "--parsable", f"--output={directory}/run/dyncc-%x-%j.out", str(directory / "job.sbatch")],
        env,
        cwd=directory,
        start_new_session=True,
    )
    job_id = proc.stdout.strip().split(";")[0]
    if proc.returncode != 0 or not job_id.isdigit():
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN593",
                    f"sbatch refused the job: {(proc.stderr or proc.stdout).strip()[-500:]}",
                    hint="the message is Slurm's; `sbatch --test-only job.sbatch` in the directory shows it again",
                )
            ]
        )
    name = _job_name(directory / "job.sbatch")
    return job_id, str(directory / "run" / f"dyncc-{name}-{job_id}.out")


def _job_name(script: Path) -> str:
    for line in script.read_text(encoding="utf-8").splitlines()[:5]:
        if line.startswith("#SBATCH --job-name="):
            return line.split("=", 1)[1].strip("'\"")
    return "job"


def up(result: BuildResult, timeout: float, *, smoke: bool, detach: bool, bench: Bench | None, echo: Echo) -> int:
    (output,) = result.outputs
    directory, compilation = output.directory.resolve(), result.compilation
    settings = compilation.loaded.spec.slurm
    parts = facts.components(compilation, settings.http_port, settings.system_port_base)
    state = facts.new_state(compilation, "slurm", directory, parts)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            echo(f"dyncc up: {signal.Signals(signum).name}, cancelling the job")

    previous = {s: signal.signal(s, on_signal) for s in run.STOP_SIGNALS}
    job_id = None
    keep = False
    try:
        job_id, output_file = submit(directory, compilation.plan.benchmark is not None)
        slurm = SlurmRun(
            job_id=job_id,
            command=str(directory / "job.sbatch"),
            slurm_conf=os.environ.get("SLURM_CONF"),
            output=output_file,
        )
        state = state.model_copy(update={"slurm": slurm})
        write_state(state)
        echo(f"dyncc up: submitted job {job_id} (output: {output_file})")
        url = wait_ready(state, timeout, echo, stopping)
        if url is None:  # interrupted
            return 0
        state = update_state(state, url=url)
        echo(f"dyncc up: job {job_id} serves {compilation.plan.served_name} at {url}/v1")
        from dyncc.tools.lifecycle.local import smoke_test

        if not smoke_test(url, compilation.plan.served_name, echo):
            return 1
        if smoke and not detach and bench is None:
            return 0
        status = 0
        if bench is not None:
            status = bench(state, stopping)
            if stopping.is_set() or not detach:
                return status
        if detach:
            keep = True
            echo(f"dyncc up: detached: job {job_id}, logs in {directory / 'run' / job_id / 'logs'}")
            echo(f"  dyncc status {directory}   dyncc logs {directory} [COMPONENT] [-f]   dyncc down {directory}")
            return status
        echo(f"dyncc up: following job {job_id} (Ctrl-C cancels it)")
        return _follow(state, echo, stopping)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if job_id is not None and not keep:
            _cancel_quietly(state, echo)


def wait_ready(state: DeploymentState, timeout: float, echo: Echo, stopping: threading.Event) -> str | None:
    """The frontend URL once the job has written it; None when interrupted. DYN594 when the job ends
    first, DYN595 when ``timeout`` s pass (pending included)."""
    assert state.slurm is not None
    job, env = state.slurm.job_id, slurm_env(state.slurm.slurm_conf)
    ready_file = Path(state.directory) / "run" / job / "frontend_url"
    tail = Tail(Path(state.slurm.output))
    started = time.monotonic()
    deadline = started + timeout
    next_note = started + PROGRESS_EVERY_S
    seen_state = ""
    while not stopping.is_set():
        _relay(tail, echo)
        url = _read_url(ready_file)
        if url:
            return url
        info = job_info(job, env)
        if info is None or info.ended:
            raise DiagnosticError([_ended(state, info, "before it was ready")])
        if info.state != seen_state:
            seen_state = info.state
            reason = f" ({info.reason})" if info.reason not in ("", "None") else ""
            where = f" on {info.nodes}" if info.state == "RUNNING" else reason
            echo(f"dyncc up: job {job} {info.state.lower()}{where}")
        now_s = time.monotonic()
        if now_s >= deadline:
            raise DiagnosticError(
                [
                    Diagnostic(
                        "DYN595",
                        f"job {job} was not ready after {timeout:g} s ({info.state.lower()}"
                        + (f": {info.reason}" if info.state == "PENDING" else f": {_waiting_for(state)}")
                        + "); it is cancelled",
                        hint="raise --timeout (pending time counts), or slurm.ready_timeout_s for slow model loads",
                    )
                ]
            )
        if now_s >= next_note:
            next_note = now_s + PROGRESS_EVERY_S
            waited = f"{now_s - started:.0f} s"
            if info.state == "PENDING":
                echo(f"dyncc up: job {job} pending for {waited} ({info.reason})")
            else:
                echo(f"dyncc up: job {job} running, waiting for: {_waiting_for(state)} ({waited})")
        stopping.wait(POLL_S)
    return None


def _relay(tail: Tail, echo: Echo) -> None:
    # The job's own messages; the probe's once-a-second reasons are summed up by the progress lines.
    for line in tail.lines():
        if line.startswith("dyncc"):
            echo(line)


def _read_url(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()[:2048]
    except OSError:
        return ""


def _waiting_for(state: DeploymentState, limit: int = 6) -> str:
    """Which components do not serve yet, and why (a worker not started, loading, not answering)."""
    assert state.slurm is not None
    hosts = Path(state.directory) / "run" / state.slurm.job_id / "hosts"
    waiting = []
    for component in state.components:
        host = _read_url(hosts / component.name)
        if not host:
            waiting.append(f"{component.name} (not started)")
        elif component.kind == "worker" and component.port is not None:
            problem = not_ready_worker(f"http://{host}:{component.port}/health")
            if problem is not None:
                waiting.append(f"{component.name} ({problem[-80:]})")
        if len(waiting) >= limit:
            break
    return ", ".join(waiting) or "the frontend to list the model"


def _ended(state: DeploymentState, info: JobInfo | None, when: str) -> Diagnostic:
    assert state.slurm is not None
    what = f"ended {info.state} (exit code {info.exit_code})" if info is not None else "is no longer known to Slurm"
    tail = last_lines(Path(state.slurm.output), 12)
    shown = " | ".join(line for line in tail if line.strip())[-1200:]
    return Diagnostic(
        "DYN594",
        f"job {state.slurm.job_id} {what} {when}" + (f": {shown}" if shown else ""),
        hint=f"its output is {state.slurm.output}; each step's log is under run/{state.slurm.job_id}/logs",
    )


def _follow(state: DeploymentState, echo: Echo, stopping: threading.Event) -> int:
    assert state.slurm is not None
    env = slurm_env(state.slurm.slurm_conf)
    output = Path(state.slurm.output)
    tail = Tail(output, end_offset(output))  # what came before was relayed while waiting
    while not stopping.is_set():
        _relay(tail, echo)
        info = job_info(state.slurm.job_id, env)
        if info is None or info.ended:
            _relay(tail, echo)
            if read_state(state.directory).stop_requested:
                echo(f"dyncc up: job {state.slurm.job_id} was cancelled by `dyncc down`")
                return 0
            echo(_ended(state, info, "while serving").render())
            return 1
        stopping.wait(2 * POLL_S)
    return 0


def cancel(state: DeploymentState, echo: Echo, who: str = "dyncc down") -> list[Diagnostic]:
    """scancel the job if it is still this directory's, and wait until Slurm has ended it (its steps'
    processes stopped: the job leaves COMPLETING only then)."""
    assert state.slurm is not None
    job, env = state.slurm.job_id, slurm_env(state.slurm.slurm_conf)
    info = job_info(job, env)
    if info is None or info.ended:
        echo(f"{who}: job {job} has ended" + (f" ({info.state})" if info else ""))
        return []
    if not is_ours(state, info):
        return [
            Diagnostic(
                "DYN597",
                f"job {job} runs {info.command}, not {state.slurm.command}: Slurm reused the id, or SLURM_CONF "
                "names another cluster; it is not cancelled",
                hint=f"the deployment of {state.directory} has ended; check `squeue --me`",
            )
        ]
    update_state(state, stop_requested=True)
    echo(f"{who}: cancelling job {job} ({info.state.lower()} on {info.nodes or 'no node yet'})")
    proc = _slurm(["scancel", job], env)
    if proc.returncode != 0:
        return [Diagnostic("DYN596", f"scancel {job} failed: {proc.stderr.strip()[-300:]}", hint=_reach())]
    deadline = time.monotonic() + CANCEL_WAIT_S
    while time.monotonic() < deadline:
        info = job_info(job, env)
        if info is None or info.ended:
            update_state(read_state(state.directory), ended_at=now())
            echo(f"{who}: job {job} " + (info.state.lower() if info else "ended"))
            return []
        time.sleep(0.5)
    return [
        Diagnostic(
            "DYN596",
            f"job {job} was cancelled but had not ended after {CANCEL_WAIT_S} s ({info.state if info else '?'})",
            hint="its steps may be stuck on a node: `scontrol show job` and the slurmd log say why",
        )
    ]


def _cancel_quietly(state: DeploymentState, echo: Echo) -> None:
    try:
        for problem in cancel(state, echo, "dyncc up"):
            echo(problem.render())
    except DiagnosticError as exc:
        for problem in exc.diagnostics:
            echo(problem.render())
