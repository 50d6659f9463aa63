"""The spec's ``k8s:`` section: settings of the Kubernetes target only (cheap to import)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dyncc.spec.model import DNS_LABEL, SpecModel


class ModelCache(SpecModel):
    """A PersistentVolumeClaim the workers download the model into (HF_HOME), shared across pods."""

    pvc: str = Field("model-cache", pattern=DNS_LABEL, max_length=63)
    create: bool = Field(True, description="Emit the PVC; false = it already exists.")
    size: str = Field("100Gi", pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
    storage_class: str | None = Field(None, pattern=DNS_LABEL, max_length=253)
    mount_path: str = Field("/models", pattern=r"^/[A-Za-z0-9._/-]*$")


class K8sSettings(SpecModel):
    api_version: Literal["v1beta1", "v1alpha1"] | None = Field(
        None,
        description="Default: the Dynamo version's (v1beta1 for 1.x, v1alpha1 for 0.x). v1alpha1 is the "
        "2025 `services` format, for clusters on the old operator.",
    )
    namespace: str | None = Field(None, pattern=DNS_LABEL, max_length=63)
    hf_token_secret: str | None = Field("hf-token-secret", pattern=DNS_LABEL, max_length=253)
    image_pull_secret: str | None = Field(None, pattern=DNS_LABEL, max_length=253)
    planner_image: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$", max_length=512)
    model_cache: ModelCache | None = None
    compute_domain: bool | None = Field(
        None, description="GB200 NVLink ComputeDomain claim for multi-node workers; default: on for GB200/GB300."
    )
