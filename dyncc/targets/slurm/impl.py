"""Slurm target's rendering: one sbatch job whose srun steps start the frontend and every worker replica.

Follows Dynamo's multi-node pattern (frontend on the head node; each worker an ``srun`` over its
nodes with one rank per GPU, under ``trtllm-llmapi-launch`` when it has several ranks) and adds what
hand-written scripts lack: steps placed on the nodes dyncc's placement chose, ``--exact`` GPU
requests so no two steps share a GPU, readiness polling, and failing the whole job when any step
exits. With ``worker_runtime: mocker`` the same job runs Dynamo's mock engine, without containers.
"""

from __future__ import annotations

import dataclasses
from importlib import resources

from dyncc.compiler.plan import DeploymentPlan, PoolPlan, WorkerPlan, oversized_files, text_bytes
from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.targets.bench import bench_script
from dyncc.targets.mocker import bootstrap_port, mock_problems, mocker_args, tiny_model_files
from dyncc.targets.ports import port_problems, system_port
from dyncc.targets.shell import Raw, quote, ready_probe_text, shell_words, template_environment
from dyncc.targets.slurm.settings import SlurmSettings

NAME = "slurm"

# Environment the steps read, passed into pyxis containers explicitly.
CONTAINER_ENV = (
    "DYN_DISCOVERY_BACKEND",
    "DYN_FILE_KV",
    "ETCD_ENDPOINTS",
    "NATS_SERVER",
    "DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS",
    "DYNCC_HOSTS_DIR",
    "DYNCC_STEP",
    "HF_TOKEN",
    "HF_HOME",
)


# slurmctld refuses batch scripts over SchedulerParameters=max_script_size, 4 MB unless raised.
MAX_SBATCH_BYTES = 4 * 1024 * 1024
STEP_OVERHEAD_BYTES = 400  # a step's comment and srun line around its command (~300 bytes today)


@dataclasses.dataclass(frozen=True)
class StepView:
    """What the template needs of one worker replica's srun step."""

    name: str
    nodes: tuple[int, ...]
    nodelist: str
    ranks_per_node: int
    tasks_per_node: int
    gpus: int
    system_port: int
    mpi: str
    command: str


def _mocker(plan: DeploymentPlan) -> bool:
    return plan.worker_runtime == "mocker"


def _port(settings: SlurmSettings, worker: WorkerPlan) -> int:
    return system_port(settings.system_port_base, worker)


def check(plan: DeploymentPlan, settings: SlurmSettings) -> list[Diagnostic]:
    """The frontend's port and the workers' system ports (DYN402), the mock engine's modes (DYN503)."""
    return port_problems(plan, "slurm", settings.http_port, settings.system_port_base) + mock_problems(plan)


def container_options(plan: DeploymentPlan, settings: SlurmSettings) -> list[str]:
    """pyxis options for every step, when the spec names an image (never for the mock engine)."""
    if not plan.image or _mocker(plan):
        return []
    # Extra mounts match a plain-path pattern (spec validation), so double quotes hold them safely.
    mounts = ",".join(["$DYNCC_DIR:$DYNCC_DIR", *settings.container_mounts])
    return [
        quote(f"--container-image={plan.image}"),
        f'"--container-mounts={mounts}"',
        f"'--container-env={','.join(CONTAINER_ENV)}'",
        "--no-container-mount-home",
    ]


def frontend_command(plan: DeploymentPlan, settings: SlurmSettings) -> list:
    return [
        Raw('"$PYTHON"'),
        "-m",
        "dynamo.frontend",
        "--http-host",
        "0.0.0.0",
        "--http-port",
        str(settings.http_port),
        *plan.frontend.flags,
    ]


def worker_command(plan: DeploymentPlan, settings: SlurmSettings, pool: PoolPlan, worker: WorkerPlan) -> list:
    env = [
        f"DYN_SYSTEM_PORT={_port(settings, worker)}",
        *(f"{k}={v}" for k, v in (*plan.profile.worker_env, *pool.env)),
    ]
    if _mocker(plan):
        model = plan.model_local_dir or Raw('"$DYNCC_DIR/model"')
        return [
            "env",
            *env,
            Raw('"$PYTHON"'),
            "-m",
            "dynamo.mocker",
            *mocker_args(
                plan, pool, worker, model, bootstrap_port(plan, worker, settings.system_port_base, settings.http_port)
            ),
        ]
    # Several ranks: each rank runs under trtllm-llmapi-launch, which makes rank 0 the Dynamo worker.
    launcher = ["trtllm-llmapi-launch"] if worker.gpus > 1 else []
    engine_path = Raw(f'"$DYNCC_DIR/engine/{pool.engine_file}"')
    python = (
        "python3" if container_options(plan, settings) else Raw('"$PYTHON"')
    )  # the container's own, or DYNCC_PYTHON
    return [
        "env",
        *env,
        *launcher,
        python,
        "-m",
        "dynamo.trtllm",
        *pool.worker_args(plan.model_path, plan.served_name, engine_path),
    ]


def _step(plan: DeploymentPlan, settings: SlurmSettings, pool: PoolPlan, worker: WorkerPlan) -> StepView:
    nodes = worker.placement.nodes
    ranks_per_node = len(worker.placement.gpus_on(nodes[0]))
    # The mock is one process whatever its GPU count; TRT-LLM runs one rank per GPU.
    tasks_per_node = 1 if _mocker(plan) else ranks_per_node
    mpi = f" --mpi={settings.mpi}" if tasks_per_node * len(nodes) > 1 else ""
    nodelist = ",".join(f"${{NODES[{n}]}}" for n in nodes)
    return StepView(
        name=worker.name,
        nodes=nodes,
        nodelist=f'"{nodelist}"',
        ranks_per_node=ranks_per_node,
        tasks_per_node=tasks_per_node,
        gpus=worker.gpus,
        system_port=_port(settings, worker),
        mpi=mpi,
        command=shell_words(worker_command(plan, settings, pool, worker)),
    )


def render_sbatch(plan: DeploymentPlan, settings: SlurmSettings) -> str:
    mocker = _mocker(plan)
    return (
        template_environment(__package__)
        .get_template("job.sbatch.j2")
        .render(
            plan=plan,
            settings=settings,
            job_name=plan.name,
            nodes=plan.placement.nodes_used,
            gpus_per_node=plan.placement.gpus_per_node,
            runtime_label="Dynamo's mock engine" if mocker else "TensorRT-LLM",
            container=container_options(plan, settings),
            extra_env=[("HF_HUB_OFFLINE", "1")] if mocker else [],
            frontend_cmd=shell_words(frontend_command(plan, settings)),
            workers=[_step(plan, settings, p, w) for p, w in plan.workers],
            benchmark=plan.benchmark is not None,
        )
    )


def sbatch_bytes_estimate(plan: DeploymentPlan, settings: SlurmSettings) -> int:
    """The job script's size from one worker command per pool, before rendering one line per worker."""
    total = 16_384  # the fixed part of the script
    for pool in plan.pools:
        if pool.workers:
            line = text_bytes(shell_words(worker_command(plan, settings, pool, pool.workers[0])))
            total += (line + STEP_OVERHEAD_BYTES) * len(pool.workers)
    return total


def _too_large(plan: DeploymentPlan, size: int) -> Diagnostic:
    return Diagnostic(
        "DYN512",
        f"job.sbatch would be about {size // 1024} KiB; Slurm refuses batch scripts over "
        f"{MAX_SBATCH_BYTES // (1024 * 1024)} MiB (slurm.conf SchedulerParameters=max_script_size)",
        path=("pools",),
        hint="fewer worker replicas per job or smaller per-worker values (env): each worker's command is "
        "written into the script; split the deployment into several jobs",
    )


def render(plan: DeploymentPlan, settings: SlurmSettings) -> dict[str, str]:
    problems = check(plan, settings)
    if problems:
        raise DiagnosticError(problems)
    estimate = sbatch_bytes_estimate(plan, settings)
    if estimate > MAX_SBATCH_BYTES:
        raise DiagnosticError([_too_large(plan, estimate)])
    here = resources.files(__package__).joinpath("templates")
    files = {
        "job.sbatch": render_sbatch(plan, settings),
        "step.sh": here.joinpath("step.sh").read_text("utf-8"),
        "ready.py": ready_probe_text(),
    }
    for pool in plan.pools:
        files[f"engine/{pool.engine_file}"] = pool.engine_yaml
    if plan.benchmark is not None:
        tokenizer = plan.model_local_dir or (Raw('"$HERE/model"') if _mocker(plan) else plan.model_path)
        files["bench.sh"] = bench_script(plan, plan.benchmark, tokenizer, "$HERE/run/bench")
    if _mocker(plan) and plan.model_local_dir is None:
        files.update({f"model/{name}": text for name, text in tiny_model_files().items()})
    problems = oversized_files(NAME, files)
    if text_bytes(files["job.sbatch"]) > MAX_SBATCH_BYTES:
        problems.append(_too_large(plan, text_bytes(files["job.sbatch"])))
    if problems:
        raise DiagnosticError(problems)
    return files
