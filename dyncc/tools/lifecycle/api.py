"""The lifecycle as functions: build for `up` on any target, start, report status, stop, gate.

A deployment is found by its directory (``OUT/up-<name>`` on this machine, ``OUT/up-<name>-slurm``,
``OUT/up-<name>-k8s``) and the state file `up` left there; never by a process or job name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from dyncc.api import (
    BuildResult,
    TargetOutput,
    compile_timed,
    render_targets,
    with_dynamo_version,
    with_mocker_timing,
    with_worker_runtime,
)
from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.targets.ready_probe import not_ready_frontend, not_ready_worker
from dyncc.tools.lifecycle import gate as gates
from dyncc.tools.lifecycle.state import DeploymentState, Target, read_state, state_path

Echo = Callable[[str], None]


def up_directory(spec_name: str, target: str) -> str:
    """``up-<name>`` on this machine (as before), ``up-<name>-<target>`` elsewhere: one spec can be up on
    several targets at once, each with its own state and logs, never in a `dyncc build` tree."""
    return f"up-{spec_name}" if target == "local" else f"up-{spec_name}-{target}"


def build(
    spec: str | Path,
    out_dir: str | Path,
    target: Target,
    engine: str | None = None,
    timing: str | None = None,
    progress: Callable[[float, str], None] | None = None,
    dynamo_version: str | None = None,
) -> BuildResult:
    """Compile (for ``dynamo_version`` instead of the spec's release, when given) and write the target's files
    to ``OUT/<up directory>``; DYN522 before writing anything when a deployment `up` started there still runs."""
    if target == "local":
        from dyncc.tools.lifecycle.run import build_for_up

        return build_for_up(
            spec, out_dir, engine=engine, timing=timing, progress=progress, dynamo_version=dynamo_version
        )
    from dyncc.deployment import load_spec
    from dyncc.output import LOCK_TIMEOUT_S, write_trees

    loaded = with_worker_runtime(with_dynamo_version(load_spec(spec), dynamo_version), engine)
    compilation = compile_timed(with_mocker_timing(loaded, timing), progress)
    name = up_directory(compilation.plan.name, target)
    out = Path(out_dir)
    refuse_if_running(out / name)
    rendered, notes = render_targets(compilation, [target])
    write_trees(out, {name: rendered[target]}, LOCK_TIMEOUT_S)
    return BuildResult(compilation, (TargetOutput(target, out / name, rendered[target]),), tuple(notes))


def refuse_if_running(directory: Path) -> None:
    if not state_path(directory).exists():
        return
    try:
        state = read_state(directory)
    except DiagnosticError:
        return  # a damaged state file names nothing that could run; the build replaces the files
    if is_running(state):
        where = f"job {state.slurm.job_id}" if state.slurm else f"{state.target} deployment"
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN522",
                    f"a deployment is already running from {directory} ({where})",
                    hint=f"stop it first (`dyncc down {directory}`), or build this one into another -o directory",
                )
            ]
        )


def is_running(state: DeploymentState) -> bool:
    if state.local is not None:
        from dyncc.tools.lifecycle import local

        return local.is_running(state)
    if state.slurm is not None:
        from dyncc.tools.lifecycle import slurm

        return slurm.is_running(state)
    return state.k8s is not None and state.ended_at is None


def up(
    result: BuildResult,
    target: Target,
    timeout: float,
    *,
    smoke: bool,
    detach: bool,
    bench: gates.GateOptions | None,
    echo: Echo,
) -> int:
    """Start what ``build`` wrote and follow it as the flags say (see `dyncc up --help`); the exit status."""
    run_gate = None if bench is None else _gate_runner(bench, echo)
    if target == "local":
        from dyncc.tools.lifecycle import local

        return local.up(result, timeout, smoke=smoke, detach=detach, bench=run_gate, echo=echo)
    if target == "slurm":
        from dyncc.tools.lifecycle import slurm

        return slurm.up(result, timeout, smoke=smoke, detach=detach, bench=run_gate, echo=echo)
    if bench is not None:
        raise DiagnosticError([_no_gate_on_k8s()])
    from dyncc.tools.lifecycle import k8s

    return k8s.up(result, timeout, smoke=smoke, detach=detach, echo=echo)


def _gate_runner(options: gates.GateOptions, echo: Echo) -> Callable[[DeploymentState, threading.Event], int]:
    def run_gate(state: DeploymentState, stopping: threading.Event) -> int:
        try:
            problems = gates.gate(state, options, echo, stopping)
        except DiagnosticError as exc:
            problems = exc.diagnostics
        for problem in problems:
            echo(problem.render())
        return 1 if any(p.is_error for p in problems) else 0

    return run_gate


def _no_gate_on_k8s() -> Diagnostic:
    return Diagnostic(
        "DYN927",
        "dyncc bench runs on local and Slurm deployments; on Kubernetes the build writes the benchmark as a Job",
        hint="kubectl apply the benchmark Job `dyncc build -t k8s` wrote, and read its logs",
    )


def bench(directory: str | Path, options: gates.GateOptions, echo: Echo, stopping: threading.Event) -> list[Diagnostic]:
    """The SLA gate on a running deployment: its problems (any error fails it)."""
    state = read_state(directory)
    if state.target == "k8s":
        raise DiagnosticError([_no_gate_on_k8s()])
    if state.url is None or not is_running(state):
        raise DiagnosticError([not_running(state)])
    return gates.gate(state, options, echo, stopping)


def not_running(state: DeploymentState) -> Diagnostic:
    return Diagnostic(
        "DYN592",
        f"the deployment {state.name} in {state.directory} is not running"
        + ("" if state.url else " (it never became ready)"),
        hint=f"start it: dyncc up {state.spec} -t {state.target} --detach",
    )


def down(directory: str | Path, echo: Echo) -> list[Diagnostic]:
    state = read_state(directory)
    if state.local is not None:
        from dyncc.tools.lifecycle import local

        return local.down(state, echo)
    if state.slurm is not None:
        from dyncc.tools.lifecycle import slurm

        return slurm.cancel(state, echo)
    from dyncc.tools.lifecycle import k8s

    return k8s.delete(state, echo)


# --- status ----------------------------------------------------------------------------------------------


class ComponentStatus(msgspec.Struct, frozen=True):
    name: str
    kind: str
    where: str  # "pid 1234", "node3", ""
    process: str  # running, exited, not started
    ready: bool
    detail: str


class Status(msgspec.Struct, frozen=True):
    state: DeploymentState
    running: bool
    headline: str
    components: tuple[ComponentStatus, ...]
    listing: str = ""  # kubectl's, on Kubernetes

    @property
    def healthy(self) -> bool:
        return self.running and all(c.ready for c in self.components)

    def to_json(self) -> dict[str, Any]:
        s = self.state
        return {
            "name": s.name,
            "target": s.target,
            "directory": s.directory,
            "running": self.running,
            "healthy": self.healthy,
            "url": s.url,
            "job_id": s.slurm.job_id if s.slurm else None,
            "pid": s.local.pid if s.local else None,
            "components": [msgspec.structs.asdict(c) for c in self.components],
        }


def status(directory: str | Path) -> Status:
    state = read_state(directory)
    if state.local is not None:
        return _local_status(state)
    if state.slurm is not None:
        return _slurm_status(state)
    from dyncc.tools.lifecycle import k8s

    ready, listing = k8s.status_text(state)
    headline = f"{state.name}: Kubernetes DynamoGraphDeployment " + ("Ready" if ready else "not Ready")
    return Status(state, ready, headline, (), listing)


def _health(state: DeploymentState, kind: str, host: str | None, port: int | None) -> tuple[bool, str]:
    if kind == "frontend":
        url = state.url
        if url is None:
            return False, "not ready yet (no frontend URL)"
        problem = not_ready_frontend(url, state.served_name)
        return problem is None, problem or f"{url}/v1 lists {state.served_name}"
    if kind != "worker" or host is None or port is None:
        return True, ""
    problem = not_ready_worker(f"http://{host}:{port}/health")
    return problem is None, problem or f"healthy on {host}:{port}"


def _local_status(state: DeploymentState) -> Status:
    from dyncc.tools.lifecycle import local

    assert state.local is not None
    holders = set(local.lock_holders(Path(state.local.run_dir) / "deployment.lock"))
    running = local.is_running(state)
    pids = local.launched_pids(state)
    names = [(c.name, c.kind, c.port) for c in state.components]
    names += [(name, "infra", None) for name in pids if name not in {c.name for c in state.components}]
    rows = []
    for name, kind, port in names:
        pid = pids.get(name)
        alive = pid is not None and pid in holders
        process = "running" if alive else ("exited" if pid is not None else "not started")
        ready, detail = _health(state, kind, "127.0.0.1", port) if alive else (False, "")
        rows.append(ComponentStatus(name, kind, f"pid {pid}" if pid else "", process, ready, detail))
    how = f"launch.sh pid {state.local.pid}" + (", detached" if state.local.detached else "")
    headline = f"{state.name} (local, {how}) in {state.directory}: " + _life(state, running)
    return Status(state, running, headline, tuple(rows))


def _slurm_status(state: DeploymentState) -> Status:
    from dyncc.tools.lifecycle import slurm

    assert state.slurm is not None
    job, env = state.slurm.job_id, slurm.slurm_env(state.slurm.slurm_conf)
    info = slurm.job_info(job, env)
    ours = info is not None and slurm.is_ours(state, info)
    running = ours and info is not None and not info.ended
    steps = slurm.job_steps(job, env) if running else {}
    hosts = Path(state.directory) / "run" / job / "hosts"
    names = [(c.name, c.kind, c.port) for c in state.components]
    names += [(name, "infra", None) for name in steps if name not in {n for n, _, _ in names} | {"batch", "bench"}]
    rows = []
    for name, kind, port in names:
        host = _read(hosts / name)
        process = "running" if name in steps else ("exited" if host else "not started")
        ready, detail = _health(state, kind, host, port) if name in steps else (False, "")
        rows.append(ComponentStatus(name, kind, steps.get(name) or host, process, ready, detail))
    if info is None:
        what = "ended (no longer known to Slurm)"
    elif not ours:
        what = f"ended (job id {job} now belongs to {info.command})"
    else:
        what = f"{info.state.lower()}" + (f" ({info.reason})" if info.state == "PENDING" else f" on {info.nodes}")
    headline = f"{state.name} (slurm job {job}) in {state.directory}: {what}" + (
        f", serving {state.url}/v1" if running and state.url else ""
    )
    return Status(state, running, headline, tuple(rows))


def _life(state: DeploymentState, running: bool) -> str:
    if running:
        return f"running, serving {state.url}/v1" if state.url else "starting (not ready yet)"
    code = f" (exit status {state.exit_status})" if state.exit_status is not None else ""
    return f"ended{code}"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()[:256]
    except OSError:
        return ""
