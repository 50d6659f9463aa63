"""The machines: GPUs per node, nodes, node groups of different GPU types, and where etcd and NATS run."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from dyncc.spec.fields import DNS_LABEL, NoControlChars, SpecModel

InfraNode = Literal["head", "dedicated"]


class NodeGroup(SpecModel):
    """Nodes of one GPU type: pools name the group they run on (`pools.<role>.node_group` or `gpu_type`)."""

    gpu_type: NoControlChars = Field(max_length=64, description="GPU model of these nodes, e.g. H100, H200, GB200.")
    gpus_per_node: int = Field(8, ge=1, le=1024, description="GPUs on each node of the group.")
    nodes: int = Field(1, ge=1, le=100_000, description="Nodes in the group (DYN403).")
    gpu_product: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$",
        max_length=63,
        description="k8s: the `nvidia.com/gpu.product` node label value these nodes carry; default: the one GPU "
        "feature discovery sets for gpu_type (e.g. NVIDIA-H100-80GB-HBM3).",
    )
    slurm_feature: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
        max_length=64,
        description="Slurm: the node feature of these nodes (`--constraint`); default: gpu_type in lower case.",
    )


class Infrastructure(SpecModel):
    """Where etcd and NATS run when the deployment needs them (Dynamo 0.x's discovery and event plane,
    `request_plane: nats`, `slurm.discovery: etcd`)."""

    node: InfraNode = Field(
        "head",
        description="head: on the frontend's node; dedicated: on a node of their own that no worker uses (the "
        "job asks for one more node: DYN567; nothing to run there is DYN566). Slurm only (DYN583).",
    )


class Cluster(SpecModel):
    """The machines the workers are placed on."""

    gpus_per_node: int = Field(
        8, ge=1, le=1024, description="GPUs on each node; workers are packed onto nodes this size (DYN404, DYN405)."
    )
    nodes: int = Field(
        1, ge=1, le=100_000, description="Nodes available to the deployment (DYN403); a job asks for them (DYN409)."
    )
    gpu_type: NoControlChars | None = Field(
        None, description="GPU model, e.g. H100 or GB200 (GB200/GB300 turn the k8s ComputeDomain on)."
    )
    node_groups: dict[Annotated[str, Field(pattern=DNS_LABEL, max_length=63)], NodeGroup] | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="Nodes of different GPU types, by group name (instead of gpus_per_node, nodes and gpu_type: "
        "DYN411); each pool runs on one group (DYN410), placed on that group's nodes.",
    )
    pool_nodes: Literal["shared", "separate"] = Field(
        "shared",
        description="`separate`: no node holds workers of two pools (as published multi-node recipes run); "
        "`shared` packs workers of any pool onto a node, which single-node deployments need (DYN409).",
    )
