"""Place every rank of every worker on a (node, GPU) of the declared cluster.

A worker of TP x PP ranks that fits on one node gets GPUs of one node; a larger one takes
``ceil(ranks / gpus_per_node)`` whole nodes (TRT-LLM wants the same ranks on each node, so a
spanning worker must fill its nodes — DYN404 checks that before we get here). Workers are placed
largest first (multi-node ones on whole free nodes, the rest first-fit), which packs a cluster
the way its operators would, in time linear in workers x nodes touched.
"""

from __future__ import annotations

import dataclasses
import math

from dyncc.compiler.graph import PoolInfo
from dyncc.diagnostics import Diagnostic


@dataclasses.dataclass(frozen=True)
class WorkerPlacement:
    role: str
    replica: int
    ranks: tuple[tuple[int, int], ...]  # rank i runs on (node, gpu)

    @property
    def nodes(self) -> tuple[int, ...]:
        return tuple(sorted({node for node, _ in self.ranks}))

    def gpus_on(self, node: int) -> tuple[int, ...]:
        return tuple(gpu for n, gpu in self.ranks if n == node)


@dataclasses.dataclass(frozen=True)
class Placement:
    gpus_per_node: int
    nodes: int
    workers: tuple[WorkerPlacement, ...]

    def for_pool(self, role: str) -> list[WorkerPlacement]:
        return [w for w in self.workers if w.role == role]

    @property
    def nodes_used(self) -> int:
        return len({node for w in self.workers for node, _ in w.ranks})

    @property
    def gpus_used(self) -> int:
        return sum(len(w.ranks) for w in self.workers)


class PlacementError(Exception):
    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic


def nodes_per_worker(gpus_per_worker: int, gpus_per_node: int) -> int:
    return math.ceil(gpus_per_worker / gpus_per_node)


def place_ranks(pools: list[PoolInfo], gpus_per_node: int, nodes: int) -> Placement:
    """Assign GPUs; raises :class:`PlacementError` (DYN405) when the workers don't pack."""
    free = [gpus_per_node] * nodes  # free GPUs per node; GPUs are handed out in index order
    workers = [(p, r) for p in pools for r in range(p.replicas)]
    # Largest workers first; ties keep spec order (agg, prefill, decode, encode) for stable output.
    order = sorted(range(len(workers)), key=lambda i: -workers[i][0].gpus_per_worker)
    placed: dict[int, WorkerPlacement] = {}
    first_free_node = 0  # every node before this one is full: skip them (keeps placement linear)
    for i in order:
        info, replica = workers[i]
        size = info.gpus_per_worker
        if size > gpus_per_node:
            span = nodes_per_worker(size, gpus_per_node)
            start = _find_whole_nodes(free, span, first_free_node, gpus_per_node)
            if start is None:
                raise PlacementError(_no_room(info, replica, free, gpus_per_node))
            ranks = tuple((n, g) for n in range(start, start + span) for g in range(gpus_per_node))[:size]
            for n in range(start, start + span):
                free[n] = 0
        else:
            node = next((n for n in range(first_free_node, nodes) if free[n] >= size), None)
            if node is None:
                raise PlacementError(_no_room(info, replica, free, gpus_per_node))
            first = gpus_per_node - free[node]
            ranks = tuple((node, g) for g in range(first, first + size))
            free[node] -= size
        while first_free_node < nodes and free[first_free_node] == 0:
            first_free_node += 1
        placed[i] = WorkerPlacement(info.role, replica, ranks)
    return Placement(gpus_per_node, nodes, tuple(placed[i] for i in range(len(workers))))


def _find_whole_nodes(free: list[int], span: int, start: int, gpus_per_node: int) -> int | None:
    """First run of ``span`` consecutive untouched nodes at or after ``start``."""
    run = 0
    for n in range(start, len(free)):
        run = run + 1 if free[n] == gpus_per_node else 0
        if run == span:
            return n - span + 1
    return None


def _no_room(info: PoolInfo, replica: int, free: list[int], gpus_per_node: int) -> Diagnostic:
    left = sum(free)
    whole = sum(1 for f in free if f == gpus_per_node)
    return Diagnostic(
        "DYN405",
        f"{info.role} worker {replica} ({info.gpus_per_worker} GPUs) does not fit: {left} GPUs left, "
        f"{whole} whole nodes free",
        path=info.path + ("replicas",),
        hint="add nodes (cluster.nodes), lower replicas, or choose sizes that pack into whole nodes",
    )
