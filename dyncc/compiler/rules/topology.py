"""Topology and placement (DYN401-408): reachability, GPU counts against the cluster, and size bounds."""

from __future__ import annotations

from collections.abc import Iterator

import networkx as nx

from dyncc.compiler.graph import FRONTEND, DeploymentGraph, EdgeKind
from dyncc.compiler.groups import node_groups, pool_groups
from dyncc.compiler.placement import MAX_GPUS_PER_WORKER, MAX_TOTAL_GPUS, nodes_per_worker
from dyncc.compiler.rules.base import finding, rule
from dyncc.diagnostics import Diagnostic


@rule("DYN401", "pools-reachable")
def every_pool_reachable(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Every pool is reachable from the frontend over request edges."""
    requests = graph.topology.edge_subgraph([(u, v) for u, v, _ in graph.edges(EdgeKind.REQUESTS)])
    reached = nx.descendants(requests, FRONTEND) if FRONTEND in requests else set()
    for p in graph.pools():
        if p.node not in reached:
            yield finding(
                f"nothing sends requests to the {p.role} pool",
                p.path,
                "an encode pool is called by prefill (or agg) workers: declare one",
            )


@rule("DYN403", "gpus-fit-cluster")
def gpus_fit_cluster(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """All workers' GPUs fit the declared cluster."""
    groups = pool_groups(graph.spec)
    for group in node_groups(graph.spec):
        pools = [p for p in graph.pools() if groups.get(p.role) == group]
        capacity = group.nodes * group.gpus_per_node
        needed = sum(p.gpus_per_worker * p.replicas for p in pools)
        if needed > capacity:
            parts = ", ".join(f"{p.role} {p.replicas}x{p.gpus_per_worker}" for p in pools)
            where = f"node group {group.name!r} has" if group.explicit else "the cluster has"
            yield finding(
                f"the pools need {needed} GPUs ({parts}); {where} {capacity} "
                f"({group.nodes} nodes x {group.gpus_per_node})",
                group.path + ("nodes",),
                f"raise {'.'.join(str(part) for part in group.path)}.nodes, or lower replicas / parallelism",
            )


@rule("DYN404", "spanning-worker-fills-nodes")
def spanning_worker_fills_whole_nodes(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """A worker larger than a node spans whole nodes, with the same number of ranks on each."""
    groups = pool_groups(graph.spec)
    for p in graph.pools():
        gpn = groups[p.role].gpus_per_node if p.role in groups else graph.spec.cluster.gpus_per_node
        size = p.gpus_per_worker
        if size > gpn and size % gpn:
            yield finding(
                f"a {p.role} worker has {size} ranks: more than a node's {gpn} GPUs, and not a multiple of it",
                p.path + ("tensor_parallel",),
                f"it would span {nodes_per_worker(size, gpn)} nodes unevenly; use a multiple of {gpn}",
            )


@rule("DYN406", "total-gpus-bounded")
def total_gpus_bounded(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """A deployment uses at most MAX_TOTAL_GPUS GPUs (more than the largest clusters built)."""
    needed = sum(p.gpus_per_worker * p.replicas for p in graph.pools())
    if needed > MAX_TOTAL_GPUS:
        largest = max(graph.pools(), key=lambda p: p.gpus_per_worker * p.replicas)
        yield finding(
            f"the pools need {needed} GPUs; dyncc compiles deployments of up to {MAX_TOTAL_GPUS} GPUs "
            "(the largest GPU clusters built hold ~200,000)",
            largest.path + ("replicas",),
            "lower replicas or parallelism; split a larger fleet into several deployments",
        )


# Real engine configs are a few KB (the largest real ones list CUDA-graph batch sizes); YAML aliases
# in engine.extra can make a 500-byte spec expand into tens of MB, written once per target.
MAX_ENGINE_CONFIG_BYTES = 262_144


def written_size_at_least(value: object, budget: int) -> int:
    """Roughly how many bytes ``value`` takes as YAML, counting only up to just past ``budget`` (so an
    aliased structure of billions of nodes costs no more than the budget to measure)."""
    total, stack = 0, [value]
    while stack and total <= budget:
        item = stack.pop()
        if isinstance(item, dict):
            total += 2
            for key, child in item.items():
                total += len(str(key)) + 2
                stack.append(child)
        elif isinstance(item, list):
            total += 2
            stack.extend(item)
        else:
            total += len(str(item)) + 2
    return total


@rule("DYN408", "engine-config-bounded")
def engine_config_bounded(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """A pool's engine config, as written, stays under MAX_ENGINE_CONFIG_BYTES."""
    for p in graph.pools():
        if written_size_at_least(p.engine.config, MAX_ENGINE_CONFIG_BYTES) > MAX_ENGINE_CONFIG_BYTES:
            yield finding(
                f"the {p.role} pool's engine config would be over {MAX_ENGINE_CONFIG_BYTES // 1024} KiB as YAML "
                f"(real {graph.engine.label} configs are a few KB; YAML aliases in engine.extra multiply their targets)",
                p.path + ("engine", "extra"),
                "write the values out once; remove repeated aliases (*name) from engine.extra",
            )


@rule("DYN407", "worker-size-bounded")
def worker_size_bounded(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """One worker spans at most MAX_GPUS_PER_WORKER GPUs (TP x PP)."""
    for p in graph.pools():
        if p.gpus_per_worker > MAX_GPUS_PER_WORKER:
            yield finding(
                f"a {p.role} worker of TP {p.spec.tensor_parallel} x PP {p.spec.pipeline_parallel} = "
                f"{p.gpus_per_worker} GPUs is above dyncc's limit of {MAX_GPUS_PER_WORKER} GPUs per worker "
                "(today's largest model instances, wide-EP over GB200 NVL72 racks, use a few hundred)",
                p.path + ("tensor_parallel",),
                "lower tensor_parallel / pipeline_parallel and add replicas instead",
            )
