"""A compose worker's environment: what dyncc sets (discovery, the system port the healthcheck asks, the shared
Hugging Face cache) and the pool's env, each name once (:mod:`dyncc.targets.env_merge`)."""

from __future__ import annotations

from dyncc.compiler.plan import DeploymentPlan, PoolPlan
from dyncc.diagnostics import Diagnostic
from dyncc.targets import env_merge
from dyncc.targets.compose.settings import ComposeSettings
from dyncc.targets.env_merge import Given, Written

ETCD_URL = "http://etcd:2379"
NATS_URL = "nats://nats:4222"
HF_HOME = "/root/.cache/huggingface"
# Passed through from the environment of whoever runs `docker compose up` (secrets stay out of the file).
HF_TOKEN = "${HF_TOKEN:-}"


def literal(value: object) -> str:
    """``value`` as compose passes it on: no ``$VAR`` interpolation of spec content."""
    return str(value).replace("$", "$$")


def discovery_env(plan: DeploymentPlan) -> dict[str, str]:
    env = {"ETCD_ENDPOINTS": ETCD_URL}
    if plan.profile.discovery == "etcd+nats":
        env["NATS_SERVER"] = NATS_URL
    else:
        env["DYN_DISCOVERY_BACKEND"] = "etcd"
    return env


def written_worker_env(plan: DeploymentPlan, settings: ComposeSettings) -> list[Written]:
    """What dyncc sets in every worker service (values as the compose file spells them)."""
    discovery = "the etcd (and NATS) services the frontend discovers the workers through"
    written = [Written(name, value, discovery) for name, value in discovery_env(plan).items()]
    # A hub model is downloaded into HF_HOME by each worker; elsewhere than the shared cache volume it would be
    # downloaded again by every worker, into its container. A local checkpoint is mounted: HF_HOME is unused.
    fetch = plan.model_local_dir is None and not plan.model_path_absolute
    written += [
        Written(
            "DYN_SYSTEM_PORT", str(settings.system_port), "the port the healthcheck asks", instead="compose.system_port"
        ),
        # /health turns ready once the generate endpoint serves (what the healthcheck waits for).
        Written("DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS", '["generate"]', "what the healthcheck's /health waits for"),
        Written(
            "HF_HOME",
            HF_HOME,
            "the shared Hugging Face cache (compose.hf_cache) is mounted there, and the workers download into it",
            relied_on=fetch,
            works_with=env_merge.inside(HF_HOME),
        ),
        Written("HF_TOKEN", HF_TOKEN, "the token of whoever runs `docker compose up`", relied_on=False),
    ]
    why = f"Dynamo {plan.dynamo_version}'s workers serve the health endpoint the healthcheck asks"
    written += [Written(name, literal(value), why) for name, value in plan.profile.worker_env]
    return written


def _resolved(plan: DeploymentPlan, settings: ComposeSettings, pool: PoolPlan) -> env_merge.Resolved:
    # Compared as the spec writes them: dyncc's values hold no `$` but HF_TOKEN's pass-through, which a spec
    # value spelled the same way is taken to mean.
    given = [Given(name, value, ("pools", pool.role, "env", name)) for name, value in pool.env]
    return env_merge.resolve(written_worker_env(plan, settings), given, f"the compose {pool.role} workers")


def worker_env(plan: DeploymentPlan, settings: ComposeSettings, pool: PoolPlan) -> dict[str, str]:
    """dyncc's variables, then the pool's: each name once."""
    resolved = _resolved(plan, settings, pool)
    return {**{w.name: w.value for w in resolved.written}, **{g.name: literal(g.value) for g in resolved.given}}


def env_problems(plan: DeploymentPlan, settings: ComposeSettings) -> list[Diagnostic]:
    """DYN525/DYN526: a pool env variable dyncc sets in the worker services too, to another value."""
    return env_merge.unique_problems(p for pool in plan.pools for p in _resolved(plan, settings, pool).problems)
