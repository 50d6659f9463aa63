"""GPU memory (DYN140-142): does each worker fit on the GPUs of its node group?

Per pool, one GPU of one worker: the weights after tensor, expert, attention-data and pipeline
parallelism, a working set for one iteration of ``max_num_tokens`` tokens, the runtime's overhead, and the
KV cache the engine makes of the rest. The configuring engine's memory model estimates them (its
implementation's ``memory_budget``, beside its figures and their sources) as a :class:`~dyncc.facts.memory.Budget`.
A worker that cannot start, or whose KV cache cannot hold one request of ``max_seq_len`` tokens, is an
error; one whose KV cache caps the batch below ``max_batch_size``, or whose weights leave little room,
a warning. A model or GPU dyncc has no facts for skips the check with a note; a spec without a GPU type
claims no hardware, so there is nothing to check.
"""

from __future__ import annotations

from collections.abc import Iterator

from dyncc import facts
from dyncc.compiler.graph import DeploymentGraph, PoolInfo
from dyncc.compiler.groups import pool_groups
from dyncc.compiler.rules.base import finding, rule
from dyncc.diagnostics import Diagnostic
from dyncc.facts.memory import TIGHT_SHARE, Budget, gib


def pool_budgets(graph: DeploymentGraph) -> dict[str, tuple[facts.GpuFacts, Budget]]:
    """Role -> (its GPU, one GPU's budget), for the pools whose model and GPU dyncc knows."""
    model = graph.engine.config_impl()  # a stand-in is sized as the engine it stands in for
    groups = pool_groups(graph.spec)
    found: dict[str, tuple[facts.GpuFacts, Budget]] = {}
    for p in graph.pools():
        group = groups.get(p.role)
        gpu = facts.gpu(group.gpu_type) if group is not None else None
        b = model.memory_budget(graph, p, gpu.memory_bytes) if gpu is not None else None
        if gpu is not None and b is not None:
            found[p.role] = (gpu, b)
    return found


def _parts(b: Budget) -> str:
    return f"weights {gib(b.weights)} + working set {gib(b.working_set)} + runtime {gib(b.overhead)}"


def _smallest_fitting_tp(graph: DeploymentGraph, p: PoolInfo, gpu: facts.GpuFacts) -> int | None:
    model = graph.engine.config_impl()
    for tp in (2, 4, 8, 16, 32, 64, 128):
        if tp > p.spec.tensor_parallel:
            b = model.memory_budget(graph, p, gpu.memory_bytes, tp)
            if b is not None and b.fits:
                return tp
    return None


def _smallest_fitting_gpu(graph: DeploymentGraph, p: PoolInfo, gpu: facts.GpuFacts) -> str | None:
    """The known GPU with the least memory above ``gpu``'s that holds this worker as it is."""
    model = graph.engine.config_impl()
    larger = sorted(
        {g.name: g for g in map(facts.gpu, facts.gpu_names()) if g and g.memory_mib > gpu.memory_mib}.values(),
        key=lambda g: g.memory_mib,
    )
    for other in larger:
        b = model.memory_budget(graph, p, other.memory_bytes)
        if b is not None and b.fits:
            return other.name
    return None


# Checkpoint formats smaller than 16-bit weights, largest first: a hint names only those smaller than the
# checkpoint's own (an FP8 checkpoint is told of NVFP4; a 4-bit one of neither).
_SMALLER_FORMATS = (("fp8", "FP8"), ("nvfp4", "NVFP4"))


def _smaller_weights(graph: DeploymentGraph) -> list[str]:
    arch = graph.facts.arch
    if arch is None:
        return []
    now = facts.DTYPE_BYTES.get(arch.weight_dtype, 2.0)
    smaller = [name for key, name in _SMALLER_FORMATS if facts.DTYPE_BYTES[key] < now]
    return [f"use an {' or '.join(smaller)} checkpoint"] if smaller else []


def _smaller_kv(b: Budget) -> list[str]:
    """An FP8 KV cache, unless the cache is FP8 (or smaller) already."""
    return ["use an FP8 KV cache (kv_cache_dtype: fp8)"] if b.kv_value_bytes > 1 else []


@rule("DYN140", "worker-fits-gpu-memory")
def workers_fit_gpu_memory(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Each worker's weights, working set and one full-length request's KV cache fit its GPUs."""
    for p in graph.pools():
        found = pool_budgets(graph).get(p.role)
        if found is None:
            continue
        gpu, b = found
        if b.fits:
            continue
        what = (
            f"{'an' if p.role in ('agg', 'encode') else 'a'} {p.role} worker (TP{p.spec.tensor_parallel}"
            + (f" PP{p.spec.pipeline_parallel}" if p.spec.pipeline_parallel > 1 else "")
            + ")"
        )
        if b.before_kv >= b.capacity:
            message = (
                f"{what} does not fit on {gpu.name} ({gib(b.capacity)} each): per GPU, {_parts(b)} = "
                f"{gib(b.before_kv)}, before any KV cache"
            )
        else:
            message = (
                f"{what} leaves no room for one request on {gpu.name} ({gib(b.capacity)} each): per GPU, {_parts(b)} "
                f"= {gib(b.before_kv)}; the KV cache gets {b.free_fraction:g} of the rest, {gib(b.kv_cache)}, "
                f"less than one {b.sequence_tokens}-token request needs ({gib(b.sequence_bytes)})"
            )
        tp = _smallest_fitting_tp(graph, p, gpu)
        remedies = [f"raise tensor_parallel (TP{tp} fits)" if tp else "spread the model over more GPUs"]
        remedies += _smaller_weights(graph)
        if b.before_kv >= b.capacity:
            # max_num_tokens sizes the working set, which can only help when the rest fits without it
            # (max_seq_len sizes just the KV cache).
            if b.before_kv - b.working_set < b.capacity:
                remedies.append("lower max_num_tokens")
        else:
            remedies += [*_smaller_kv(b), "lower max_seq_len"]
        larger = _smallest_fitting_gpu(graph, p, gpu)
        if larger:
            remedies.append(f"a GPU with more memory ({larger} fits)")
        hint = f"{', '.join(remedies[:-1])}, or {remedies[-1]}" if len(remedies) > 1 else remedies[0]
        yield finding(message + f" [model facts: {graph.facts.arch_source}]", p.path + ("tensor_parallel",), hint)


@rule("DYN141", "gpu-memory-tight")
def gpu_memory_tight(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """A worker fits, but its KV cache caps the batch below max_batch_size, or little memory is left."""
    for p in graph.pools():
        found = pool_budgets(graph).get(p.role)
        if found is None:
            continue
        gpu, b = found
        if not b.fits:
            continue
        if b.before_kv > TIGHT_SHARE * b.capacity:
            yield finding(
                f"the {p.role} workers barely fit on {gpu.name}: per GPU, {_parts(b)} = {gib(b.before_kv)} of "
                f"{gib(b.capacity)}, leaving {gib(b.kv_cache)} of KV cache ({b.sequences} requests of "
                f"{b.sequence_tokens} tokens)",
                p.path + ("tensor_parallel",),
                "estimates carry a few GiB of error: raise tensor_parallel"
                + "".join(f", or {r}" for r in _smaller_weights(graph)),
                severity="warning",
            )
        elif p.spec.engine.max_batch_size is not None and b.max_seq_len_set and b.sequences < b.batch:
            yield finding(
                f"the {p.role} workers' KV cache on {gpu.name} ({gib(b.kv_cache)} per GPU) holds {b.sequences} "
                f"requests of max_seq_len {b.sequence_tokens} tokens, fewer than max_batch_size {b.batch}: "
                "at full length the batch is capped there and further requests wait",
                p.path + ("engine", "max_batch_size"),
                f"lower max_batch_size to {max(1, b.sequences)} or max_seq_len, "
                + "".join(f"{r}, " for r in _smaller_kv(b))
                + "or spread the weights over more GPUs",
                severity="warning",
            )


@rule("DYN142", "gpu-memory-unchecked")
def gpu_memory_unchecked(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """The memory check is skipped: dyncc has no facts for the model or the GPU."""
    groups = pool_groups(graph.spec)
    types = {g.gpu_type for g in groups.values() if g.gpu_type}
    if not types:
        return  # no GPU type claimed: nothing to check against
    unknown = sorted(t for t in types if facts.gpu(t) is None)
    for gpu_type in unknown:
        yield finding(
            f"GPU memory not checked: dyncc has no facts for GPU type {gpu_type!r}",
            ("cluster",),
            f"GPU types it knows: {', '.join(facts.gpu_names())}",
            severity="info",
        )
    if graph.facts.arch is None and len(unknown) < len(types):
        yield finding(
            f"GPU memory not checked: {graph.facts.arch_source}",
            ("model", "path"),
            "state the model's size under model.facts (parameters, weight_dtype, layers, kv_heads, head_dim)",
            severity="info",
        )
