"""Slurm target's rendering: one sbatch job whose srun steps start the frontend and every worker replica.

Follows Dynamo's multi-node pattern (frontend on the head node; each worker an ``srun`` over its
nodes with one rank per GPU, under the engine's rank launcher when it has several ranks) and adds what
hand-written scripts lack: steps placed on the nodes dyncc's placement chose, ``--exact`` GPU
requests so no two steps share a GPU, readiness polling, the container imported once per node, the
model downloaded once per job into a shared cache before any worker starts, the site's options
(checked one by one), and the spec's ``on_worker_exit`` policy (restart a dead worker step with
backoff, or fail the job). Each step runs the plan's command line for its pool; an engine that runs on
the host (``worker_runtime: mocker``: Dynamo's mock engine) runs without containers, one process per worker.
"""

from __future__ import annotations

import re
from importlib import resources

import msgspec

from dyncc.compiler.plan import (
    ROUTER_POLICY_FILE,
    DeploymentPlan,
    Files,
    PoolPlan,
    Slot,
    WorkerPlan,
    oversized_files,
    text_bytes,
)
from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.targets.bench import bench_script
from dyncc.targets.env_merge import Written
from dyncc.targets.hub_cache import LOCAL_MODEL, hub_cache_lines
from dyncc.targets.ports import bootstrap_port, port_problems, system_port
from dyncc.targets.release_flags import frontend_command_problems, frontend_host_args, worker_command_problems
from dyncc.targets.shell import Raw, quote, ready_probe_text, shell_words, template_environment
from dyncc.targets.slurm.env import env_problems, job_exports, worker_env
from dyncc.targets.slurm.groups import group_constraint, group_nodes, group_problems
from dyncc.targets.slurm.settings import (
    PYXIS_OPTIONS,
    SBATCH_OPTIONS,
    SRUN_OPTIONS,
    SlurmSettings,
    managed_option,
)

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
    "HF_HUB_OFFLINE",
    "DYNCC_SETUP_SCRIPT",
    "DYNCC_ENV_FILES",
)

# A site option line: one long option, with a value of plain characters (no space, quote, `$`, `;`, newline),
# so it is one #SBATCH directive or one srun word whatever reads it.
OPTION_LINE = re.compile(r"--[a-z][a-z0-9-]*(=[A-Za-z0-9._,:=/@%+*\[\]-]+)?")

# Options dyncc writes itself, with the spec setting to use instead; a site line setting one would contradict
# (or silently override) what the placement and the settings say.
MANAGED_SBATCH = {
    "job-name": "it is the spec's `name`",
    "nodes": "the placement sizes the job (cluster, pools)",
    "gres": "set slurm.gpu_request",
    "gpus-per-node": "set slurm.gpu_request",
    "gpus": "set slurm.gpu_request",
    "time": "set slurm.time",
    "partition": "set slurm.partition",
    "account": "set slurm.account",
    "qos": "set slurm.qos",
    "reservation": "set slurm.reservation",
    "constraint": "set slurm.constraint",
    "exclusive": "set slurm.exclusive",
    "output": "dyncc writes the job log to dyncc-<name>-<job>.out",
}
_PLACED = "the placement decides it (cluster, pools)"
MANAGED_SRUN = {
    "job-name": "each step is named after its worker",
    "output": "each step logs to run/<job>/logs/<step>.log",
    "open-mode": "step logs are appended across restarts",
    "nodes": _PLACED,
    "ntasks": _PLACED,
    "ntasks-per-node": _PLACED,
    "nodelist": _PLACED,
    "gres": _PLACED,
    "gpus": _PLACED,
    "gpus-per-node": _PLACED,
    "gpus-per-task": _PLACED,
    "exact": "worker steps always use --exact",
    "overlap": "dyncc decides which steps overlap",
    "mpi": "set slurm.mpi",
    "cpus-per-task": "set slurm.cpus_per_task",
    "mem": "set slurm.mem_per_task",
    "container-image": "set image or slurm.container_image",
    "container-name": "set slurm.container_name",
    "container-mounts": "set slurm.container_mounts",
    "container-env": "dyncc passes the variables the steps read",
}


# Where a local checkpoint directory is mounted (read-only) in the container and served from.
CHECKPOINT_MOUNT = "/model"
# Host paths written into pyxis' comma- and colon-separated --container-mounts, inside double quotes.
MOUNTABLE_PATH = re.compile(r"/[A-Za-z0-9._/-]*")

# slurmctld refuses batch scripts over SchedulerParameters=max_script_size, 4 MB unless raised.
MAX_SBATCH_BYTES = 4 * 1024 * 1024
STEP_OVERHEAD_BYTES = 400  # a step's comment and srun line around its command (~300 bytes today)


class StepView(msgspec.Struct, frozen=True):
    """What the template needs of one worker replica's srun step."""

    name: str
    nodes: tuple[int, ...]
    nodelist: str
    resources: str  # " --cpus-per-task=N --mem=M": the site settings, or the CPUs the node shape gives a rank
    ranks_per_node: int
    tasks_per_node: int
    gpus: int
    system_port: int
    mpi: str
    command: str


def _port(settings: SlurmSettings, worker: WorkerPlan) -> int:
    return system_port(settings.system_port_base, worker)


def check(plan: DeploymentPlan, settings: SlurmSettings) -> list[Diagnostic]:
    """The frontend's port and the workers' system ports (DYN402), what the workers' engine cannot run (the
    mock's modes: DYN503) or its release lacks (DYN514), the site's option lines (DYN560, DYN561) and a
    revision that cannot apply (DYN562)."""
    return (
        port_problems(plan, "slurm", settings.http_port, settings.system_port_base)
        + list(plan.engine_problems)
        + worker_command_problems(plan, "slurm")
        + frontend_command_problems(plan, frontend_command(plan, settings)[3:], "slurm")
        + option_problems("extra_sbatch", settings.extra_sbatch, MANAGED_SBATCH, "#SBATCH", SBATCH_OPTIONS)
        + option_problems("srun_options", settings.srun_options, MANAGED_SRUN, "srun", SRUN_OPTIONS)
        + revision_problems(plan)
        + group_problems(plan, settings.constraint)
        + checkpoint_problems(plan)
        + infra_node_problems(plan, settings)
        + segment_problems(plan, settings)
        + env_problems(plan, settings.system_port_base, exported_env(plan, settings))  # DYN525/DYN526
    )


def exported_env(plan: DeploymentPlan, settings: SlurmSettings) -> list[Written]:
    """What job.sbatch exports for every step (the template writes the same from the same facts)."""
    hf_home = (settings.model_cache_dir or "$DYNCC_DIR/hf-home") if downloads_model(plan) else None
    return job_exports(plan, runs_etcd(plan, settings), runs_nats(plan), hf_home)


def infra_node_problems(plan: DeploymentPlan, settings: SlurmSettings) -> list[Diagnostic]:
    """DYN566: a dedicated etcd/NATS node with neither to run; DYN567: one node more than the cluster has."""
    if plan.infra_node != "dedicated":
        return []
    path = ("infrastructure", "node")
    if not dedicated_infra_node(plan, settings):
        return [
            Diagnostic(
                "DYN566",
                "infrastructure.node: dedicated, but this job runs neither etcd nor NATS (file discovery, tcp "
                "request plane): no node is added for them",
                path=path,
                severity="warning",
                hint="remove infrastructure.node, or set request_plane: nats / slurm.discovery: etcd if you want them",
            )
        ]
    if group_nodes(plan):
        return [
            Diagnostic(
                "DYN567",
                "infrastructure.node: dedicated with cluster.node_groups: the job asks for each group's nodes by "
                "feature (--constraint), and a node for etcd/NATS belongs to no group",
                path=path,
                hint="run etcd/NATS on the head node (infrastructure.node: head)",
            )
        ]
    if job_nodes(plan, settings) > plan.placement.nodes:
        return [
            Diagnostic(
                "DYN567",
                f"the workers take {plan.placement.nodes_used} node(s) and etcd/NATS one more of their own: the job "
                f"asks for {job_nodes(plan, settings)}, but cluster.nodes is {plan.placement.nodes}",
                path=path,
                hint=f"raise cluster.nodes to {job_nodes(plan, settings)}, or run etcd/NATS on the head node "
                "(infrastructure.node: head)",
            )
        ]
    return []


def runs_etcd(plan: DeploymentPlan, settings: SlurmSettings) -> bool:
    """etcd as a step: Dynamo 0.x discovers through it; 1.x when slurm.discovery says etcd."""
    return settings.discovery == "etcd" or plan.profile.discovery == "etcd+nats"


def runs_nats(plan: DeploymentPlan) -> bool:
    """NATS as a step: Dynamo 0.x's event plane, or `request_plane: nats` (frontend and workers send requests
    through it; Dynamo's default is tcp)."""
    return plan.profile.discovery == "etcd+nats" or plan.request_plane == "nats"


def dedicated_infra_node(plan: DeploymentPlan, settings: SlurmSettings) -> bool:
    """etcd/NATS on a node of their own (infrastructure.node: dedicated), when the job runs either."""
    return plan.infra_node == "dedicated" and (runs_etcd(plan, settings) or runs_nats(plan))


def job_nodes(plan: DeploymentPlan, settings: SlurmSettings) -> int:
    """Nodes the job asks for: the placement's, and the dedicated etcd/NATS node."""
    return plan.placement.nodes_used + (1 if dedicated_infra_node(plan, settings) else 0)


def segment_problems(plan: DeploymentPlan, settings: SlurmSettings) -> list[Diagnostic]:
    """DYN565: an extra_sbatch `--segment=N` the job's node count cannot be cut into (Slurm's block topology
    allocates whole segments: the node count must be a multiple of N, so N at most the node count)."""
    nodes = job_nodes(plan, settings)
    problems = []
    for i, line in enumerate(settings.extra_sbatch):
        name, _, value = line.partition("=")
        if name != "--segment":
            continue
        size = int(value) if value.isdigit() else 0
        if size >= 1 and nodes % size == 0:
            continue
        problems.append(
            Diagnostic(
                "DYN565",
                f"slurm.extra_sbatch[{i}] {line} does not fit the job's {nodes} node(s): Slurm allocates whole "
                "segments of that many nodes, so the node count must be a positive multiple of it",
                path=("slurm", "extra_sbatch", i),
                hint=f"use a segment size that divides {nodes} (e.g. --segment={nodes}), or remove the line",
            )
        )
    return problems


def option_problems(
    key: str, lines: list[str], managed: dict[str, str], what: str, options: frozenset[str]
) -> list[Diagnostic]:
    """DYN560: a line that is not exactly one long option; DYN561: an option dyncc writes itself, also
    abbreviated (``options``: the command's own, which an abbreviation is read against)."""
    problems = []
    for i, line in enumerate(lines):
        path = ("slurm", key, i)
        if not OPTION_LINE.fullmatch(line):
            problems.append(
                Diagnostic(
                    "DYN560",
                    f"slurm.{key}[{i}] {line!r:.80} is not one {what} option",
                    path=path,
                    hint="one option per item, `--name` or `--name=value`: no newline, space, quote, `$` or `;` "
                    "(write a value with spaces as several options, or in slurm.setup_script)",
                )
            )
            continue
        meant = managed_option(line[2:].split("=", 1)[0], options | PYXIS_OPTIONS, managed)
        if meant is not None:
            problems.append(
                Diagnostic(
                    "DYN561",
                    f"slurm.{key}[{i}] sets {meant[1]}, which dyncc writes itself",
                    path=path,
                    hint=f"remove it: {managed[meant[0]]}",
                )
            )
    return problems


def revision_problems(plan: DeploymentPlan) -> list[Diagnostic]:
    if plan.model_revision is None or (plan.model_local_dir is None and not plan.model_path_absolute):
        return []
    return [
        Diagnostic(
            "DYN562",
            f"model.revision {plan.model_revision!r} names a Hugging Face revision, but model.path is a local "
            "checkpoint directory: nothing would be downloaded",
            path=("model", "revision"),
            hint="remove model.revision, or give model.path as a Hugging Face id",
        )
    ]


def _image(plan: DeploymentPlan, settings: SlurmSettings) -> str | None:
    """The container the steps run in: the site's squashfs file, else the spec's image, else the documented
    default (NGC's runtime image of the engine for the Dynamo version), in pyxis' form; none for an engine that
    runs on the host (the mock engine)."""
    image = plan.worker_image()
    if image is None:
        return None
    return settings.container_image or pyxis_image(image)


def pyxis_image(image: str) -> str:
    """``nvcr.io/nvidia/x:1`` as pyxis (enroot) names it, ``nvcr.io#nvidia/x:1``: the registry is separated by
    ``#`` (``[USER@][REGISTRY#]IMAGE[:TAG]``); with ``/`` enroot would read ``nvcr.io`` as a Docker Hub user.
    A first component is a registry as Docker reads one: it has a ``.`` or ``:``, or is ``localhost``."""
    registry, slash, rest = image.partition("/")
    if slash and ("." in registry or ":" in registry or registry == "localhost"):
        return f"{registry}#{rest}"
    return image


def _container_name(plan: DeploymentPlan) -> str:
    # With the job id: pyxis' older container_scope=global would otherwise reuse another job's container.
    return f'"--container-name=dyncc-{plan.name}-$SLURM_JOB_ID"'


def _mounts(plan: DeploymentPlan, settings: SlurmSettings) -> str:
    # Every path matches a plain-path pattern (spec validation, DYN564), so double quotes hold them safely.
    site_files = [f"{f}:{f}:ro" for f in (settings.setup_script, *settings.env_files) if f]
    cache = [f"{settings.model_cache_dir}:{settings.model_cache_dir}"] if settings.model_cache_dir else []
    checkpoint = [f"{local_checkpoint(plan)}:{CHECKPOINT_MOUNT}:ro"] if local_checkpoint(plan) else []
    return ",".join(["$DYNCC_DIR:$DYNCC_DIR", *checkpoint, *cache, *site_files, *settings.container_mounts])


def container_options(plan: DeploymentPlan, settings: SlurmSettings) -> list[str]:
    """pyxis options for every step, when there is an image (never for an engine that runs on the host)."""
    image = _image(plan, settings)
    if not image:
        return []
    source = _container_name(plan) if settings.container_name else quote(f"--container-image={image}")
    return [
        source,
        f'"--container-mounts={_mounts(plan, settings)}"',
        f"'--container-env={','.join(CONTAINER_ENV)}'",
        "--no-container-mount-home",
    ]


def container_import_options(plan: DeploymentPlan, settings: SlurmSettings) -> list[str]:
    """pyxis options of the step that imports the image once per node (none: each step imports it)."""
    image = _image(plan, settings)
    if not image or not settings.container_name:
        return []
    return [quote(f"--container-image={image}"), _container_name(plan), "--no-container-mount-home"]


def local_checkpoint(plan: DeploymentPlan) -> str | None:
    """The host directory of a local checkpoint the workers serve (a directory on this machine, or an absolute
    model.path on the cluster's filesystem): mounted read-only at CHECKPOINT_MOUNT, never downloaded. None
    for a Hugging Face id, and for an engine that runs on the host (the mock engine: no container)."""
    if plan.engine.image is None:
        return None
    if plan.model_local_dir is not None:
        return plan.model_local_dir
    return plan.model_path if plan.model_path_absolute else None


def downloads_model(plan: DeploymentPlan) -> bool:
    """A Hugging Face id served by workers that do not run offline: fetched once per job into the shared cache."""
    return not plan.engine.offline and local_checkpoint(plan) is None


def checkpoint_problems(plan: DeploymentPlan) -> list[Diagnostic]:
    """DYN564: a local checkpoint path pyxis cannot mount (its --container-mounts splits on `,` and `:`)."""
    host = local_checkpoint(plan)
    if host is None or MOUNTABLE_PATH.fullmatch(host):
        return []
    return [
        Diagnostic(
            "DYN564",
            f"the local checkpoint {host!r:.120} cannot be mounted into the Slurm job's container: pyxis' "
            "--container-mounts takes plain paths (letters, digits, `.`, `_`, `-`, `/`)",
            path=("model", "path"),
            hint="move or link the checkpoint to a plain path on the cluster's shared filesystem, and give that",
        )
    ]


def _hf_home(settings: SlurmSettings) -> str:
    return quote(settings.model_cache_dir) if settings.model_cache_dir else '"$DYNCC_DIR/hf-home"'


def download_command(plan: DeploymentPlan, settings: SlurmSettings) -> list:
    return [
        _python(plan, settings),
        Raw('"$DYNCC_DIR/download.py"'),
        plan.model_path,
        plan.model_revision or "",
        Raw('"$RUN_DIR/model_path"'),
    ]


def _scaled_memory(amount: str, factor: int) -> str:
    """``64G`` x 4 -> ``256G`` (Slurm's default unit, M, when there is none)."""
    unit = amount[-1] if amount[-1] in "KMGT" else ""
    return f"{int(amount.rstrip('KMGT')) * factor}{unit or 'M'}"


def _resources(settings: SlurmSettings, tasks_per_node: int, ranks_per_task: int) -> str:
    """srun's CPUs and memory of a worker step. CPUs per rank: slurm.cpus_per_task, else the job's CPUs per
    node shared among the node's GPUs (CPUS_PER_RANK, computed by the job from SLURM_JOB_CPUS_PER_NODE): with
    --exact and no --cpus-per-task, Slurm gives each rank one CPU. A worker of an engine that runs one process
    per worker (the mock) is one task for all its ranks."""
    if settings.cpus_per_task is not None:
        options = [f"--cpus-per-task={settings.cpus_per_task}"]
    elif ranks_per_task == 1:
        options = ['"--cpus-per-task=$CPUS_PER_RANK"']
    else:
        options = [f'"--cpus-per-task=$((CPUS_PER_RANK * {ranks_per_task}))"']
    if settings.mem_per_task is not None:
        options.append(f"--mem={_scaled_memory(settings.mem_per_task, tasks_per_node)}")  # srun's --mem is per node
    return "".join(f" {o}" for o in options)


def _python(plan: DeploymentPlan, settings: SlurmSettings) -> str:
    """The container's own python, or DYNCC_PYTHON (which names a python outside any container)."""
    return "python3" if container_options(plan, settings) else Raw('"$PYTHON"')


def frontend_command(plan: DeploymentPlan, settings: SlurmSettings) -> list:
    return [
        _python(plan, settings),
        "-m",
        "dynamo.frontend",
        *frontend_host_args(plan, "0.0.0.0"),
        "--http-port",
        str(settings.http_port),
        *plan.frontend.flags,
        *plan.router_policy_args(Raw(f'"$DYNCC_DIR/engine/{ROUTER_POLICY_FILE}"')),
    ]


def worker_command(plan: DeploymentPlan, settings: SlurmSettings, pool: PoolPlan, worker: WorkerPlan) -> list:
    exports = exported_env(plan, settings)
    env = [f"{k}={v}" for k, v in worker_env(plan, pool, worker, _port(settings, worker), exports)]
    prefix = list(pool.launch_prefix)
    # Several ranks: each starts under the engine's launcher (which makes rank 0 the Dynamo worker).
    launcher = list(plan.engine.rank_launcher) if worker.gpus > 1 else []
    args = plan.worker_args(pool, lambda slot: _slot(plan, settings, worker, slot))
    return ["env", *env, *prefix, *launcher, _python(plan, settings), "-m", pool.command.module, *args]


def _slot(plan: DeploymentPlan, settings: SlurmSettings, worker: WorkerPlan, slot: Slot) -> object:
    """Where this target put what a worker's command line names (files under the job's $DYNCC_DIR)."""
    if slot.kind == "model":
        # A local checkpoint from its read-only mount; else the snapshot the job's download step fetched (its
        # path is known at run time only), served offline.
        if local_checkpoint(plan) is not None:
            return CHECKPOINT_MOUNT
        return Raw('"$MODEL_PATH"') if downloads_model(plan) else plan.model_path
    if slot.kind == "local_model":
        return plan.model_local_dir or Raw('"$DYNCC_DIR/model"')
    if slot.kind == "engine_file":
        return Raw(f'"$DYNCC_DIR/engine/{slot.name}"')
    if slot.kind == "data_file":
        return Raw(f'"$DYNCC_DIR/{slot.name}"')
    if slot.kind == "bootstrap_port":
        return str(bootstrap_port(plan, worker, settings.system_port_base, settings.http_port))
    return None  # revision: the job's download step fetches the model at its revision


def _step(plan: DeploymentPlan, settings: SlurmSettings, pool: PoolPlan, worker: WorkerPlan) -> StepView:
    nodes = worker.placement.nodes
    ranks_per_node = len(worker.placement.gpus_on(nodes[0]))
    # One rank per GPU, or one process whatever the worker's GPU count (the mock).
    tasks_per_node = ranks_per_node if plan.engine.rank_per_gpu else 1
    mpi = f" --mpi={settings.mpi}" if tasks_per_node * len(nodes) > 1 else ""
    nodelist = ",".join(f"${{NODES[{n}]}}" for n in nodes)
    return StepView(
        name=worker.name,
        nodes=nodes,
        nodelist=f'"{nodelist}"',
        resources=_resources(settings, tasks_per_node, ranks_per_node // tasks_per_node),
        ranks_per_node=ranks_per_node,
        tasks_per_node=tasks_per_node,
        gpus=worker.gpus,
        system_port=_port(settings, worker),
        mpi=mpi,
        command=shell_words(worker_command(plan, settings, pool, worker)),
    )


def render_sbatch(plan: DeploymentPlan, settings: SlurmSettings) -> str:
    return (
        template_environment(__package__)
        .get_template("job.sbatch.j2")
        .render(
            plan=plan,
            settings=settings,
            job_name=plan.name,
            nodes=plan.placement.nodes_used,
            job_nodes=job_nodes(plan, settings),
            etcd=runs_etcd(plan, settings),
            nats=runs_nats(plan),
            infra_node=plan.placement.nodes_used if dedicated_infra_node(plan, settings) else None,
            infra_ports=[port for port, on in ((2379, runs_etcd(plan, settings)), (4222, runs_nats(plan))) if on],
            gpus_per_node=plan.placement.gpus_per_node,
            runtime_label=plan.engine.label,
            container=container_options(plan, settings),
            extra_env=[(name, value) for name, value, _ in plan.engine.env],
            hub_cache_lines=hub_cache_lines(plan, _slot(plan, settings, plan.workers[0][1], LOCAL_MODEL), "$RUN_DIR")
            if plan.workers
            else [],
            frontend_cmd=shell_words(frontend_command(plan, settings)),
            workers=[_step(plan, settings, p, w) for p, w in plan.workers],
            benchmark=plan.benchmark is not None,
            restart=plan.on_worker_exit == "restart",
            container_import=container_import_options(plan, settings),
            download=downloads_model(plan),
            download_cmd=shell_words(download_command(plan, settings)),
            hf_home=_hf_home(settings),
            setup_script=settings.setup_script,
            env_files=":".join(settings.env_files),
            srun_options=[quote(o) for o in settings.srun_options],
            group_constraint=group_constraint(plan),
            group_nodes=group_nodes(plan),
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


def render(plan: DeploymentPlan, settings: SlurmSettings) -> Files:
    problems = [d for d in check(plan, settings) if d.is_error]  # warnings are check()'s to report
    if problems:
        raise DiagnosticError(problems)
    estimate = sbatch_bytes_estimate(plan, settings)
    if estimate > MAX_SBATCH_BYTES:
        raise DiagnosticError([_too_large(plan, estimate)])
    here = resources.files(__package__).joinpath("templates")
    files: Files = {
        "job.sbatch": render_sbatch(plan, settings),
        "step.sh": here.joinpath("step.sh").read_text("utf-8"),
        "ready.py": ready_probe_text(),
    }
    if downloads_model(plan):
        files["download.py"] = here.joinpath("download.py").read_text("utf-8")
    for name, text in plan.engine_files().items():
        files[f"engine/{name}"] = text
    if plan.benchmark is not None:
        tokenizer = plan.model_local_dir or (Raw('"$HERE/model"') if plan.engine.offline else plan.model_path)
        files["bench.sh"] = bench_script(plan, plan.benchmark, tokenizer, "$HERE/run/bench")
    files.update({f"model/{name}": text for name, text in plan.model_files().items()})
    problems = oversized_files(NAME, files)
    if text_bytes(files["job.sbatch"]) > MAX_SBATCH_BYTES:
        problems.append(_too_large(plan, text_bytes(files["job.sbatch"])))
    if problems:
        raise DiagnosticError(problems)
    files.update(plan.data_files())
    return files
