"""Give each mock pool of a compiled plan its timing file, as the spec's `mocker_timing` says.

Runs after the rules (which checked everything validate can know: DYN703, DYN910, DYN912, DYN913) and
before the targets render: `aiconfigurator` asks AIConfigurator for each pool's worker shape (or reads
the cache), a path is read once for every pool. The targets then only copy bytes into their output and
point each mock worker at its pool's file.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from dyncc.aic import runner
from dyncc.aic.mapping import Worker, aic_worker_args
from dyncc.compiler import Compilation
from dyncc.compiler.graph import PoolInfo
from dyncc.compiler.groups import gpu_type_of
from dyncc.compiler.timing_file import AICONFIGURATOR, BUILTIN, read_timing_file, timing_path
from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.facts.aic_systems import system_for_gpu_type
from dyncc.twin.timing import Grid, PoolTiming, timing_file


def pool_timing(compilation: Compilation, pool: PoolInfo) -> tuple[PoolTiming, Grid]:
    """What AIConfigurator is asked for one pool: its worker shape on the spec's GPU, and a grid laid around
    the spec's workload up to the pool's batch size."""
    spec, facts = compilation.graph.spec, compilation.graph.facts
    p = pool.spec
    is_moe = bool(facts.moe) or p.expert_parallel > 1
    shape = aic_worker_args(p, is_moe)  # the pool in AIConfigurator's terms, as `dyncc estimate` asks
    worker = Worker(
        tp=shape["tp_size"],
        pp=shape["pp_size"],
        dp=shape["attention_dp_size"],
        moe_tp=shape.get("moe_tp_size", 1),
        moe_ep=shape.get("moe_ep_size", 1),
    )
    batch = p.engine.max_batch_size or 1
    system = system_for_gpu_type(gpu_type_of(spec, pool.role) or "")  # the pool's own GPU (its node group)
    assert system is not None and spec.benchmark is not None  # DYN913 refused the spec otherwise
    return PoolTiming(spec.model.path, system, worker, is_moe), Grid.around(
        spec.benchmark.isl, spec.benchmark.osl, batch
    )


def with_timing(
    compilation: Compilation, *, progress: runner.Progress | None = None, timeout: float = runner.DEFAULT_TIMEOUT_S
) -> Compilation:
    """The compilation with ``plan.mock_timing`` filled in (unchanged for real engines or builtin timing)."""
    plan = compilation.plan
    if not plan.engine.mock or plan.mocker_timing == BUILTIN:
        return compilation
    timing: dict[str, bytes] = {}
    if plan.mocker_timing == AICONFIGURATOR:
        for pool in compilation.graph.pools():
            shape, grid = pool_timing(compilation, pool)
            path = timing_file(shape, grid, timeout=timeout, progress=progress).path
            timing[pool.role] = _checked_timing(compilation, path)
    else:
        # Checked by DYN912 already, but the file may have changed since: the bytes copied are the bytes checked.
        data = _checked_timing(compilation, timing_path(plan.mocker_timing, compilation.loaded.base_dir))
        timing = {pool.role: data for pool in compilation.graph.pools()}
    return msgspec.structs.replace(compilation, plan=msgspec.structs.replace(plan, mock_timing=timing))


def _checked_timing(compilation: Compilation, path: Path) -> bytes:
    """A timing file's bytes, read and checked once, as DYN912 checks them."""
    data, problem = read_timing_file(path)
    if data is None:
        raise DiagnosticError(
            [compilation.loaded.located(Diagnostic("DYN912", f"mocker_timing {path} {problem}", ("mocker_timing",)))]
        )
    return data
