"""The mock engine's timing (DYN910, DYN912, DYN913): what `mocker_timing` names can time the workers.

`mocker_timing` other than `builtin` makes the mock workers run at the speed of the GPUs they stand for
(the timed twin, :mod:`dyncc.twin`). These rules check what validate can know without running
AIConfigurator: that mock workers exist to be timed, that a named file is a mocker timing file
(:mod:`dyncc.compiler.timing_file`, which reads it), and that the spec says everything AIConfigurator
estimates at. (Dynamo versions whose mock engine reads no timing
file are DYN703.)
"""

from __future__ import annotations

from collections.abc import Iterator

from dyncc.compiler.graph import DeploymentGraph
from dyncc.compiler.groups import pool_groups
from dyncc.compiler.rules.base import finding, rule
from dyncc.compiler.timing_file import AICONFIGURATOR, BUILTIN, npz_problem, timing_path
from dyncc.diagnostics import Diagnostic
from dyncc.facts.aic_systems import SYSTEMS, system_for_gpu_type


@rule("DYN910", "mocker-timing-needs-mocker")
def timing_needs_mock_workers(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """`mocker_timing` times Dynamo's mock engine: the workers must be mock workers."""
    spec = graph.spec
    if spec.mocker_timing != BUILTIN and not graph.runtime.mock:
        yield finding(
            f"mocker_timing {spec.mocker_timing[:80]!r} times Dynamo's mock engine, but the workers run "
            f"{spec.worker_runtime}: real engines take the time they take",
            ("mocker_timing",),
            "add worker_runtime: mocker (or --engine mocker), or remove mocker_timing",
        )


@rule("DYN912", "mocker-timing-file-readable")
def timing_file_is_a_mocker_npz(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """A `mocker_timing` path names a timing file Dynamo's mock engine can read."""
    value = graph.spec.mocker_timing
    if value in (BUILTIN, AICONFIGURATOR):
        return
    problem = npz_problem(timing_path(value, graph.spec_dir))
    if problem is not None:
        yield finding(
            f"mocker_timing {value[:120]!r} {problem}",
            ("mocker_timing",),
            "name a mocker timing NPZ (prefill_isl, prefill_ttft_ms, decode_active_kv_tokens, "
            "decode_context_length, decode_itl), relative to the spec file, or use `aiconfigurator`",
        )


@rule("DYN913", "mocker-timing-estimable")
def aiconfigurator_timing_has_its_inputs(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """`mocker_timing: aiconfigurator` needs what AIConfigurator estimates at: a GPU it has data for, the
    workload's ISL/OSL, each pool's batch size, and pools it models."""
    spec = graph.spec
    if spec.mocker_timing != AICONFIGURATOR:
        return
    systems = ", ".join(sorted({name for name, _ in SYSTEMS.values()}))
    groups = pool_groups(spec)
    # Each pool is timed on its own node group's GPU; a spec without groups has the cluster's one.
    for group in dict.fromkeys(groups.values()) if spec.cluster.node_groups else [None]:
        gpu_type = group.gpu_type if group is not None else spec.cluster.gpu_type
        where = group.path + ("gpu_type",) if group is not None else ("cluster", "gpu_type")
        if gpu_type is None:
            yield finding(
                "mocker_timing aiconfigurator: cluster.gpu_type is not set, so there is no GPU to time the workers as",
                ("cluster",),
                f"set cluster.gpu_type to one of {systems}",
            )
        elif system_for_gpu_type(gpu_type) is None:
            yield finding(
                f"mocker_timing aiconfigurator: AIConfigurator has no data for gpu_type {gpu_type!r}",
                where,
                f"one of {systems}, or give a timing file",
            )
    if spec.benchmark is None:
        yield finding(
            "mocker_timing aiconfigurator: the timing grid is laid around the workload, and the spec has "
            "no benchmark: section with its isl and osl",
            ("mocker_timing",),
            "add benchmark: {isl, osl, concurrency}",
        )
    for role, pool in spec.pools.declared():
        if role == "encode":
            yield finding(
                "mocker_timing aiconfigurator: AIConfigurator does not model encode workers",
                ("pools", "encode"),
                "drop the encode pool for a timed run, or give a timing file",
            )
        elif pool.engine.max_batch_size is None:
            yield finding(
                f"mocker_timing aiconfigurator: pools.{role} has no engine.max_batch_size, the most requests "
                "the decode-step grid must cover",
                ("pools", role, "engine"),
                "set engine.max_batch_size (per attention-DP rank)",
            )
