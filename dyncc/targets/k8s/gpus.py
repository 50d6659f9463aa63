"""Per-pool GPU node selection: a pool on a node group runs on nodes whose ``nvidia.com/gpu.product`` label
(set by NVIDIA's GPU feature discovery) is its group's GPU. Specs without cluster.node_groups select nothing,
as before: their gpu_type only decides the NVLink ComputeDomain."""

from __future__ import annotations

from typing import Any

from dyncc.compiler.plan import DeploymentPlan

PRODUCT_LABEL = "nvidia.com/gpu.product"


def select_gpu_nodes(pod_spec: dict[str, Any], plan: DeploymentPlan, role: str) -> None:
    """Add the pool's GPU product to the pod's nodeSelector (a selector the pool's own k8s settings give for
    the same label wins)."""
    if not plan.placement.node_groups:
        return
    group = plan.placement.group_for(role)
    if group is None or not group.product_label:
        return
    selector = dict(pod_spec.get("nodeSelector") or {})
    selector.setdefault(PRODUCT_LABEL, group.product_label)
    pod_spec["nodeSelector"] = selector
