"""Docker compose target's rendering: ``docker-compose.yaml`` and the engine YAMLs beside it.

One service per process: discovery (etcd; NATS too for Dynamo 0.x), the frontend, and one service per
worker replica, each given the GPUs the placement chose (``device_ids``, through the NVIDIA Container
Toolkit). Worker command lines are the plan's, the same as every other target's, with the engine YAML
mounted read-only at ``/etc/dyncc/engine``. Workers share a Hugging Face cache volume, report ready on
their system port's ``/health`` (the healthcheck), and start once discovery is healthy; the frontend
starts with them and routes to each as it registers, except on Dynamo 0.x, where it starts once every
worker is healthy (``Profile.frontend_after_workers``).

Every string from the spec is written with ``$`` doubled: compose interpolates ``$VAR`` in values,
and a spec's env value or model name must reach the process as written. ``HF_TOKEN`` is the one value
taken from the environment of whoever runs ``docker compose up`` (secrets stay out of the file).
"""

from __future__ import annotations

from typing import Any

from dyncc.compiler.plan import ROUTER_POLICY_FILE, DeploymentPlan, PoolPlan, Slot, WorkerPlan
from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.targets.compose.env import ETCD_URL, HF_HOME, env_problems, worker_env
from dyncc.targets.compose.env import discovery_env as _discovery_env
from dyncc.targets.compose.env import literal as _literal
from dyncc.targets.compose.settings import ComposeSettings
from dyncc.targets.release_flags import (
    frontend_command_problems,
    frontend_host_args,
    worker_command_problems,
    worker_revision_problems,
)
from dyncc.yaml_text import dump_yaml

NAME = "compose"
ENGINE_MOUNT = "/etc/dyncc/engine"
FRONTEND_PORT = 8000  # inside the frontend's container; published on compose.http_port


def check(plan: DeploymentPlan, settings: ComposeSettings) -> list[Diagnostic]:
    """Beyond the capabilities (one node, workers in containers; each worker owns its container's ports): what
    the workers' engine cannot run or its release lacks, and, since the workers download the hub model
    themselves, model.revision needs the worker's --revision."""
    return (
        list(plan.engine_problems)
        + worker_command_problems(plan, NAME)
        + frontend_command_problems(plan, frontend_command(plan)[3:], NAME)
        + worker_revision_problems(plan, NAME)
        + env_problems(plan, settings)  # DYN525/DYN526: a pool env variable compose writes itself
    )


def image(plan: DeploymentPlan) -> str:
    """The spec's image, else NGC's runtime image of the workers' engine for the Dynamo version (as the k8s
    target does)."""
    found = plan.worker_image()
    assert found is not None  # an engine that runs on the host is refused first (the mock engine: DYN530)
    return found


def _healthcheck(port: int, start_period_s: int) -> dict[str, Any]:
    # The runtime image has python3, not necessarily curl.
    probe = (
        "import sys, urllib.request; "
        f"sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:{port}/health', timeout=5).status == 200 else 1)"
    )
    return {
        "test": ["CMD", "python3", "-c", probe],
        "interval": "10s",
        "timeout": "6s",
        "retries": 3,
        "start_period": f"{start_period_s}s",
    }


def _discovery_services(plan: DeploymentPlan, settings: ComposeSettings) -> dict[str, Any]:
    services: dict[str, Any] = {
        "etcd": {
            "image": settings.etcd_image,
            "command": [
                "etcd",
                "--listen-client-urls",
                "http://0.0.0.0:2379",
                "--advertise-client-urls",
                ETCD_URL,
                "--data-dir",
                "/etcd-data",
            ],
            "healthcheck": {
                "test": ["CMD", "etcdctl", "endpoint", "health"],
                "interval": "5s",
                "timeout": "5s",
                "retries": 12,
            },
            "restart": settings.restart,
        }
    }
    if plan.profile.discovery == "etcd+nats":
        services["nats"] = {"image": settings.nats_image, "command": ["-js"], "restart": settings.restart}
    return services


def _depends_on_discovery(plan: DeploymentPlan) -> dict[str, Any]:
    needs: dict[str, Any] = {"etcd": {"condition": "service_healthy"}}
    if plan.profile.discovery == "etcd+nats":
        needs["nats"] = {"condition": "service_started"}  # the NATS image has no shell to probe with
    return needs


def _frontend_depends_on(plan: DeploymentPlan) -> dict[str, Any]:
    needs = _depends_on_discovery(plan)
    if plan.profile.frontend_after_workers:
        needs.update({worker.name: {"condition": "service_healthy"} for _, worker in plan.workers})
    return needs


def _hf_cache_mount(settings: ComposeSettings) -> str:
    return f"{settings.hf_cache}:{HF_HOME}"


def _model_mounts(plan: DeploymentPlan) -> list[str]:
    # A local checkpoint directory is mounted at the same path, so the worker command stays the plan's.
    return [f"{_literal(plan.model_local_dir)}:{_literal(plan.model_local_dir)}:ro"] if plan.model_local_dir else []


def frontend_command(plan: DeploymentPlan) -> list[str]:
    return [
        "python3",
        "-m",
        "dynamo.frontend",
        *frontend_host_args(plan, "0.0.0.0"),
        "--http-port",
        str(FRONTEND_PORT),
        *plan.frontend.flags,
        *plan.router_policy_args(f"{ENGINE_MOUNT}/{ROUTER_POLICY_FILE}"),
    ]


def _frontend(plan: DeploymentPlan, settings: ComposeSettings) -> dict[str, Any]:
    host = f"[{settings.http_host}]" if ":" in settings.http_host else settings.http_host
    # The router policy file is in the engine directory: the frontend mounts it as the workers do.
    engine = [f"./engine:{ENGINE_MOUNT}:ro"] if plan.router_policy is not None else []
    return {
        "image": _literal(image(plan)),
        "command": [_literal(w) for w in frontend_command(plan)],
        "environment": {**_discovery_env(plan), "HF_HOME": HF_HOME, "HF_TOKEN": "${HF_TOKEN:-}"},
        "ports": [f"{host}:{settings.http_port}:{FRONTEND_PORT}"],
        "volumes": [*engine, _hf_cache_mount(settings), *_model_mounts(plan)],
        "depends_on": _frontend_depends_on(plan),
        "healthcheck": _healthcheck(FRONTEND_PORT, 60),
        "restart": settings.restart,
    }


def worker_command(plan: DeploymentPlan, pool: PoolPlan) -> list[str]:
    """The plan's worker command line, with the engine files at their read-only mount."""
    return ["python3", "-m", pool.command.module, *map(str, plan.worker_args(pool, lambda s: _slot(plan, s)))]


def _slot(plan: DeploymentPlan, slot: Slot) -> str | None:
    if slot.kind in ("model", "local_model"):  # a local checkpoint is mounted at its own path
        return plan.model_path
    if slot.kind == "engine_file":
        return f"{ENGINE_MOUNT}/{slot.name}"
    if slot.kind == "revision":  # the workers download a hub model themselves
        return plan.model_revision if plan.model_revision and plan.model_local_dir is None else None
    return None


def _worker(plan: DeploymentPlan, settings: ComposeSettings, pool: PoolPlan, worker: WorkerPlan) -> dict[str, Any]:
    devices = [str(gpu) for gpu in worker.placement.gpus_on(0)]
    return {
        "image": _literal(image(plan)),
        "command": [_literal(w) for w in worker_command(plan, pool)],
        "environment": worker_env(plan, settings, pool),
        "volumes": [f"./engine:{ENGINE_MOUNT}:ro", _hf_cache_mount(settings), *_model_mounts(plan)],
        # The engine's ranks and the KV transfer between workers use shared memory and pinned memory.
        "ipc": "host",
        "ulimits": {"memlock": -1, "stack": 67108864},
        "deploy": {
            "resources": {
                "reservations": {"devices": [{"driver": "nvidia", "device_ids": devices, "capabilities": ["gpu"]}]}
            }
        },
        "depends_on": _depends_on_discovery(plan),
        "healthcheck": _healthcheck(settings.system_port, settings.ready_timeout_s),
        "restart": settings.restart,
    }


def compose_file(plan: DeploymentPlan, settings: ComposeSettings) -> dict[str, Any]:
    services = _discovery_services(plan, settings)
    services["frontend"] = _frontend(plan, settings)
    for pool, worker in plan.workers:
        services[worker.name] = _worker(plan, settings, pool, worker)
    document: dict[str, Any] = {"services": services}
    if not settings.hf_cache.startswith("/"):
        document["volumes"] = {settings.hf_cache: {}}
    return document


def render(plan: DeploymentPlan, settings: ComposeSettings) -> dict[str, str]:
    problems = [d for d in env_problems(plan, settings) if d.is_error]  # no env name is written twice
    if problems:
        raise DiagnosticError(problems)
    header = (
        f"# {plan.header}\n"
        f"# Run: docker compose up -d   (in this directory; needs the NVIDIA Container Toolkit and "
        f"{plan.total_gpus} GPU(s))\n"
        f"# Frontend: http://{settings.http_host}:{settings.http_port}/v1/chat/completions\n"
        "# HF_TOKEN is read from your environment when the model needs one.\n"
    )
    files = {"docker-compose.yaml": dump_yaml(compose_file(plan, settings), header)}
    for name, text in plan.engine_files().items():
        files[f"engine/{name}"] = text
    return files
