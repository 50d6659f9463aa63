"""The spec's ``k8s:`` section: settings of the Kubernetes target only (cheap to import).

Pod settings come in three places: ``k8s.defaults`` (every component), ``k8s.frontend`` and
``k8s.pools.<role>``; a component's own value replaces the default's (maps such as labels are merged,
the component's keys winning). Field names are the spec's snake_case; each maps to one field of the
DynamoGraphDeployment (``sharedMemorySize``, ``podTemplate.spec.tolerations``...), and the written DGD
is checked against the CRD's schema before any file is written. ``patches`` and ``merge`` are the
escape hatch for the rest, checked the same way.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from dyncc.spec.model import DNS_LABEL, ENV_NAME, SpecModel

QUANTITY = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$"
Quantity = Annotated[str, Field(pattern=QUANTITY, max_length=64)]
# Kubernetes label/annotation keys: an optional DNS-subdomain prefix and a name of up to 63 characters.
LABEL_KEY = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
LabelKey = Annotated[str, Field(pattern=LABEL_KEY, max_length=316)]
LabelValue = Annotated[str, Field(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$", max_length=63)]
ResourceName = Annotated[str, Field(pattern=r"^([a-z0-9.-]+/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=253)]
DnsName = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]
Subdomain = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)]
AbsPath = Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/@+=:-]*$", max_length=1024)]
COMPONENT_NAME = r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$"  # the CRD's pattern for spec.components[].name


class Resources(SpecModel):
    """Container resources besides GPUs (dyncc sets ``nvidia.com/gpu`` from the pool's parallelism)."""

    requests: dict[ResourceName, Quantity] = Field(default_factory=dict, description="e.g. {cpu: '130', memory: 850Gi}")
    limits: dict[ResourceName, Quantity] = Field(default_factory=dict)


class Toleration(SpecModel):
    key: str | None = Field(None, max_length=316)
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = Field(None, max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = Field(None, ge=0)


class Probe(SpecModel):
    """An HTTP probe; the defaults suit a model that loads for many minutes (720 x 10 s = 2 h before the pod
    is restarted). Default endpoint: a worker's system server (`/live` on 9090, the operator's
    DYN_SYSTEM_PORT), the frontend's HTTP server (`/health` on 8000)."""

    path: str | None = Field(None, pattern=r"^/[A-Za-z0-9._/-]*$")
    port: int | str | None = Field(None, description="Port number or name.")
    initial_delay_s: int = Field(0, ge=0)
    period_s: int = Field(10, ge=1)
    timeout_s: int = Field(5, ge=1)
    failure_threshold: int = Field(720, ge=1)
    success_threshold: int = Field(1, ge=1)


class EnvSource(SpecModel):
    """An env value from elsewhere: the downward API (``field_ref: metadata.uid``), a container resource,
    a Secret key or a ConfigMap key. Exactly one."""

    field_ref: str | None = Field(None, pattern=r"^[A-Za-z0-9_.\[\]'/-]+$", max_length=256)
    resource_field_ref: str | None = Field(None, pattern=r"^(limits|requests)\.[a-z0-9./-]+$", max_length=256)
    secret: Subdomain | None = None
    config_map: Subdomain | None = None
    key: str | None = Field(None, pattern=r"^[-._A-Za-z0-9]+$", max_length=253)
    optional: bool | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> EnvSource:
        chosen = [n for n in ("field_ref", "resource_field_ref", "secret", "config_map") if getattr(self, n)]
        if len(chosen) != 1:
            raise ValueError("give exactly one of field_ref, resource_field_ref, secret, config_map")
        if (self.secret or self.config_map) and not self.key:
            raise ValueError("secret and config_map need a key")
        return self


class EnvFrom(SpecModel):
    """All keys of a Secret or ConfigMap as env variables."""

    secret: Subdomain | None = None
    config_map: Subdomain | None = None
    prefix: str | None = Field(None, pattern=ENV_NAME, max_length=64)

    @model_validator(mode="after")
    def _exactly_one(self) -> EnvFrom:
        if bool(self.secret) == bool(self.config_map):
            raise ValueError("give exactly one of secret, config_map")
        return self


class Volume(SpecModel):
    """An extra volume mounted into the main container. Exactly one source."""

    name: DnsName
    mount_path: AbsPath
    read_only: bool | None = None
    sub_path: str | None = Field(None, pattern=r"^[A-Za-z0-9._-][A-Za-z0-9._/-]*$", max_length=1024)
    pvc: Subdomain | None = None
    config_map: Subdomain | None = None
    secret: Subdomain | None = None
    host_path: AbsPath | None = None
    empty_dir: bool | None = None
    empty_dir_medium: Literal["", "Memory"] | None = None
    size_limit: Quantity | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Volume:
        sources = [n for n in ("pvc", "config_map", "secret", "host_path", "empty_dir") if getattr(self, n)]
        if len(sources) != 1:
            raise ValueError("give exactly one of pvc, config_map, secret, host_path, empty_dir")
        return self


class JsonPatch(SpecModel):
    """One RFC 6902 operation on the component's object (``/podTemplate/spec/hostIPC``), as kustomize's
    ``patches`` take them."""

    op: Literal["add", "replace", "remove", "copy", "move", "test"]
    path: str = Field(pattern=r"^(/([^/~]|~[01])*)+$", max_length=1024)
    value: Any = None
    from_: str | None = Field(None, alias="from", pattern=r"^(/([^/~]|~[01])*)+$", max_length=1024)

    @model_validator(mode="after")
    def _operands(self) -> JsonPatch:
        if self.op in ("add", "replace", "test") and "value" not in self.model_fields_set:
            raise ValueError(f"`{self.op}` needs a value")
        if self.op in ("copy", "move") and self.from_ is None:
            raise ValueError(f"`{self.op}` needs `from`")
        return self


class PodSettings(SpecModel):
    """Settings of one component's pods (or, under ``k8s.defaults``, of every component's)."""

    resources: Resources | None = None
    shared_memory: Quantity | None = Field(
        None, description="Size of /dev/shm (TP/EP ranks exchange through it); '0' disables. Operator default 8Gi."
    )
    tolerations: list[Toleration] | None = None
    node_selector: dict[LabelKey, LabelValue] | None = None
    affinity: dict[Literal["nodeAffinity", "podAffinity", "podAntiAffinity"], dict[str, Any]] | None = Field(
        None, description="Kubernetes Affinity, in its own camelCase form; checked against the CRD."
    )
    priority_class: Subdomain | None = None
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, description="Pod labels.")
    annotations: dict[LabelKey, str] = Field(default_factory=dict, description="Pod annotations.")
    service_account: Subdomain | None = None
    image_pull_secrets: list[Subdomain] | None = None
    startup_probe: Probe | None = None
    readiness_probe: Probe | None = None
    liveness_probe: Probe | None = None
    termination_grace_period_s: int | None = Field(None, ge=0, le=86400)
    env: dict[Annotated[str, Field(pattern=ENV_NAME, max_length=256)], str | EnvSource] = Field(
        default_factory=dict, description="Main-container env; a value is a string or a source (field_ref...)."
    )
    env_from: list[EnvFrom] | None = None
    volumes: list[Volume] | None = None
    security_context: dict[str, Any] | None = Field(None, description="Container SecurityContext (camelCase).")
    pod_security_context: dict[str, Any] | None = Field(None, description="PodSecurityContext (camelCase).")
    working_dir: AbsPath | None = None
    topology_pack_domain: DnsName | None = Field(
        None, description="Grove topology: pack this component's pods in one domain (needs k8s.topology)."
    )


class ComponentSettings(PodSettings):
    """A component's own settings: its pods', its name, and the escape hatch."""

    name: str | None = Field(
        None,
        pattern=COMPONENT_NAME,
        max_length=63,
        description="Component name in the DGD (pods are named after it); default: frontend, worker, prefill...",
    )
    patches: list[JsonPatch] = Field(default_factory=list, description="RFC 6902 ops on the DGD component.")
    merge: dict[str, Any] = Field(
        default_factory=dict, description="Deep-merged into the DGD component (lists replaced); then checked."
    )


class FrontendSettings(ComponentSettings):
    replicas: int = Field(1, ge=1, le=1000, description="Frontend pods; > 1 turns router replica sync on (kv mode).")


class PoolSettings(ComponentSettings):
    scaling_adapter: bool = Field(
        False, description="Let HPA/KEDA/the planner scale this pool (DGD scalingAdapter); bounds live in them."
    )


class PoolsSettings(SpecModel):
    agg: PoolSettings | None = None
    prefill: PoolSettings | None = None
    decode: PoolSettings | None = None
    encode: PoolSettings | None = None


class ModelCache(SpecModel):
    """A PersistentVolumeClaim the model is downloaded into once, by a Job; workers serve from it."""

    pvc: str = Field("model-cache", pattern=DNS_LABEL, max_length=63)
    create: bool = Field(True, description="Emit the PVC; false = it already exists.")
    size: str = Field("100Gi", pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
    storage_class: str | None = Field(None, pattern=DNS_LABEL, max_length=253)
    access_mode: Literal["ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod", "ReadOnlyMany"] = Field(
        "ReadWriteMany", description="ReadWriteOnce for single-node storage classes such as local-path."
    )
    mount_path: str = Field("/models", pattern=r"^/[A-Za-z0-9._/-]*$")
    download: bool = Field(
        True,
        description="A Job downloads the hub model into the PVC once; workers wait for it and serve from the "
        "cache path. false = workers download into it themselves (HF_HOME).",
    )
    download_image: str = Field("python:3.12-slim", pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$", max_length=512)


class Topology(SpecModel):
    """Grove topology-aware scheduling (DGD spec.topologyConstraint)."""

    cluster_topology_name: Subdomain
    pack_domain: DnsName | None = None


class Metrics(SpecModel):
    pod_monitor: bool = Field(False, description="Write a PodMonitor (prometheus-operator) for every pod's /metrics.")
    interval: str = Field("30s", pattern=r"^[0-9]+(ms|s|m|h)$")


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
        None, description="GB200 NVLink ComputeDomain claimed by every worker pool; default: on for GB200/GB300."
    )
    runtime_version: str | None = Field(
        None,
        pattern=r"^(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})$",
        description="runtimeVersionOverride for images whose tag is not a plain X.Y.Z; default: the Dynamo version.",
    )
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, description="Labels of the DGD object.")
    annotations: dict[LabelKey, str] = Field(default_factory=dict, description="Annotations of the DGD object.")
    defaults: PodSettings = Field(default_factory=PodSettings, description="Pod settings of every component.")
    frontend: FrontendSettings = Field(default_factory=FrontendSettings)
    pools: PoolsSettings = Field(default_factory=PoolsSettings)
    topology: Topology | None = None
    metrics: Metrics = Field(default_factory=Metrics)
    kustomization: bool = Field(True, description="Write kustomization.yaml listing the objects (kubectl apply -k).")
