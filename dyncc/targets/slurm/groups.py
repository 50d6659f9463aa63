"""Node groups in one Slurm job: each group's nodes asked for by their node feature, in counts.

The job asks for every group at once with Slurm's constraint of counts (``--constraint=[h100*1&h200*2]``:
one node with feature h100 and two with h200) and one GPU count per node. Slurm lists the job's nodes by
name, not by group, so the job script orders them itself before placing anything: each group's nodes
(those whose ActiveFeatures hold the group's feature) in placement order, so that the placement's node
indices, group after group, index that list as they do for a job of one kind of node.
"""

from __future__ import annotations

from dyncc.compiler.plan import DeploymentPlan
from dyncc.diagnostics import Diagnostic


def group_nodes(plan: DeploymentPlan) -> list[tuple[str, int]]:
    """(feature, nodes) per node group holding workers, in placement order; empty without node groups."""
    return [(g.feature or "", g.nodes_used) for g in plan.placement.node_groups]


def group_constraint(plan: DeploymentPlan) -> str | None:
    """The job's --constraint for its node groups: the feature alone for one group, counts for several."""
    wanted = group_nodes(plan)
    if not wanted:
        return None
    if len(wanted) == 1:
        return wanted[0][0]
    return "[" + "&".join(f"{feature}*{count}" for feature, count in wanted) + "]"


def group_problems(plan: DeploymentPlan, site_constraint: str | None) -> list[Diagnostic]:
    """DYN571: node groups one job cannot ask for (one GPU count per node, distinct features, no site
    constraint beside the groups' own)."""
    groups = plan.placement.node_groups
    if not groups:
        return []
    problems = []
    counts = sorted({g.gpus_per_node for g in groups})
    if len(counts) > 1:
        problems.append(
            _problem(
                f"the node groups have {' and '.join(map(str, counts))} GPUs per node, but one Slurm job asks for "
                "one GPU count per node",
                ("cluster", "node_groups", groups[-1].name, "gpus_per_node"),
                "give the groups the same gpus_per_node, or deploy each group as its own spec",
            )
        )
    features = [g.feature or "" for g in groups]
    if len(set(features)) < len(features):
        problems.append(
            _problem(
                f"node groups share the Slurm feature {sorted({f for f in features if features.count(f) > 1})[0]!r}: "
                "the job could not tell their nodes apart",
                ("cluster", "node_groups"),
                "set each group's slurm_feature to the feature its nodes have in slurm.conf",
            )
        )
    if plan.infra_node == "dedicated":
        problems.append(
            _problem(
                "infrastructure.node: dedicated adds a node outside the node groups, which the job's constraint "
                "of counts cannot ask for",
                ("infrastructure", "node"),
                "run etcd/NATS on the head node (infrastructure.node: head) with node groups",
            )
        )
    if site_constraint:
        problems.append(
            _problem(
                f"slurm.constraint {site_constraint!r} is set beside node groups, whose features make the job's "
                "constraint",
                ("slurm", "constraint"),
                "remove slurm.constraint; give each group's slurm_feature instead",
            )
        )
    return problems


def _problem(message: str, path: tuple, hint: str) -> Diagnostic:
    return Diagnostic("DYN571", message, path=path, hint=hint)
