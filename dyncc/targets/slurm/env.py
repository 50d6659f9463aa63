"""The ``env NAME=value ...`` words a Slurm worker step starts under: what dyncc sets per worker (its system
port, the release's worker_env) and the pool's env, each name once (:mod:`dyncc.targets.env_merge`)."""

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


def _resolved(plan: DeploymentPlan, pool: PoolPlan, worker: WorkerPlan, port: int) -> env_merge.Resolved:
    # `{worker_index}` is filled in here; `{rank}` by step.sh, where each rank starts (SLURM_PROCID).
    given = [Given(name, value, ("pools", pool.role, "env", name)) for name, value in pool.env_for(worker)]
    return env_merge.resolve(written_worker_env(plan, port), given, f"slurm worker {worker.name}")


def worker_env(plan: DeploymentPlan, pool: PoolPlan, worker: WorkerPlan, port: int) -> list[tuple[str, str]]:
    """dyncc's variables, then the pool's: each name once."""
    resolved = _resolved(plan, pool, worker, port)
    return [(w.name, w.value) for w in resolved.written] + [(g.name, str(g.value)) for g in resolved.given]


def env_problems(plan: DeploymentPlan, system_port_base: int) -> list[Diagnostic]:
    """DYN525/DYN526: a pool env variable dyncc sets in a worker's step too, to another value (reported once
    per spec value, for the first worker it contradicts)."""
    found = (
        problem
        for pool, worker in plan.workers
        for problem in _resolved(plan, pool, worker, system_port(system_port_base, worker)).problems
    )
    return env_merge.unique_problems(found)
