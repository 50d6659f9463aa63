"""Node groups: which nodes (GPU type, GPUs per node, count) each pool's workers run on.

A spec either describes one kind of node (``cluster.gpus_per_node``, ``nodes``, ``gpu_type``: one implicit
group, as dyncc always read it) or names several in ``cluster.node_groups``, each pool naming its group
(``pools.<role>.node_group``) or the GPU type that picks it (``pools.<role>.gpu_type``). Placement packs each
group's pools onto that group's nodes; targets select nodes per pool from the group (the k8s GPU product
label, a Slurm node feature).
"""

from __future__ import annotations

import re

import msgspec

from dyncc import facts
from dyncc.diagnostics import Diagnostic, YamlPath
from dyncc.spec.model import CoreSpec, Pool, Role

IMPLICIT = "default"  # the name of the one group a spec without node_groups has


class NodeGroupInfo(msgspec.Struct, frozen=True):
    name: str
    gpu_type: str | None
    gpus_per_node: int
    nodes: int
    path: YamlPath  # where the group is declared
    explicit: bool  # from cluster.node_groups
    gpu_product: str | None = None  # the node group's own nvidia.com/gpu.product value, if it gives one
    slurm_feature: str | None = None

    @property
    def product_label(self) -> str | None:
        """The ``nvidia.com/gpu.product`` value of these nodes: the group's, else the GPU table's."""
        if self.gpu_product:
            return self.gpu_product
        known = facts.gpu(self.gpu_type)
        return known.product if known else None

    @property
    def feature(self) -> str | None:
        """The Slurm node feature of these nodes: the group's, else the GPU type in lower case."""
        if self.slurm_feature:
            return self.slurm_feature
        if not self.gpu_type:
            return None
        return re.sub(r"[^a-z0-9_.-]+", "-", self.gpu_type.lower()).strip("-") or None


def node_groups(spec: CoreSpec) -> list[NodeGroupInfo]:
    cluster = spec.cluster
    if not cluster.node_groups:
        return [NodeGroupInfo(IMPLICIT, cluster.gpu_type, cluster.gpus_per_node, cluster.nodes, ("cluster",), False)]
    return [
        NodeGroupInfo(
            name,
            group.gpu_type,
            group.gpus_per_node,
            group.nodes,
            ("cluster", "node_groups", name),
            True,
            group.gpu_product,
            group.slurm_feature,
        )
        for name, group in cluster.node_groups.items()
    ]


def _same_type(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    known_a, known_b = facts.gpu(a), facts.gpu(b)
    if known_a is not None and known_b is not None:
        return known_a.name == known_b.name
    return a.strip().lower() == b.strip().lower()


def resolve(spec: CoreSpec, role: Role, pool: Pool) -> tuple[NodeGroupInfo | None, Diagnostic | None]:
    """The group a pool runs on, or the DYN410 problem that keeps it from having one."""
    groups = node_groups(spec)
    path: YamlPath = ("pools", role)
    names = ", ".join(g.name for g in groups)
    if pool.node_group is not None:
        found = next((g for g in groups if g.name == pool.node_group and g.explicit), None)
        if found is None:
            hint = f"one of: {names}" if groups[0].explicit else "declare cluster.node_groups, or drop node_group"
            return None, _problem(
                f"pools.{role}.node_group {pool.node_group!r} names no node group", path + ("node_group",), hint
            )
        if pool.gpu_type is not None and not _same_type(pool.gpu_type, found.gpu_type):
            return None, _problem(
                f"pools.{role}.gpu_type {pool.gpu_type!r} differs from node group {found.name!r}'s {found.gpu_type!r}",
                path + ("gpu_type",),
                "drop the pool's gpu_type, or name the group of that type",
            )
        return found, None
    if pool.gpu_type is not None:
        matching = [g for g in groups if _same_type(pool.gpu_type, g.gpu_type)]
        if len(matching) == 1:
            return matching[0], None
        if not matching:
            have = ", ".join(f"{g.name}: {g.gpu_type}" for g in groups if g.gpu_type) or "none declared"
            return None, _problem(
                f"pools.{role}.gpu_type {pool.gpu_type!r}: no node group has that GPU ({have})",
                path + ("gpu_type",),
                "declare its nodes in cluster.node_groups (or cluster.gpu_type), or correct the type",
            )
        return None, _problem(
            f"pools.{role}.gpu_type {pool.gpu_type!r} matches node groups {', '.join(g.name for g in matching)}",
            path + ("gpu_type",),
            "name the group: pools.<role>.node_group",
        )
    if len(groups) == 1:
        return groups[0], None
    return None, _problem(
        f"the cluster has {len(groups)} node groups ({names}) and pools.{role} names none",
        path,
        f"add pools.{role}.node_group: <one of {names}> (or gpu_type)",
    )


def _problem(message: str, path: YamlPath, hint: str) -> Diagnostic:
    return Diagnostic("DYN410", message, path=path, hint=hint)


def pool_groups(spec: CoreSpec) -> dict[str, NodeGroupInfo]:
    """Role -> its group, for the pools whose group resolves (DYN410 reports the others)."""
    found: dict[str, NodeGroupInfo] = {}
    for role, pool in spec.pools.declared():
        group, _ = resolve(spec, role, pool)
        if group is not None:
            found[role] = group
    return found


def gpu_type_of(spec: CoreSpec, role: str) -> str | None:
    """The GPU a pool runs on: its group's type (the spec's cluster.gpu_type when there are no groups)."""
    group = pool_groups(spec).get(role)
    return group.gpu_type if group is not None else spec.cluster.gpu_type
