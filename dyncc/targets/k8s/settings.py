"""The spec's ``k8s:`` section: settings of the Kubernetes target only (cheap to import).

Pod settings come in three places: ``k8s.defaults`` (every component), ``k8s.frontend`` and
``k8s.pools.<role>``; a component's own value replaces the default's (maps such as labels are merged,
the component's keys winning). Field names are the spec's snake_case; each maps to one field of the
DynamoGraphDeployment (``sharedMemorySize``, ``podTemplate.spec.tolerations``...), and the written DGD
is checked against the CRD's schema before any file is written. ``patches`` and ``merge`` are the
escape hatch for the rest, checked the same way, bounded (DYN550) and held to a policy: a result that
breaks a component is refused (DYN551), and one that changes the pods' security posture (image, command,
privileged, capabilities, hostPath, host namespaces) is refused unless ``k8s.allow_in_patches`` names the
change (DYN552).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from dyncc.spec.model import DNS_LABEL, ENV_NAME, SectionModel

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


class Resources(SectionModel):
    """Container resources besides GPUs (dyncc sets ``nvidia.com/gpu`` from the pool's parallelism)."""

    requests: dict[ResourceName, Quantity] = Field(
        default_factory=dict, description="Resource requests of the main container, e.g. {cpu: '130', memory: 850Gi}."
    )
    limits: dict[ResourceName, Quantity] = Field(
        default_factory=dict, description="Resource limits of the main container, e.g. {memory: 900Gi}."
    )


class Toleration(SectionModel):
    """A Kubernetes toleration (`podTemplate.spec.tolerations[]`), with snake_case keys."""

    key: str | None = Field(None, max_length=316, description="Taint key tolerated; unset with Exists: every taint.")
    operator: Literal["Exists", "Equal"] | None = Field(
        None, description="Exists: any value of the key; Equal (Kubernetes' default): only `value`."
    )
    value: str | None = Field(None, max_length=63, description="Taint value matched by operator Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="Taint effect tolerated; unset: every effect."
    )
    toleration_seconds: int | None = Field(
        None, ge=0, description="NoExecute: seconds a pod stays on the node once the taint appears."
    )


class Probe(SectionModel):
    """An HTTP probe; the defaults suit a model that loads for many minutes (720 x 10 s = 2 h before the pod
    is restarted). Default endpoint: a worker's system server (`/live` on 9090, the operator's
    DYN_SYSTEM_PORT), the frontend's HTTP server (`/health` on 8000)."""

    path: str | None = Field(
        None,
        pattern=r"^/[A-Za-z0-9._/-]*$",
        description="HTTP path probed; default: /live (worker), /health (frontend).",
    )
    port: int | str | None = Field(None, description="Port number or name; default: 9090 (worker), 8000 (frontend).")
    initial_delay_s: int = Field(0, ge=0, description="Seconds after the container starts before the first probe.")
    period_s: int = Field(10, ge=1, description="Seconds between probes.")
    timeout_s: int = Field(5, ge=1, description="Seconds a probe may take before it counts as failed.")
    failure_threshold: int = Field(
        720, ge=1, description="Failed probes in a row before Kubernetes restarts the container (or marks it unready)."
    )
    success_threshold: int = Field(
        1, ge=1, description="Passed probes in a row that count as success (Kubernetes: 1 for liveness and startup)."
    )


class EnvSource(SectionModel):
    """An env value from elsewhere: the downward API (``field_ref: metadata.uid``), a container resource,
    a Secret key or a ConfigMap key. Exactly one."""

    field_ref: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.\[\]'/-]+$",
        max_length=256,
        description="A field of the pod (downward API `fieldRef`), e.g. metadata.uid or status.podIP.",
    )
    resource_field_ref: str | None = Field(
        None,
        pattern=r"^(limits|requests)\.[a-z0-9./-]+$",
        max_length=256,
        description="A resource of the main container (`resourceFieldRef`), e.g. limits.memory.",
    )
    secret: Subdomain | None = Field(None, description="Secret the value is read from (`secretKeyRef`); needs key.")
    config_map: Subdomain | None = Field(
        None, description="ConfigMap the value is read from (`configMapKeyRef`); needs key."
    )
    key: str | None = Field(
        None, pattern=r"^[-._A-Za-z0-9]+$", max_length=253, description="Key in the Secret or ConfigMap."
    )
    optional: bool | None = Field(
        None, description="Start the container even if the Secret, ConfigMap or key is missing."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> EnvSource:
        chosen = [n for n in ("field_ref", "resource_field_ref", "secret", "config_map") if getattr(self, n)]
        if len(chosen) != 1:
            raise ValueError("give exactly one of field_ref, resource_field_ref, secret, config_map")
        if (self.secret or self.config_map) and not self.key:
            raise ValueError("secret and config_map need a key")
        return self


class EnvFrom(SectionModel):
    """All keys of a Secret or ConfigMap as env variables."""

    secret: Subdomain | None = Field(None, description="Secret whose keys all become env variables (`secretRef`).")
    config_map: Subdomain | None = Field(
        None, description="ConfigMap whose keys all become env variables (`configMapRef`)."
    )
    prefix: str | None = Field(
        None, pattern=ENV_NAME, max_length=64, description="Prefix added to every variable name."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> EnvFrom:
        if bool(self.secret) == bool(self.config_map):
            raise ValueError("give exactly one of secret, config_map")
        return self


class Volume(SectionModel):
    """An extra volume mounted into the main container. Exactly one source."""

    name: DnsName = Field(description="Volume name, unique in the pod.")
    mount_path: AbsPath = Field(description="Where the main container sees the volume.")
    read_only: bool | None = Field(None, description="Mount it read-only.")
    sub_path: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._-][A-Za-z0-9._/-]*$",
        max_length=1024,
        description="Mount this directory of the volume instead of its root.",
    )
    pvc: Subdomain | None = Field(None, description="Source: a PersistentVolumeClaim, by name.")
    config_map: Subdomain | None = Field(None, description="Source: a ConfigMap, by name (one file per key).")
    secret: Subdomain | None = Field(None, description="Source: a Secret, by name (one file per key).")
    host_path: AbsPath | None = Field(None, description="Source: a directory on the node (hostPath).")
    empty_dir: bool | None = Field(
        None, description="Source: an emptyDir, scratch space that lives as long as the pod."
    )
    empty_dir_medium: Literal["", "Memory"] | None = Field(
        None, description="emptyDir medium: Memory = tmpfs, counted against the container's memory."
    )
    size_limit: Quantity | None = Field(None, description="emptyDir size limit, a Kubernetes quantity (64Gi).")

    @model_validator(mode="after")
    def _one_source(self) -> Volume:
        sources = [n for n in ("pvc", "config_map", "secret", "host_path", "empty_dir") if getattr(self, n)]
        if len(sources) != 1:
            raise ValueError("give exactly one of pvc, config_map, secret, host_path, empty_dir")
        return self


class JsonPatch(SectionModel):
    """One RFC 6902 operation on the component's object (``/podTemplate/spec/hostIPC``), as kustomize's
    ``patches`` take them."""

    op: Literal["add", "replace", "remove", "copy", "move", "test"] = Field(
        description="RFC 6902 operation: add, replace and test need value; copy and move need from."
    )
    path: str = Field(
        pattern=r"^(/([^/~]|~[01])*)+$",
        max_length=1024,
        description="JSON Pointer into the DGD component (a path that is not there: DYN541).",
    )
    value: Any = Field(None, description="Value added, replaced or tested.")
    from_: str | None = Field(
        None,
        alias="from",
        pattern=r"^(/([^/~]|~[01])*)+$",
        max_length=1024,
        description="JSON Pointer copied or moved from.",
    )

    @model_validator(mode="after")
    def _operands(self) -> JsonPatch:
        if self.op in ("add", "replace", "test") and "value" not in self.model_fields_set:
            raise ValueError(f"`{self.op}` needs a value")
        if self.op in ("copy", "move") and self.from_ is None:
            raise ValueError(f"`{self.op}` needs `from`")
        return self


class PodSettings(SectionModel):
    """Settings of one component's pods (or, under ``k8s.defaults``, of every component's)."""

    resources: Resources | None = Field(
        None, description="Requests and limits besides GPUs (nvidia.com/gpu follows the pool's parallelism)."
    )
    shared_memory: Quantity | None = Field(
        None, description="Size of /dev/shm (TP/EP ranks exchange through it); '0' disables. Operator default 8Gi."
    )
    tolerations: list[Toleration] | None = Field(
        None, description="Taints the pods tolerate (`tolerations`), e.g. those of GPU nodes."
    )
    node_selector: dict[LabelKey, LabelValue] | None = Field(
        None, description="Node labels the pods must run on (`nodeSelector`)."
    )
    affinity: dict[Literal["nodeAffinity", "podAffinity", "podAntiAffinity"], dict[str, Any]] | None = Field(
        None, description="Kubernetes Affinity, in its own camelCase form; checked against the CRD (DYN546)."
    )
    priority_class: Subdomain | None = Field(None, description="PriorityClass of the pods (`priorityClassName`).")
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, description="Pod labels.")
    annotations: dict[LabelKey, str] = Field(default_factory=dict, description="Pod annotations.")
    service_account: Subdomain | None = Field(
        None, description="ServiceAccount the pods run as (`serviceAccountName`)."
    )
    image_pull_secrets: list[Subdomain] | None = Field(
        None, description="Secrets with registry credentials for the pods' images (`imagePullSecrets`)."
    )
    startup_probe: Probe | None = Field(
        None, description="Startup probe: Kubernetes waits for it before the other probes start."
    )
    readiness_probe: Probe | None = Field(
        None, description="Readiness probe: traffic reaches a pod only while it passes."
    )
    liveness_probe: Probe | None = Field(None, description="Liveness probe: the container is restarted when it fails.")
    termination_grace_period_s: int | None = Field(
        None,
        ge=0,
        le=86400,
        description="Seconds the pods get to stop after SIGTERM (`terminationGracePeriodSeconds`).",
    )
    env: dict[Annotated[str, Field(pattern=ENV_NAME, max_length=256)], str | EnvSource] = Field(
        default_factory=dict,
        description="Main-container env; a value is a string or a source (field_ref...). Not what the operator "
        "sets itself (DYN548).",
    )
    env_from: list[EnvFrom] | None = Field(
        None, description="Secrets and ConfigMaps whose keys all become env variables (`envFrom`)."
    )
    volumes: list[Volume] | None = Field(None, description="Extra volumes mounted into the main container.")
    security_context: dict[str, Any] | None = Field(None, description="Container SecurityContext (camelCase).")
    pod_security_context: dict[str, Any] | None = Field(None, description="PodSecurityContext (camelCase).")
    working_dir: AbsPath | None = Field(None, description="Working directory of the main container (`workingDir`).")
    topology_pack_domain: DnsName | None = Field(
        None, description="Grove topology: pack this component's pods in one domain (needs k8s.topology: DYN543)."
    )


class ComponentSettings(PodSettings):
    """A component's own settings: its pods', its name, and the escape hatch."""

    name: str | None = Field(
        None,
        pattern=COMPONENT_NAME,
        max_length=63,
        description="Component name in the DGD (pods are named after it; unique: DYN542); default: frontend, "
        "worker, prefill...",
    )
    patches: list[JsonPatch] = Field(
        default_factory=list,
        description="RFC 6902 ops on the DGD component (v1beta1 or v1alpha1 shape), applied after dyncc's "
        "settings (DYN540, DYN541); at most 100 ops and a bounded result (DYN550); a result that breaks the "
        "component is refused (DYN551), a security-posture change unless k8s.allow_in_patches names it (DYN552).",
    )
    merge: dict[str, Any] = Field(
        default_factory=dict,
        description="Deep-merged into the DGD component (lists replaced, null deletes); then checked like "
        "patches (DYN540, DYN550-552).",
    )


class FrontendSettings(ComponentSettings):
    """The frontend component: its pods, name, patches and replica count."""

    replicas: int = Field(1, ge=1, le=1000, description="Frontend pods; > 1 turns router replica sync on (kv mode).")


class PoolSettings(ComponentSettings):
    """One pool's worker component: its pods, name, patches and scaling."""

    scaling_adapter: bool = Field(
        False, description="Let HPA/KEDA/the planner scale this pool (DGD scalingAdapter); bounds live in them."
    )


class PoolsSettings(SectionModel):
    """Settings of each pool's worker component, by role; a role the spec has no pool for is DYN544."""

    agg: PoolSettings | None = Field(None, description="The agg workers' component (DYN544 without pools.agg).")
    prefill: PoolSettings | None = Field(
        None, description="The prefill workers' component (DYN544 without pools.prefill)."
    )
    decode: PoolSettings | None = Field(
        None, description="The decode workers' component (DYN544 without pools.decode)."
    )
    encode: PoolSettings | None = Field(
        None, description="The encode workers' component (DYN544 without pools.encode)."
    )


class ModelCache(SectionModel):
    """A PersistentVolumeClaim the model is downloaded into once, by a Job; workers serve from it."""

    pvc: str = Field(
        "model-cache",
        pattern=DNS_LABEL,
        max_length=63,
        description="Name of the PersistentVolumeClaim the model is in.",
    )
    create: bool = Field(True, description="Emit the PVC; false = it already exists.")
    size: str = Field(
        "100Gi",
        pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$",
        description="Storage the PVC requests, a Kubernetes quantity.",
    )
    storage_class: str | None = Field(
        None, pattern=DNS_LABEL, max_length=253, description="StorageClass of the PVC; default: the cluster's."
    )
    access_mode: Literal["ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod", "ReadOnlyMany"] = Field(
        "ReadWriteMany", description="ReadWriteOnce for single-node storage classes such as local-path."
    )
    mount_path: str = Field(
        "/models", pattern=r"^/[A-Za-z0-9._/-]*$", description="Where the workers and the download Job mount the PVC."
    )
    download: bool = Field(
        True,
        description="A Job downloads the hub model (at model.revision) and an Eagle draft model given as a hub "
        "id into the PVC once; workers wait for it and serve from the cache path. An absolute model.path is "
        "served as is (e.g. /model-cache/my-model, already on the volume): nothing is downloaded for it. "
        "false = workers download into the PVC themselves (HF_HOME). A relative local directory: DYN545.",
    )
    download_image: str = Field(
        "python:3.12-slim",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$",
        max_length=512,
        description="Image the download Job runs in.",
    )


class Topology(SectionModel):
    """Grove topology-aware scheduling (DGD spec.topologyConstraint)."""

    cluster_topology_name: Subdomain = Field(description="The Grove ClusterTopology the deployment is scheduled by.")
    pack_domain: DnsName | None = Field(
        None, description="Topology domain (e.g. a rack) all the deployment's pods are packed into."
    )


class Metrics(SectionModel):
    """Prometheus scraping of the deployment's pods."""

    pod_monitor: bool = Field(False, description="Write a PodMonitor (prometheus-operator) for every pod's /metrics.")
    interval: str = Field("30s", pattern=r"^[0-9]+(ms|s|m|h)$", description="Scrape interval of the PodMonitor.")


# Security-relevant changes `patches` and `merge` may make when the spec says so (k8s.allow_in_patches).
PatchChange = Literal[
    "image", "command", "privileged", "capabilities", "host_path", "host_network", "host_pid", "host_ipc"
]


class K8sSettings(SectionModel):
    """The Kubernetes target: a DynamoGraphDeployment for the Dynamo operator and the objects it needs."""

    api_version: Literal["v1beta1", "v1alpha1"] | None = Field(
        None,
        description="Default: the Dynamo version's (v1beta1 from Dynamo 1.2.0, whose operator first serves it; v1alpha1 before). v1alpha1 is the "
        "2025 `services` format, for clusters on the old operator.",
    )
    namespace: str | None = Field(
        None,
        pattern=DNS_LABEL,
        max_length=63,
        description="Kubernetes namespace of the objects written; default: none (kubectl's current namespace).",
    )
    hf_token_secret: str | None = Field(
        "hf-token-secret",
        pattern=DNS_LABEL,
        max_length=253,
        description="Secret with HF_TOKEN for gated models, given to the workers (null: none).",
    )
    image_pull_secret: str | None = Field(
        None, pattern=DNS_LABEL, max_length=253, description="Secret with registry credentials for every pod's image."
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        None,
        description="`imagePullPolicy` of every container written (DGD components, the model-download Job and "
        "its wait container, the benchmark Job); unset: Kubernetes' default (Always for :latest, else "
        "IfNotPresent).",
    )
    planner_image: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$",
        max_length=512,
        description="Image of the planner component; default: NGC's planner image of the Dynamo version.",
    )
    model_cache: ModelCache | None = Field(
        None, description="A PVC the model is downloaded into once and served from; unset: every worker downloads it."
    )
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
    frontend: FrontendSettings = Field(default_factory=FrontendSettings, description="The frontend component.")
    pools: PoolsSettings = Field(default_factory=PoolsSettings, description="Each pool's worker component (DYN544).")
    topology: Topology | None = Field(
        None, description="Grove topology-aware scheduling (`topologyConstraint`); needed by topology_pack_domain."
    )
    metrics: Metrics = Field(default_factory=Metrics, description="Prometheus scraping (PodMonitor).")
    kustomization: bool = Field(True, description="Write kustomization.yaml listing the objects (kubectl apply -k).")
    allow_in_patches: list[PatchChange] = Field(
        default_factory=list,
        description="Security-relevant changes `patches`/`merge` may make, else refused (DYN552): image (a "
        "container's image changed, or a container added), command (the main command or args rewritten), "
        "privileged, capabilities (added), host_path (volume), host_network, host_pid, host_ipc. Typed settings "
        "(security_context, volumes) need no entry here.",
    )
