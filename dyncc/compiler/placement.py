"""Place every rank of every worker on a (node, GPU) of the declared cluster.

A worker of TP x PP ranks that fits on one node gets GPUs of one node; a larger one takes
``ceil(ranks / gpus_per_node)`` whole nodes (the engine wants the same ranks on each node, so a
spanning worker must fill its nodes — DYN404 checks that before we get here). Workers are placed
largest first (multi-node ones on whole free nodes, the rest first-fit), which packs a cluster
the way its operators would.

Cost is proportional to workers, not ranks: a worker's GPUs are always consecutive (from
``first_gpu`` of ``first_node`` on, wrapping onto the next nodes), so a :class:`WorkerPlacement` is
that range, and the (node, GPU) of each rank is computed when a target asks for it. First fit
keeps, per worker size, the lowest node that may still have room: free GPUs only go down, so that
pointer only moves up and placement is linear in workers + nodes, however many nodes stay partly free.

``cluster.pool_nodes: separate`` places each pool on nodes of its own, pool after pool (published
multi-node recipes never mix prefill and decode workers on a node: they differ in memory use, NCCL
settings and failure domain). The default, ``shared``, packs any workers together: a single-node
deployment (every local and compose one) needs it, and it is what dyncc always did. When the workers
fill fewer nodes than ``cluster.nodes`` declares, or share nodes that the declared cluster could keep
apart, the placement says so (DYN409): jobs ask for the nodes the workers use.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import msgspec

from dyncc.compiler.graph import PoolInfo
from dyncc.compiler.groups import NodeGroupInfo
from dyncc.diagnostics import Diagnostic

# Bounds no real deployment reaches, so that the compiler's cost stays bounded too (DYN406, DYN407).
# The largest GPU clusters announced (2025) hold ~200,000 GPUs; one Dynamo deployment on all of them
# is already beyond practice. 2**18 keeps every per-rank view (`dyncc explain`) to ~10 MB of text.
MAX_TOTAL_GPUS = 262_144
# The largest single model instances served today are wide-EP DeepSeek-class workers over a few
# GB200 NVL72 racks (72-320 GPUs); 2048 ranks in one worker leaves a wide margin above that.
MAX_GPUS_PER_WORKER = 2048


class WorkerPlacement(msgspec.Struct, frozen=True):
    """One worker's GPUs: ``gpus`` consecutive GPUs from (``first_node``, ``first_gpu``) on."""

    role: str
    replica: int
    first_node: int
    first_gpu: int
    gpus: int
    gpus_per_node: int

    def rank(self, index: int) -> tuple[int, int]:
        """(node, GPU) of rank ``index``."""
        offset = self.first_gpu + index
        return self.first_node + offset // self.gpus_per_node, offset % self.gpus_per_node

    def iter_ranks(self) -> Iterator[tuple[int, int]]:
        return (self.rank(i) for i in range(self.gpus))

    @property
    def ranks(self) -> tuple[tuple[int, int], ...]:
        """Every rank's (node, GPU): built on request, for views that print one line per rank."""
        return tuple(self.iter_ranks())

    @property
    def last_node(self) -> int:
        return self.rank(self.gpus - 1)[0]

    @property
    def nodes(self) -> tuple[int, ...]:
        return tuple(range(self.first_node, self.last_node + 1))

    def gpus_on(self, node: int) -> tuple[int, ...]:
        if not self.first_node <= node <= self.last_node:
            return ()
        start = self.first_gpu if node == self.first_node else 0
        end = self.rank(self.gpus - 1)[1] + 1 if node == self.last_node else self.gpus_per_node
        return tuple(range(start, end))


class GroupPlacement(msgspec.Struct, frozen=True):
    """The nodes one node group's pools were placed on: ``nodes_used`` nodes from ``first_node`` on."""

    name: str
    gpu_type: str | None
    gpus_per_node: int
    first_node: int
    nodes_used: int
    roles: tuple[str, ...]
    product_label: str | None  # nvidia.com/gpu.product of these nodes (k8s)
    feature: str | None  # the Slurm node feature of these nodes
    explicit: bool  # declared in cluster.node_groups (not the cluster's one implicit group)


class Placement(msgspec.Struct, frozen=True):
    gpus_per_node: int
    nodes: int
    workers: tuple[WorkerPlacement, ...]
    nodes_used: int  # nodes with at least one rank; GPUs are handed out from node 0 on
    notes: tuple[Diagnostic, ...] = ()  # warnings about the node count (DYN409)
    # The node groups, in spec order, each on consecutive nodes (one group when the spec declares none).
    groups: tuple[GroupPlacement, ...] = ()

    def for_pool(self, role: str) -> list[WorkerPlacement]:
        return [w for w in self.workers if w.role == role]

    def group_for(self, role: str) -> GroupPlacement | None:
        return next((g for g in self.groups if role in g.roles), None)

    def gpus_per_node_for(self, role: str) -> int:
        group = self.group_for(role)
        return group.gpus_per_node if group is not None else self.gpus_per_node

    @property
    def node_groups(self) -> tuple[GroupPlacement, ...]:
        """The groups declared in cluster.node_groups that hold workers (none for a spec without groups)."""
        return tuple(g for g in self.groups if g.explicit and g.nodes_used)

    @property
    def gpus_used(self) -> int:
        return sum(w.gpus for w in self.workers)


class PlacementError(Exception):
    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic


def nodes_per_worker(gpus_per_worker: int, gpus_per_node: int) -> int:
    return math.ceil(gpus_per_worker / gpus_per_node)


class _FreeGpus:
    """Free GPUs per node, and "lowest node with at least k free GPUs" in amortised O(1).

    Free counts only ever go down, so the lowest node with at least k free only ever moves up: one
    pointer per size asked for (a spec has at most four pool sizes) walks the nodes once in total.
    """

    def __init__(self, nodes: int, gpus_per_node: int):
        self.gpus_per_node = gpus_per_node
        self.counts = [gpus_per_node] * nodes
        self.lowest: dict[int, int] = {}  # size -> no node below this one has that many GPUs free

    def free(self, node: int) -> int:
        return self.counts[node]

    def set(self, node: int, free: int) -> None:
        self.counts[node] = free

    def first_with(self, wanted: int) -> int | None:
        counts, node = self.counts, self.lowest.get(wanted, 0)
        while node < len(counts) and counts[node] < wanted:
            node += 1
        self.lowest[wanted] = node
        return node if node < len(counts) else None


def place_ranks(pools: list[PoolInfo], gpus_per_node: int, nodes: int, separate: bool = False) -> Placement:
    """Assign GPUs; raises :class:`PlacementError` (DYN405) when the workers don't pack.

    ``separate``: no node holds workers of two pools (``cluster.pool_nodes: separate``)."""
    placement = _place_separate(pools, gpus_per_node, nodes) if separate else _place_shared(pools, gpus_per_node, nodes)
    return msgspec.structs.replace(placement, notes=tuple(_node_notes(placement, pools, separate)))


def _place_separate(pools: list[PoolInfo], gpus_per_node: int, nodes: int) -> Placement:
    """Each pool on nodes of its own, pool after pool in spec order."""
    workers: list[WorkerPlacement] = []
    offset = 0
    for info in pools:
        if offset >= nodes:
            raise PlacementError(_no_node_left(info, nodes))
        try:
            own = _place_shared([info], gpus_per_node, nodes - offset)
        except PlacementError as exc:
            raise PlacementError(_separate_hint(exc.diagnostic)) from None
        workers += [msgspec.structs.replace(w, first_node=w.first_node + offset) for w in own.workers]
        offset += max(w.last_node for w in own.workers) + 1
    return Placement(gpus_per_node, nodes, tuple(workers), offset)


def _pools_sharing_a_node(placement: Placement) -> tuple[int, list[str]] | None:
    """The first node holding workers of two pools, and those pools."""
    roles: dict[int, list[str]] = {}
    for w in placement.workers:
        for node in (w.first_node, w.last_node):
            if w.role not in roles.setdefault(node, []):
                roles[node].append(w.role)
    shared = sorted(n for n, r in roles.items() if len(r) > 1)
    return (shared[0], roles[shared[0]]) if shared else None


def _node_notes(placement: Placement, pools: list[PoolInfo], separate: bool) -> Iterator[Diagnostic]:
    """DYN409: pools share a node the declared cluster could keep apart, or declared nodes stay idle."""
    sharing = None if separate else _pools_sharing_a_node(placement)
    apart: Placement | None = None
    if sharing is not None:
        try:
            apart = _place_separate(pools, placement.gpus_per_node, placement.nodes)
        except PlacementError:
            apart = None
    used, declared = placement.nodes_used, placement.nodes
    if sharing is not None and apart is not None:
        node, roles = sharing
        yield Diagnostic(
            "DYN409",
            f"workers of the {' and '.join(roles)} pools share node {node}; jobs ask for {used} of the "
            f"{declared} declared nodes",
            path=("cluster", "pool_nodes"),
            hint=f"set cluster.pool_nodes: separate to give each pool nodes of its own ({apart.nodes_used} nodes), "
            "as published multi-node recipes run",
            severity="warning",
        )
    elif used < declared:
        yield Diagnostic(
            "DYN409",
            f"the workers fill {used} of the {declared} declared nodes (cluster.nodes); jobs ask for {used}",
            path=("cluster", "nodes"),
            hint=f"set cluster.nodes: {used}, or add replicas to use the rest",
            severity="warning",
        )


def _no_node_left(info: PoolInfo, nodes: int) -> Diagnostic:
    return Diagnostic(
        "DYN405",
        f"no node is left for the {info.role} pool: with cluster.pool_nodes: separate, the pools before it "
        f"fill all {nodes} nodes",
        path=info.path + ("replicas",),
        hint="add nodes (cluster.nodes), lower replicas, or set cluster.pool_nodes: shared",
    )


def _separate_hint(diagnostic: Diagnostic) -> Diagnostic:
    return msgspec.structs.replace(
        diagnostic,
        message=diagnostic.message + " (with each pool on nodes of its own: cluster.pool_nodes: separate)",
        hint="add nodes (cluster.nodes), lower replicas, or set cluster.pool_nodes: shared",
    )


def _place_shared(pools: list[PoolInfo], gpus_per_node: int, nodes: int) -> Placement:
    """Assign GPUs to the workers of ``pools`` from node 0 on, any pools sharing a node."""
    free = _FreeGpus(nodes, gpus_per_node)
    workers = [(p, r) for p in pools for r in range(p.replicas)]
    # Largest workers first; ties keep spec order (agg, prefill, decode, encode) for stable output.
    order = sorted(range(len(workers)), key=lambda i: -workers[i][0].gpus_per_worker)
    placed: dict[int, WorkerPlacement] = {}
    first_untouched = 0  # spanning workers come first and take whole nodes from node 0 on
    touched = 0  # highest node index with a rank, plus one
    for i in order:
        info, replica = workers[i]
        size = info.gpus_per_worker
        if size > gpus_per_node:
            span = nodes_per_worker(size, gpus_per_node)
            start = _find_whole_nodes(free, span, first_untouched, nodes, gpus_per_node)
            if start is None:
                raise PlacementError(_no_room(info, replica, free, nodes, gpus_per_node))
            for n in range(start, start + span):
                free.set(n, 0)
            first_untouched = start + span
            node, first = start, 0
        else:
            found = free.first_with(size)
            if found is None:
                raise PlacementError(_no_room(info, replica, free, nodes, gpus_per_node))
            node, first = found, gpus_per_node - free.free(found)
            free.set(node, free.free(node) - size)
        placed[i] = WorkerPlacement(info.role, replica, node, first, size, gpus_per_node)
        touched = max(touched, placed[i].last_node + 1)
    return Placement(gpus_per_node, nodes, tuple(placed[i] for i in range(len(workers))), _count_used(free, touched))


def _find_whole_nodes(free: _FreeGpus, span: int, start: int, nodes: int, gpus_per_node: int) -> int | None:
    """First run of ``span`` consecutive untouched nodes at or after ``start``."""
    run = 0
    for n in range(start, nodes):
        run = run + 1 if free.free(n) == gpus_per_node else 0
        if run == span:
            return n - span + 1
    return None


def _count_used(free: _FreeGpus, touched: int) -> int:
    return sum(1 for n in range(touched) if free.free(n) < free.gpus_per_node)


def _no_room(info: PoolInfo, replica: int, free: _FreeGpus, nodes: int, gpus_per_node: int) -> Diagnostic:
    counts = free.counts
    left = sum(counts)
    whole = sum(1 for f in counts if f == gpus_per_node)
    return Diagnostic(
        "DYN405",
        f"{info.role} worker {replica} ({info.gpus_per_worker} GPUs) does not fit: {left} GPUs left, "
        f"{whole} whole nodes free",
        path=info.path + ("replicas",),
        hint="add nodes (cluster.nodes), lower replicas, or choose sizes that pack into whole nodes",
    )


def place_groups(pools: list[PoolInfo], groups: dict[str, NodeGroupInfo], separate: bool = False) -> Placement:
    """Place each node group's pools on that group's nodes, group after group in spec order (a group's node
    indices follow the previous group's nodes used). A spec without cluster.node_groups is one group, placed
    exactly as :func:`place_ranks` places a cluster."""
    declared: list[NodeGroupInfo] = []
    for group in groups.values():
        if group not in declared:
            declared.append(group)
    if not declared:
        raise ValueError("place_groups needs each pool's node group")
    if len(declared) == 1 and not declared[0].explicit:
        only = declared[0]
        placed = place_ranks(pools, only.gpus_per_node, only.nodes, separate)
        roles = tuple(p.role for p in pools)
        return msgspec.structs.replace(placed, groups=(_group_placement(only, 0, placed.nodes_used, roles),))
    workers: list[WorkerPlacement] = []
    notes: list[Diagnostic] = []
    placed_groups: list[GroupPlacement] = []
    offset = 0
    for group in declared:
        members = [p for p in pools if groups.get(p.role) == group]
        try:
            own = place_ranks(members, group.gpus_per_node, group.nodes, separate)
        except PlacementError as exc:
            raise PlacementError(_in_group(exc.diagnostic, group)) from None
        workers += [msgspec.structs.replace(w, first_node=w.first_node + offset) for w in own.workers]
        notes += [_in_group(d, group) for d in own.notes]
        placed_groups.append(_group_placement(group, offset, own.nodes_used, tuple(p.role for p in members)))
        offset += own.nodes_used
    first = declared[0]
    total_nodes = sum(g.nodes for g in declared)
    return Placement(first.gpus_per_node, total_nodes, tuple(workers), offset, tuple(notes), tuple(placed_groups))


def _group_placement(group: NodeGroupInfo, first: int, used: int, roles: tuple[str, ...]) -> GroupPlacement:
    return GroupPlacement(
        group.name,
        group.gpu_type,
        group.gpus_per_node,
        first,
        used,
        roles,
        group.product_label,
        group.feature,
        group.explicit,
    )


def _in_group(diagnostic: Diagnostic, group: NodeGroupInfo) -> Diagnostic:
    """A placement finding about one node group: its advice names the group's own node count."""
    where = ".".join(str(part) for part in group.path)

    def reword(text: str | None) -> str | None:
        return text.replace("cluster.nodes", f"{where}.nodes") if text else text

    path = diagnostic.path
    if path[:2] == ("cluster", "nodes"):
        path = group.path + ("nodes",)
    return msgspec.structs.replace(
        diagnostic,
        message=f"node group {group.name!r}: " + (reword(diagnostic.message) or ""),
        hint=reword(diagnostic.hint),
        path=path,
    )
