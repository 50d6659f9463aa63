"""What the state file keeps from the compiled spec: the components to report on, the benchmark the gate
runs, the SLA it holds the measurements to, and the prediction it compares them with.

SLA targets come from the spec's planner (``planner.ttft_ms`` / ``planner.itl_ms``, whether or not the
planner is enabled: they are the deployment's stated latency targets), else from the header
``dyncc init --from-sla`` wrote ("TTFT <= X ms, TPOT <= Y ms"; TPOT is the inter-token latency). The
prediction is the one that header records (AIConfigurator's, for the chosen topology).
"""

from __future__ import annotations

import re
from pathlib import Path

from dyncc.compiler import Compilation
from dyncc.diagnostics import DiagnosticError
from dyncc.spec.loader import read_spec_bytes
from dyncc.targets.ports import system_port
from dyncc.tools.lifecycle.state import (
    BenchmarkState,
    Component,
    DeploymentState,
    Prediction,
    Sla,
    Target,
    absolute,
    now,
)

# What `dyncc init --from-sla` writes in its header (dyncc.tools.sla.render).
FROM_SLA_TARGETS = re.compile(
    r"^# Chosen by AIConfigurator .*TTFT <= (?P<ttft>[0-9.eE+]+) ms, TPOT <= (?P<tpot>[0-9.eE+]+) ms"
)


def components(compilation: Compilation, http_port: int | None, system_port_base: int | None) -> list[Component]:
    """The frontend and every worker replica, with the ports they answer on (None where the target gives
    none that dyncc can reach, as on Kubernetes)."""
    plan = compilation.plan
    found = [Component(name="frontend", kind="frontend", port=http_port)]
    for pool, worker in plan.workers:
        port = system_port(system_port_base, worker) if system_port_base is not None else None
        found.append(Component(name=worker.name, kind="worker", pool=pool.role, port=port))
    return found


def benchmark(compilation: Compilation) -> BenchmarkState | None:
    bench = compilation.plan.benchmark
    if bench is None:
        return None
    return BenchmarkState(
        isl=bench.isl,
        osl=bench.osl,
        concurrency=list(bench.concurrency),
        request_count=bench.request_count,
        streaming=bench.streaming,
    )


def _spec_text(compilation: Compilation) -> str:
    try:
        return read_spec_bytes(Path(compilation.loaded.file)).decode("utf-8", "replace")
    except (DiagnosticError, OSError):
        return ""  # read once already to compile it; a file changed since has no header to trust


def sla(compilation: Compilation) -> Sla | None:
    planner = compilation.loaded.spec.planner
    if planner.ttft_ms is not None or planner.itl_ms is not None:
        return Sla(ttft_ms=planner.ttft_ms, itl_ms=planner.itl_ms, source="planner.ttft_ms / planner.itl_ms")
    for line in _spec_text(compilation).splitlines()[:40]:
        match = FROM_SLA_TARGETS.match(line)
        if match:
            return Sla(
                ttft_ms=float(match["ttft"]),
                itl_ms=float(match["tpot"]),
                source="the SLA `dyncc init --from-sla` recorded in the spec's header",
            )
    return None


def prediction(compilation: Compilation) -> Prediction | None:
    from dyncc.tools.sla import header_prediction

    found = header_prediction(_spec_text(compilation))
    if found is None:
        return None
    return Prediction(
        ttft_ms=found["ttft"],
        itl_ms=found["tpot"],
        tokens_per_s_per_gpu=found["tokens_per_s_per_gpu"],
        source="AIConfigurator's prediction `dyncc init --from-sla` recorded in the spec's header",
    )


def new_state(compilation: Compilation, target: Target, directory: Path, parts: list[Component]) -> DeploymentState:
    """The state of a deployment about to start (no run details yet)."""
    plan = compilation.plan
    return DeploymentState(
        target=target,
        name=plan.name,
        served_name=plan.served_name,
        spec=absolute(compilation.loaded.file),
        directory=absolute(directory),
        started_at=now(),
        gpus=plan.total_gpus,
        components=parts,
        benchmark=benchmark(compilation),
        sla=sla(compilation),
        prediction=prediction(compilation),
    )
