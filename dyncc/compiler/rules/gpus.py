"""Node groups (DYN410, DYN411): each pool runs on one group of nodes of one GPU type."""

from __future__ import annotations

from collections.abc import Iterator

from dyncc.compiler.graph import DeploymentGraph
from dyncc.compiler.groups import resolve
from dyncc.compiler.rules.base import finding, rule
from dyncc.diagnostics import Diagnostic


@rule("DYN410", "pool-node-group")
def pool_has_a_node_group(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Each pool names a node group that exists (or a GPU type one group has)."""
    for role, pool in graph.spec.pools.declared():
        _, problem = resolve(graph.spec, role, pool)
        if problem is not None:
            yield finding(problem.message, problem.path, problem.hint)


@rule("DYN411", "node-groups-or-one-kind")
def node_groups_replace_cluster_shape(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """cluster.node_groups replaces cluster.gpus_per_node, nodes and gpu_type; a spec gives one or the other."""
    cluster = graph.spec.cluster
    if not cluster.node_groups:
        return
    for key in sorted({"gpus_per_node", "nodes", "gpu_type"} & cluster.model_fields_set):
        yield finding(
            f"cluster.{key} is given beside cluster.node_groups, which says it per group",
            ("cluster", key),
            f"move it into each group (cluster.node_groups.<name>.{key}) and remove it here",
        )
