"""Local target's rendering: one node, one bash launch script, one engine config per pool.

Each worker runs the plan's command line for its pool (``python3 -m <engine module> ...``, from the
engine the spec's ``worker_runtime`` names); with ``--engine mocker`` the topology stays identical —
frontend flags, router, discovery, ports, disaggregation modes, replicas, DP size — and only the program
differs, so a deployment can be started on a machine without GPUs. An offline engine (the mock) loads the
small model dir it ships unless the spec's model is a local checkpoint directory.

The script does what Dynamo 1.6.1's own backend launch scripts (``examples/backends/*/launch/*.sh``) do —
frontend plus workers, file-based discovery, one ``CUDA_VISIBLE_DEVICES`` and one ``DYN_SYSTEM_PORT`` per
worker — and adds what they lack: readiness by polling instead of sleeping,
a log per process, a supervisor (``on_worker_exit``: restart a dead worker with bounded backoff while the
others serve, or stop everything; the frontend dying always stops everything), one deployment per run
directory, its ports checked free before anything starts, and every socket on loopback but the
frontend's (which listens on ``local.http_host``).
"""

from __future__ import annotations

import itertools
from importlib import resources

import msgspec

from dyncc.compiler.plan import ROUTER_POLICY_FILE, DeploymentPlan, Files, PoolPlan, Slot, WorkerPlan
from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.releases import first_with
from dyncc.targets.bench import bench_script
from dyncc.targets.hub_cache import LOCAL_MODEL, hub_cache_lines
from dyncc.targets.local.settings import LocalSettings
from dyncc.targets.ports import port_problems, system_port
from dyncc.targets.release_flags import (
    frontend_command_problems,
    frontend_host_args,
    has_flag,
    worker_command_problems,
    worker_revision_problems,
)
from dyncc.targets.shell import Raw, quote, ready_probe_text, shell_words, template_environment

NAME = "local"
LOOPBACK = "127.0.0.1"

# What the launch script sets for the workers, and why; a pool's env that changed one would break the
# deployment quietly (a second worker on one system port waits out the readiness timeout).
MANAGED_ENV = {
    "CUDA_VISIBLE_DEVICES": "the GPUs placement gave each worker",
    "DYN_SYSTEM_PORT": "each worker's system (health) port, from local.system_port_base",
    "DYN_SYSTEM_HOST": "the system server's address (loopback)",
    "DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS": "what readiness waits for (Dynamo 0.x; deprecated in 1.6)",
    "DYN_TCP_RPC_HOST": "the request plane's address (loopback)",
    "DYN_TCP_RESPONSE_STREAM_HOST": "the response streams' address (loopback)",
    "DYN_EVENT_PLANE_HOST": "the event plane's address (loopback)",
    "DYN_HTTP_RPC_HOST": "the address workers advertise (loopback)",
}
FILE_DISCOVERY_ENV = {
    "DYN_DISCOVERY_BACKEND": "file-based discovery in the run directory",
    "DYN_FILE_KV": "file-based discovery in the run directory",
    "DYN_ZMQ_BROKER_URL": "the loopback event broker",
    "DYN_ZMQ_BROKER_ENABLED": "the loopback event broker",
    "DYN_EVENT_PLANE": "the loopback event broker",
}
SERVER_DISCOVERY_ENV = {
    "ETCD_ENDPOINTS": "the etcd the frontend uses too",
    "NATS_SERVER": "the NATS the frontend uses too",
}


class PortUse(msgspec.Struct, frozen=True):
    """A port the deployment listens on, and the spec setting that chooses it."""

    host: str
    port: int
    user: str  # "frontend HTTP", "prefill-0 system"
    setting: str  # "local.http_port"

    @property
    def label(self) -> str:
        return f"{self.user} ({self.setting})"


def _port(settings: LocalSettings, worker: WorkerPlan) -> int:
    return system_port(settings.system_port_base, worker)


def http_url(plan: DeploymentPlan, settings: LocalSettings) -> str:
    host = {"0.0.0.0": LOOPBACK, "::1": "[::1]"}.get(settings.http_host, settings.http_host)
    return f"http://{host}:{settings.http_port}"


def event_broker(plan: DeploymentPlan) -> bool:
    """File discovery (Dynamo 1.x) means a ZMQ event plane, run through a loopback broker; 0.x uses NATS."""
    return plan.profile.discovery == "file"


def event_broker_ports(plan: DeploymentPlan, settings: LocalSettings) -> tuple[int, int]:
    """The broker's (publisher, subscriber) ports: the first two past the workers' system ports that are
    not an HTTP port, so that one range in the spec (local.system_port_base) holds every fixed port."""
    last_system_port = max((_port(settings, w) for _, w in plan.workers), default=settings.system_port_base - 1)
    free = (port for port in itertools.count(last_system_port + 1) if port != settings.http_port)
    first, second = itertools.islice(free, 2)
    return first, second


def port_uses(plan: DeploymentPlan, settings: LocalSettings) -> list[PortUse]:
    """Every fixed port the launch script's processes listen on (the rest are ephemeral, on loopback)."""
    uses = [PortUse(settings.http_host, settings.http_port, "frontend HTTP", "local.http_port")]
    uses += [
        PortUse(LOOPBACK, _port(settings, w), f"{w.name} system", "local.system_port_base") for _, w in plan.workers
    ]
    if event_broker(plan):
        publishers, subscribers = event_broker_ports(plan, settings)
        uses += [
            PortUse(LOOPBACK, publishers, "event broker publishers", "local.system_port_base"),
            PortUse(LOOPBACK, subscribers, "event broker subscribers", "local.system_port_base"),
        ]
    return uses


def managed_env(plan: DeploymentPlan, settings: LocalSettings) -> dict[str, str]:
    managed = {**MANAGED_ENV, **(FILE_DISCOVERY_ENV if event_broker(plan) else SERVER_DISCOVERY_ENV)}
    managed.update({name: "what the Dynamo version's workers need" for name, _ in plan.profile.worker_env})
    managed.update({name: why for name, _, why in plan.engine.env})
    return managed


def check(plan: DeploymentPlan, settings: LocalSettings) -> list[Diagnostic]:
    """Ports on this host (DYN402), what the workers' engine cannot run (the mock's modes: DYN503), flags its
    release lacks (DYN514), and no pool env setting what the launch script manages (DYN520)."""
    problems = port_problems(plan, "local", settings.http_port, settings.system_port_base)
    return (
        problems
        + list(plan.engine_problems)
        + worker_command_problems(plan, "local")
        + _managed_env_problems(plan, settings)
        + worker_revision_problems(plan, "local")
        + _host_problems(plan, settings)
        + frontend_command_problems(plan, frontend_command(plan, settings)[3:], "local")
    )


def _host_problems(plan: DeploymentPlan, settings: LocalSettings) -> list[Diagnostic]:
    """DYN514: a frontend without --http-host listens on every interface; the local target promises loopback."""
    if has_flag(plan, "frontend", "--http-host") or settings.http_host in ("0.0.0.0", "::"):
        return []
    first = first_with("frontend", "--http-host")
    deploy = f"deploy Dynamo {first.dynamo} or later, or " if first is not None else ""
    return [
        Diagnostic(
            "DYN514",
            f"Dynamo {plan.dynamo_version}'s frontend has no --http-host: it would listen on every interface, "
            f"not on {settings.http_host} as local.http_host says",
            path=("local", "http_host"),
            hint=f"{deploy}set local.http_host: 0.0.0.0 to accept every interface",
        )
    ]


def _managed_env_problems(plan: DeploymentPlan, settings: LocalSettings) -> list[Diagnostic]:
    managed = managed_env(plan, settings)
    return [
        Diagnostic(
            "DYN520",
            f"pool {pool.role} sets {name}, which the local launch script sets itself ({managed[name]})",
            path=("pools", pool.role, "env", name),
            hint=f"remove {name} from pools.{pool.role}.env"
            + ("; choose ports with local.system_port_base" if name == "DYN_SYSTEM_PORT" else ""),
        )
        for pool in plan.pools
        for name, _ in pool.env
        if name in managed
    ]


def frontend_command(plan: DeploymentPlan, settings: LocalSettings) -> list:
    return [
        Raw('"$PYTHON"'),
        "-m",
        "dynamo.frontend",
        *frontend_host_args(plan, settings.http_host),
        "--http-port",
        str(settings.http_port),
        *plan.frontend.flags,
        *plan.router_policy_args(Raw(f'"$HERE/engine/{ROUTER_POLICY_FILE}"')),
    ]


def worker_command(plan: DeploymentPlan, settings: LocalSettings, pool: PoolPlan, worker: WorkerPlan) -> list:
    devices = ",".join(str(gpu) for gpu in worker.placement.gpus_on(0))
    env = [
        f"CUDA_VISIBLE_DEVICES={devices}",
        f"DYN_SYSTEM_PORT={_port(settings, worker)}",
        *(f"{k}={v}" for k, v in (*plan.profile.worker_env, *pool.env)),
    ]
    args = plan.worker_args(pool, lambda slot: _slot(plan, slot))
    return ["env", *env, Raw('"$PYTHON"'), "-m", pool.command.module, *args]


def _slot(plan: DeploymentPlan, slot: Slot) -> object:
    """Where this target put what a worker's command line names (files relative to the script, $HERE)."""
    if slot.kind == "model":
        return plan.model_path
    if slot.kind == "local_model":
        return plan.model_local_dir or Raw('"$HERE/model"')
    if slot.kind == "engine_file":
        return Raw(f'"$HERE/engine/{slot.name}"')
    if slot.kind == "data_file":
        return Raw(f'"$HERE/{slot.name}"')
    if slot.kind == "revision":  # the workers download a hub model themselves
        return plan.model_revision if plan.model_revision and plan.model_local_dir is None else None
    # No prefill->decode bootstrap rendezvous: Dynamo 1.6.1's mock engine binds its bootstrap port on
    # 0.0.0.0 with no setting to change it; without the port the handoff is simply not simulated.
    return None


def event_broker_text() -> str:
    return resources.files(__package__).joinpath("templates", "event_broker.py").read_text("utf-8")


def render(plan: DeploymentPlan, settings: LocalSettings) -> Files:
    problems = check(plan, settings)
    if problems:
        raise DiagnosticError(problems)
    workers = plan.workers
    broker = event_broker_ports(plan, settings) if event_broker(plan) else None
    launch = (
        template_environment(__package__)
        .get_template("launch.sh.j2")
        .render(
            plan=plan,
            settings=settings,
            ports={w.name: system_port(settings.system_port_base, w) for _, w in workers},
            workers=workers,
            runtime_label=plan.engine.worker_label,
            restart=plan.on_worker_exit == "restart",
            # Releases whose system server reports endpoint health only when told to (0.x); 1.6.1 ignores
            # the variable (and warns that it is deprecated): its /health follows the registered endpoints.
            legacy_health_env=plan.profile.endpoint_health_env,
            frontend_last=plan.profile.frontend_after_workers,
            dynamo_version=plan.dynamo_version,
            http_url=http_url(plan, settings),
            loopback=LOOPBACK,
            broker=broker,
            port_words=[quote(f"{use.label}={use.host}:{use.port}") for use in port_uses(plan, settings)],
            # An offline engine tokenizes with a local model dir: nothing may be fetched from a hub.
            extra_env=[(name, value) for name, value, _ in plan.engine.env],
            hub_cache_lines=hub_cache_lines(plan, _slot(plan, LOCAL_MODEL), "$RUN_DIR"),
            frontend_cmd=shell_words(frontend_command(plan, settings)),
            worker_cmds={w.name: shell_words(worker_command(plan, settings, p, w)) for p, w in workers},
        )
    )
    files: Files = {"launch.sh": launch, "ready.py": ready_probe_text()}
    if broker is not None:
        files["event_broker.py"] = event_broker_text()
    for name, text in plan.engine_files().items():
        files[f"engine/{name}"] = text
    if plan.benchmark is not None:
        tokenizer = plan.model_local_dir or (Raw('"$HERE/model"') if plan.engine.offline else plan.model_path)
        files["bench.sh"] = bench_script(plan, plan.benchmark, tokenizer, "$HERE/run/bench")
    files.update({f"model/{name}": text for name, text in plan.model_files().items()})
    files.update(plan.data_files())
    return files
