"""The state file of a deployment `dyncc up` started: ``<deployment dir>/run/up.json``.

``status``, ``logs``, ``down`` and ``bench`` find a deployment by its directory and this file, never by a
process or job name. It says which target runs it and how to find exactly that run: the launch script's
pid with its start time and the boot it started in (a pid the kernel reused for another process is never
signalled), the Slurm job id with the job script's path (a job id reused by another job, or a job on
another cluster, is never cancelled), or the Kubernetes objects. It also keeps what the gate needs from the
compiled spec (benchmark, SLA targets, prediction), so ``dyncc bench`` measures what was deployed even if
the spec has been edited since.

It lives under ``run/``, which a rebuild carries over (``dyncc.output``), and is replaced atomically.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.output import replace_file
from dyncc.spec.input_gate import InputKind, read_input

STATE_FILE = "up.json"
MAX_STATE_BYTES = 256 * 1024  # a few KB in practice; the cap keeps a damaged file from costing anything
STATE_INPUT = InputKind(
    "deployment state",
    "DYN591",
    "start the deployment again with `dyncc up`, or remove run/up.json if nothing runs from here",
    max_bytes=MAX_STATE_BYTES,
    size_code="DYN591",
    size_hint="run/up.json is written by `dyncc up` and is a few KB: remove the damaged file",
)

Target = Literal["local", "slurm", "k8s"]


class StateModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Component(StateModel):
    """One process of the deployment: the frontend or a worker replica (or etcd/NATS)."""

    name: str = Field(max_length=128)  # frontend, prefill-0, decode-1 (the log file's name too)
    kind: Literal["frontend", "worker", "infra"]
    pool: str | None = Field(None, max_length=64)  # the worker's pool role
    port: int | None = Field(None, ge=1, le=65535)  # HTTP port (frontend) or system port (worker)


class LocalRun(StateModel):
    pid: int = Field(ge=2)  # launch.sh: session and process-group leader of the deployment
    start_ticks: int = Field(ge=0)  # /proc/PID/stat starttime: with boot_id, what makes the pid this one
    boot_id: str = Field(max_length=64)
    run_dir: str = Field(max_length=4096)  # logs and the lock the launch script holds (DYNCC_RUN_DIR)
    detached: bool = False


class SlurmRun(StateModel):
    job_id: str = Field(pattern=r"^[0-9]+$", max_length=20)
    command: str = Field(max_length=4096)  # the job script's absolute path, as `scontrol show job` gives it
    slurm_conf: str | None = Field(None, max_length=4096)  # SLURM_CONF at submission (which cluster)
    output: str = Field(max_length=4096)  # the job's stdout/stderr file


class K8sRun(StateModel):
    name: str = Field(max_length=253)  # the DynamoGraphDeployment
    namespace: str | None = Field(None, max_length=63)
    context: str | None = Field(None, max_length=1024)  # kubectl's current context at `up`


class BenchmarkState(StateModel):
    isl: int
    osl: int
    concurrency: list[int]
    request_count: int
    streaming: bool


class Sla(StateModel):
    ttft_ms: float | None = Field(None, gt=0)
    itl_ms: float | None = Field(None, gt=0)
    source: str = Field(max_length=256)  # where the targets were read: planner.ttft_ms, init --from-sla, ...


class Prediction(StateModel):
    ttft_ms: float | None = None
    itl_ms: float | None = None
    tokens_per_s_per_gpu: float | None = None
    source: str = Field(max_length=256)


class DeploymentState(StateModel):
    version: Literal[1] = 1
    target: Target
    name: str = Field(max_length=63)
    served_name: str = Field(max_length=1024)
    spec: str = Field(max_length=4096)
    directory: str = Field(max_length=4096)
    started_at: float
    gpus: int = Field(0, ge=0)
    url: str | None = Field(None, max_length=2048)  # the frontend, once ready
    components: list[Component] = Field(default_factory=list, max_length=4096)
    local: LocalRun | None = None
    slurm: SlurmRun | None = None
    k8s: K8sRun | None = None
    benchmark: BenchmarkState | None = None
    sla: Sla | None = None
    prediction: Prediction | None = None
    stop_requested: bool = False  # `dyncc down` asked it to stop: the `up` serving it exits 0
    ended_at: float | None = None
    exit_status: int | None = None


def state_path(directory: Path) -> Path:
    return Path(directory) / "run" / STATE_FILE


def write_state(state: DeploymentState) -> None:
    path = state_path(Path(state.directory))
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, (state.model_dump_json(indent=1) + "\n").encode())


def update_state(state: DeploymentState, **changes: object) -> DeploymentState:
    new = state.model_copy(update=changes)
    write_state(new)
    return new


def read_state(directory: str | Path) -> DeploymentState:
    """The state of the deployment `dyncc up` started from ``directory``; coded errors when there is none
    (DYN590) or it cannot be read (DYN591)."""
    directory = Path(directory)
    path = state_path(directory)
    if not path.exists() and not path.is_symlink():
        hint = "pass the directory `dyncc up` printed (OUT/up-<name> or OUT/up-<name>-<target>)"
        if directory.is_dir():
            found = sorted(p.parent.parent.name for p in directory.glob(f"*/run/{STATE_FILE}"))[:5]
            if found:
                hint = f"deployments under {directory}: {', '.join(found)}"
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN590", f"no deployment started by `dyncc up` in {directory} (no run/{STATE_FILE})", hint=hint
                )
            ]
        )
    raw = read_input(path, STATE_INPUT)
    try:
        state = DeploymentState.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "<document>"
        raise DiagnosticError(
            [Diagnostic("DYN591", f"{path} is damaged: {where}: {first.get('msg')}", hint=STATE_INPUT.read_hint)]
        ) from None
    if Path(state.directory).resolve() != directory.resolve():
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN591",
                    f"{path} belongs to {state.directory}, not to {directory} (the directory was copied or moved)",
                    hint="run the command on the directory `dyncc up` started from",
                )
            ]
        )
    return state


# --- what makes a pid this process: its start time in this boot -----------------------------------------


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot, /proc/PID/stat field 22); None when it is gone or a
    zombie (it has exited; its parent has not collected it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name in (...) may hold spaces and parentheses
    if fields[0] == "Z":
        return None
    return int(fields[19])


def is_same_process(pid: int, ticks: int, boot: str) -> bool:
    """Whether ``pid`` is still the process that started at ``ticks`` in boot ``boot``."""
    return bool(boot) and boot == boot_id() and start_ticks(pid) == ticks


def now() -> float:
    return time.time()


def absolute(path: str | Path) -> str:
    return os.path.abspath(path)
