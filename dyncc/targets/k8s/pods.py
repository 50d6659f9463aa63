"""Pod settings (``k8s.defaults`` / ``k8s.frontend`` / ``k8s.pools.<role>``) into DGD component fields.

One place knows the spelling of each setting in both DGD API versions; everything written here is
checked against the CRD schema afterwards (with the spec path of the setting, see :data:`SETTING_OF`).
"""

from __future__ import annotations

from typing import Any

from dyncc.targets.k8s.settings import ComponentSettings, EnvSource, PodSettings, Probe, Volume

# Maps whose entries add up (default's keys, then the component's); every other setting is replaced whole.
MERGED = ("labels", "annotations", "env", "node_selector")
FRONTEND_HTTP_PORT = 8000
SYSTEM_PORT = 9090  # the operator's DYN_SYSTEM_PORT
# Variables the operator sets in every main container; a spec value would override its per-deployment values.
OPERATOR_ENV = frozenset(
    {
        "DYN_NAMESPACE",
        "DYN_NAMESPACE_PREFIX",
        "DYN_NAMESPACE_WORKER_SUFFIX",
        "DYN_COMPONENT",
        "DYN_PARENT_DGD_K8S_NAME",
        "DYN_PARENT_DGD_K8S_NAMESPACE",
        "DYN_DISCOVERY_BACKEND",
        "DYN_SYSTEM_PORT",
    }
)
PROBES = (("startup_probe", "startupProbe"), ("readiness_probe", "readinessProbe"), ("liveness_probe", "livenessProbe"))
# Where each setting lands in a v1beta1 component, to point schema errors back at the spec's key.
SETTING_OF = {
    ("sharedMemorySize",): "shared_memory",
    ("podTemplate", "metadata", "labels"): "labels",
    ("podTemplate", "metadata", "annotations"): "annotations",
    ("podTemplate", "spec", "tolerations"): "tolerations",
    ("podTemplate", "spec", "nodeSelector"): "node_selector",
    ("podTemplate", "spec", "affinity"): "affinity",
    ("podTemplate", "spec", "priorityClassName"): "priority_class",
    ("podTemplate", "spec", "serviceAccountName"): "service_account",
    ("podTemplate", "spec", "securityContext"): "pod_security_context",
    ("podTemplate", "spec", "terminationGracePeriodSeconds"): "termination_grace_period_s",
    ("podTemplate", "spec", "containers", 0, "securityContext"): "security_context",
    ("podTemplate", "spec", "containers", 0, "workingDir"): "working_dir",
    ("podTemplate", "spec", "containers", 0, "startupProbe"): "startup_probe",
    ("podTemplate", "spec", "containers", 0, "readinessProbe"): "readiness_probe",
    ("podTemplate", "spec", "containers", 0, "livenessProbe"): "liveness_probe",
    ("podTemplate", "spec", "containers", 0, "resources"): "resources",
}


def effective(defaults: PodSettings, own: PodSettings | None) -> PodSettings:
    """The component's settings: the defaults, with what the component sets itself on top."""
    if own is None:
        return defaults
    values: dict[str, Any] = {name: getattr(defaults, name) for name in PodSettings.model_fields}
    for name in own.model_fields_set & set(PodSettings.model_fields):
        mine = getattr(own, name)
        if name in MERGED and mine is not None:  # the default may be unset (node_selector: None)
            mine = {**(values[name] or {}), **mine}
        values[name] = mine
    return PodSettings.model_construct(**values)


def where_set(defaults: PodSettings, own: ComponentSettings | None, field: str, section: tuple[str, ...]) -> tuple:
    """Spec path of a setting: the component's section when it sets it, else ``k8s.defaults``."""
    if own is not None and field in own.model_fields_set:
        return ("k8s", *section, field)
    return ("k8s", "defaults", field)


def probe(p: Probe, frontend: bool) -> dict[str, Any]:
    default_path, default_port = ("/health", FRONTEND_HTTP_PORT) if frontend else ("/live", SYSTEM_PORT)
    out: dict[str, Any] = {"httpGet": {"path": p.path or default_path, "port": p.port or default_port}}
    if p.initial_delay_s:
        out["initialDelaySeconds"] = p.initial_delay_s
    out.update(
        periodSeconds=p.period_s,
        timeoutSeconds=p.timeout_s,
        failureThreshold=p.failure_threshold,
        successThreshold=p.success_threshold,
    )
    return out


def env_var(name: str, value: str | EnvSource) -> dict[str, Any]:
    if isinstance(value, str):
        return {"name": name, "value": value}
    source: dict[str, Any]
    if value.field_ref:
        source = {"fieldRef": {"fieldPath": value.field_ref}}
    elif value.resource_field_ref:
        source = {"resourceFieldRef": {"resource": value.resource_field_ref}}
    else:
        kind = "secretKeyRef" if value.secret else "configMapKeyRef"
        ref: dict[str, Any] = {"name": value.secret or value.config_map, "key": value.key}
        if value.optional is not None:
            ref["optional"] = value.optional
        source = {kind: ref}
    return {"name": name, "valueFrom": source}


def env_from(settings: PodSettings) -> list[dict[str, Any]]:
    out = []
    for ref in settings.env_from or []:
        entry: dict[str, Any] = (
            {"secretRef": {"name": ref.secret}} if ref.secret else {"configMapRef": {"name": ref.config_map}}
        )
        if ref.prefix:
            entry["prefix"] = ref.prefix
        out.append(entry)
    return out


def volume(v: Volume) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pod volume, container mount) of one extra volume."""
    spec: dict[str, Any] = {"name": v.name}
    if v.pvc:
        spec["persistentVolumeClaim"] = {"claimName": v.pvc}
    elif v.config_map:
        spec["configMap"] = {"name": v.config_map}
    elif v.secret:
        spec["secret"] = {"secretName": v.secret}
    elif v.host_path:
        spec["hostPath"] = {"path": v.host_path}
    else:
        empty: dict[str, Any] = {}
        if v.empty_dir_medium:
            empty["medium"] = v.empty_dir_medium
        if v.size_limit:
            empty["sizeLimit"] = v.size_limit
        spec["emptyDir"] = empty
    mount: dict[str, Any] = {"name": v.name, "mountPath": v.mount_path}
    if v.read_only is not None:
        mount["readOnly"] = v.read_only
    if v.sub_path:
        mount["subPath"] = v.sub_path
    return spec, mount


def apply_container(container: dict[str, Any], s: PodSettings, frontend: bool = False) -> None:
    """Container-level settings onto the ``main`` container (resources besides GPUs, env, probes...)."""
    if s.resources is not None:
        res = container.get("resources", {})
        merged = {kind: {**getattr(s.resources, kind), **res.get(kind, {})} for kind in ("requests", "limits")}
        # requests, limits, claims in that order; the GPU count stays dyncc's
        container["resources"] = {k: v for k, v in {**merged, "claims": res.get("claims")}.items() if v}
    if s.env:
        names = set(s.env)
        kept = [e for e in container.get("env", []) if e["name"] not in names]
        container["env"] = kept + [env_var(k, v) for k, v in s.env.items()]
    extra_from = env_from(s)
    if extra_from:
        container["envFrom"] = container.get("envFrom", []) + extra_from
    for field, key in PROBES:
        p = getattr(s, field)
        if p is not None:
            container[key] = probe(p, frontend)
    if s.security_context is not None:
        container["securityContext"] = s.security_context
    if s.working_dir is not None:
        container["workingDir"] = s.working_dir


def apply_pod(pod_spec: dict[str, Any], container: dict[str, Any], s: PodSettings) -> None:
    """Pod-level settings (scheduling, identity, volumes) onto a core PodSpec."""
    if s.tolerations is not None:
        pod_spec["tolerations"] = [toleration(t.model_dump(exclude_none=True)) for t in s.tolerations]
    if s.node_selector:
        pod_spec["nodeSelector"] = dict(s.node_selector)
    if s.affinity is not None:
        pod_spec["affinity"] = s.affinity
    if s.priority_class:
        pod_spec["priorityClassName"] = s.priority_class
    if s.service_account:
        pod_spec["serviceAccountName"] = s.service_account
    if s.image_pull_secrets:
        names = [p["name"] for p in pod_spec.get("imagePullSecrets", [])]
        pod_spec["imagePullSecrets"] = [{"name": n} for n in dict.fromkeys([*names, *s.image_pull_secrets])]
    if s.termination_grace_period_s is not None:
        pod_spec["terminationGracePeriodSeconds"] = s.termination_grace_period_s
    if s.pod_security_context is not None:
        pod_spec["securityContext"] = s.pod_security_context
    for v in s.volumes or []:
        spec, mount = volume(v)
        pod_spec.setdefault("volumes", []).append(spec)
        container.setdefault("volumeMounts", []).append(mount)


def toleration(values: dict[str, Any]) -> dict[str, Any]:
    if "toleration_seconds" in values:
        values["tolerationSeconds"] = values.pop("toleration_seconds")
    return values


def pod_metadata(s: PodSettings, base_labels: dict[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"labels": {**base_labels, **s.labels}}
    if s.annotations:
        meta["annotations"] = dict(s.annotations)
    return meta
