"""Worker system ports for targets that run several workers on one host's ports (local, slurm's file
discovery): one port per worker from a target's ``system_port_base``, numbered by the worker's place."""

from __future__ import annotations

import itertools

from dyncc.compiler.plan import DeploymentPlan, WorkerPlan
from dyncc.diagnostics import Diagnostic

# Seen running Dynamo 1.6.1: "invalid value unsigned int `38842`, expected i16 for key SYSTEM_PORT".
MAX_SYSTEM_PORT = 32767


def system_port(base: int, worker: WorkerPlan) -> int:
    return base + worker.index


def bootstrap_port(plan: DeploymentPlan, worker: WorkerPlan, system_port_base: int, http_port: int) -> int:
    """A worker's prefill->decode handoff port: past the workers' system ports, skipping the HTTP port."""
    last_system_port = system_port_base + max(w.index for _, w in plan.workers)
    free = (port for port in itertools.count(last_system_port + 1) if port != http_port)
    return next(itertools.islice(free, worker.index, None))


def port_problems(plan: DeploymentPlan, section: str, http_port: int, base: int) -> list[Diagnostic]:
    """DYN402: the target's HTTP port is no worker's system port, and system ports fit Dynamo's i16."""
    problems = []
    for pool in plan.pools:
        ports = [system_port(base, w) for w in pool.workers]
        if http_port in ports:
            problems.append(
                Diagnostic(
                    "DYN402",
                    f"{section}.http_port {http_port} is also the system port of {pool.role} worker "
                    f"{ports.index(http_port)}",
                    path=(section, "http_port"),
                    hint=f"move {section}.http_port, or {section}.system_port_base past the workers' range",
                )
            )
        if ports and ports[-1] > MAX_SYSTEM_PORT:
            problems.append(
                Diagnostic(
                    "DYN402",
                    f"{pool.role} workers' system ports run up to {ports[-1]}, past {MAX_SYSTEM_PORT}: "
                    "Dynamo 1.6.1 reads DYN_SYSTEM_PORT as a signed 16-bit integer and refuses to start",
                    path=(section, "system_port_base"),
                    hint=f"keep {section}.system_port_base + workers <= {MAX_SYSTEM_PORT}",
                )
            )
    return problems
