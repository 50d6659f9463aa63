"""The ``env NAME=value ...`` words a Slurm worker step starts under: what dyncc sets per worker (its system
port, the release's worker_env) and the pool's env, each name once (:mod:`dyncc.targets.env_merge`).

The job script also exports variables every step inherits (discovery, the event plane, the model cache);
a pool env value for one of them would override it in that worker alone, so they are resolved the same
way, though the job, not the step, writes dyncc's value."""

from __future__ import annotations

from dyncc.compiler.plan import DeploymentPlan, PoolPlan, WorkerPlan
from dyncc.diagnostics import Diagnostic
from dyncc.targets import env_merge
from dyncc.targets.env_merge import Given, Written
from dyncc.targets.ports import system_port


def written_worker_env(plan: DeploymentPlan, port: int) -> list[Written]:
    why = "the port the job's readiness check polls for this worker"
    written = [Written("DYN_SYSTEM_PORT", str(port), why, instead="slurm.system_port_base")]
    health = f"Dynamo {plan.dynamo_version}'s workers serve the health endpoint readiness polls"
    return written + [Written(name, value, health) for name, value in plan.profile.worker_env]


def job_exports(plan: DeploymentPlan, etcd: bool, nats: bool, hf_home: str | None) -> list[Written]:
    """What the job script exports for every step (as job.sbatch writes it) that a worker relies on."""
    found: list[Written] = []
    if etcd:
        found += [
            Written("DYN_DISCOVERY_BACKEND", "etcd", "workers and frontend discover each other through the job's etcd"),
            Written("ETCD_ENDPOINTS", "http://$INFRA_ADDR:2379", "the job's etcd step"),
        ]
    else:
        found += [
            Written("DYN_DISCOVERY_BACKEND", "file", "workers and frontend discover each other in the run directory"),
            Written("DYN_FILE_KV", "$RUN_DIR/discovery", "the run directory's discovery files"),
        ]
    if nats:
        found.append(Written("NATS_SERVER", "nats://$INFRA_ADDR:4222", "the job's NATS step"))
    elif plan.profile.event_plane_env:
        why = f"Dynamo {plan.dynamo_version}'s event plane would be NATS, which this job does not run"
        found.append(Written("DYN_EVENT_PLANE", plan.profile.event_plane_env, why))
    if plan.profile.endpoint_health_env:
        health = f"Dynamo {plan.dynamo_version}'s workers report ready only once their endpoint is"
        found.append(Written("DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS", '["generate"]', health))
    if hf_home is not None:
        why = "where the job's download step put the model the workers load offline"
        found.append(Written("HF_HOME", hf_home, why, instead="slurm.model_cache_dir"))
    return found


def _resolved(
    plan: DeploymentPlan, pool: PoolPlan, worker: WorkerPlan, port: int, exports: list[Written]
) -> env_merge.Resolved:
    # `{worker_index}` is filled in here; `{rank}` by step.sh, where each rank starts (SLURM_PROCID).
    given = [Given(name, value, ("pools", pool.role, "env", name)) for name, value in pool.env_for(worker)]
    return env_merge.resolve(written_worker_env(plan, port) + exports, given, f"slurm worker {worker.name}")


def worker_env(
    plan: DeploymentPlan, pool: PoolPlan, worker: WorkerPlan, port: int, exports: list[Written]
) -> list[tuple[str, str]]:
    """dyncc's variables, then the pool's: each name once (the job's exports are inherited, not rewritten)."""
    resolved = _resolved(plan, pool, worker, port, exports)
    inherited = {w.name for w in exports}
    return [(w.name, w.value) for w in resolved.written if w.name not in inherited] + [
        (g.name, str(g.value)) for g in resolved.given
    ]


def env_problems(plan: DeploymentPlan, system_port_base: int, exports: list[Written]) -> list[Diagnostic]:
    """DYN525/DYN526: a pool env variable dyncc sets in a worker's step or the job too, to another value
    (reported once per spec value, for the first worker it contradicts)."""
    found = (
        problem
        for pool, worker in plan.workers
        for problem in _resolved(plan, pool, worker, system_port(system_port_base, worker), exports).problems
    )
    return env_merge.unique_problems(found)
