"""The DynamoGraphDeployment itself: the v1beta1 ``components`` shape (pods with k8s: settings and patches
applied, then checked against the vendored CRD schema) and the 2025 operator's v1alpha1 ``services`` shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dyncc.compiler.plan import (
    DeploymentPlan,
    PoolPlan,
)
from dyncc.diagnostics import Diagnostic
from dyncc.spec.model import Planner
from dyncc.targets import env_merge
from dyncc.targets.k8s import cache, checking, pods
from dyncc.targets.k8s.gpus import select_gpu_nodes
from dyncc.targets.k8s.objects import (
    CLAIM,
    COMPONENT_TYPE,
    V1ALPHA1_SERVICE,
    _container,
    _gpus_per_pod,
    _image,
    _labels,
    _metadata,
    _planner_image,
    _pull_policy,
    _volumes_and_mounts,
    _wants_compute_domain,
    _worker_env,
    api_version,
    compute_domain_name,
    frontend_args,
    frontend_name,
    planner_config,
    pool_name,
    runtime_version_override,
    worker_args,
    worker_env_problems,
)
from dyncc.targets.k8s.settings import K8sSettings, PodSettings

# --- v1beta1 ------------------------------------------------------------------------------------------


def _claims_compute_domain(plan: DeploymentPlan, k8s: K8sSettings) -> bool:
    return _wants_compute_domain(plan, k8s)


def _pod(
    plan: DeploymentPlan,
    k8s: K8sSettings,
    container: dict,
    volumes: list,
    settings: PodSettings,
    pool: PoolPlan | None = None,
    frontend: bool = False,
) -> dict:
    spec: dict[str, Any] = {"containers": [container]}
    if volumes:
        spec["volumes"] = list(volumes)
    if k8s.image_pull_secret:
        spec["imagePullSecrets"] = [{"name": k8s.image_pull_secret}]
    if pool is not None and _claims_compute_domain(plan, k8s):
        spec["resourceClaims"] = [{"name": CLAIM, "resourceClaimTemplateName": f"{compute_domain_name(plan)}-channel"}]
        container.setdefault("resources", {})["claims"] = [{"name": CLAIM}]
    if pool is not None and k8s.model_cache is not None and cache.downloads(plan, k8s):
        wait = cache.wait_for_download(plan, k8s, k8s.model_cache, _image(plan), _pull_policy(k8s))
        spec["initContainers"] = [wait]
    pods.apply_container(container, settings, frontend)
    pods.apply_pod(spec, container, settings)
    if pool is not None:
        select_gpu_nodes(spec, plan, pool.role)
    return {"metadata": pods.pod_metadata(settings, _labels(plan)), "spec": spec}


def _component_common(component: dict[str, Any], plan: DeploymentPlan, k8s: K8sSettings, s: PodSettings) -> None:
    if s.shared_memory is not None:
        component["sharedMemorySize"] = s.shared_memory
    if s.topology_pack_domain:
        component["topologyConstraint"] = {"packDomain": s.topology_pack_domain}
    override = runtime_version_override(plan, k8s, component["podTemplate"]["spec"]["containers"][0]["image"])
    if override:
        component["runtimeVersionOverride"] = override


def _frontend_component(plan: DeploymentPlan, k8s: K8sSettings) -> dict[str, Any]:
    # The router policy file is a key of the engine ConfigMap: the frontend mounts it as the workers do.
    volumes, mounts = _volumes_and_mounts(plan, k8s, with_engine_config=plan.router_policy is not None)
    settings = pods.effective(k8s.defaults, k8s.frontend)
    container = _container(plan, k8s, _image(plan), "dynamo.frontend", frontend_args(plan, k8s), [], mounts)
    component: dict[str, Any] = {
        "name": frontend_name(k8s),
        "type": "frontend",
        "replicas": k8s.frontend.replicas,
        "podTemplate": _pod(plan, k8s, container, volumes, settings, frontend=True),
    }
    _component_common(component, plan, k8s, settings)
    return component


def _worker_container(plan: DeploymentPlan, k8s: K8sSettings, pool: PoolPlan, mounts: list) -> dict[str, Any]:
    """A pool's worker container: the same for the v1beta1 and v1alpha1 shapes."""
    return _container(
        plan,
        k8s,
        _image(plan),
        pool.command.module,
        worker_args(plan, pool, k8s),
        _worker_env(plan, k8s, pool),
        mounts,
        gpus=_gpus_per_pod(pool),
    )


def _pool_component(plan: DeploymentPlan, k8s: K8sSettings, pool: PoolPlan) -> dict[str, Any]:
    volumes, mounts = _volumes_and_mounts(plan, k8s, with_engine_config=True)
    own = getattr(k8s.pools, pool.role)
    settings = pods.effective(k8s.defaults, own)
    container = _worker_container(plan, k8s, pool, mounts)
    component: dict[str, Any] = {
        "name": pool_name(k8s, pool.role),
        "type": COMPONENT_TYPE[pool.role],
        "replicas": pool.replicas,
    }
    if pool.nodes_per_worker > 1:
        component["multinode"] = {"nodeCount": pool.nodes_per_worker}
    component["podTemplate"] = _pod(plan, k8s, container, volumes, settings, pool)
    if own is not None and own.scaling_adapter:
        component["scalingAdapter"] = {}
    _component_common(component, plan, k8s, settings)
    return component


def _planner_component(plan: DeploymentPlan, k8s: K8sSettings, planner: Planner) -> dict[str, Any]:
    container = _container(
        plan,
        k8s,
        _planner_image(plan, k8s),
        "dynamo.planner",
        ["--config", planner_config(plan, planner)],
        [],
        [],
        secret=False,
    )
    component = {
        "name": "planner",
        "type": "planner",
        "replicas": 1,
        "podTemplate": _pod(plan, k8s, container, [], k8s.defaults),
    }
    _component_common(component, plan, k8s, PodSettings())
    return component


def _dgd_v1beta1(plan: DeploymentPlan, k8s: K8sSettings) -> tuple[dict, list[tuple[str, ...]]]:
    """The DGD, and for each component the spec section its settings come from."""
    components = [_frontend_component(plan, k8s)]
    sections: list[tuple[str, ...]] = [("frontend",)]
    for pool in plan.pools:
        components.append(_pool_component(plan, k8s, pool))
        sections.append(("pools", pool.role))
    if plan.planner is not None:
        components.append(_planner_component(plan, k8s, plan.planner))
        sections.append(("planner",))
    spec: dict[str, Any] = {"backendFramework": plan.engine.dgd_backend, "components": components}
    if k8s.topology is not None:
        spec["topologyConstraint"] = {"clusterTopologyName": k8s.topology.cluster_topology_name}
        if k8s.topology.pack_domain:
            spec["topologyConstraint"]["packDomain"] = k8s.topology.pack_domain
    return {
        "apiVersion": "nvidia.com/v1beta1",
        "kind": "DynamoGraphDeployment",
        "metadata": _dgd_metadata(plan, k8s),
        "spec": spec,
    }, sections


def _dgd_metadata(plan: DeploymentPlan, k8s: K8sSettings) -> dict[str, Any]:
    meta = _metadata(plan, k8s, plan.name)
    meta["labels"] = {**meta["labels"], **k8s.labels}
    if k8s.annotations:
        meta["annotations"] = dict(k8s.annotations)
    return meta


# --- checking: patches applied, then the CRD schema -------------------------------------------------


def _checked_dgd(plan: DeploymentPlan, k8s: K8sSettings) -> tuple[dict, list[Diagnostic]]:
    """The DGD with the spec's patches applied, and every problem of the result located in the spec: env the
    spec gives that dyncc sets too (DYN525, DYN526), then the patched result (an env name twice: DYN527)."""
    build = _dgd_v1alpha1 if api_version(plan, k8s) == "v1alpha1" else _dgd_v1beta1
    dgd, sections = build(plan, k8s)
    problems = worker_env_problems(plan, k8s) + checking.patched_and_checked(dgd, sections, k8s)
    if not any(d.code == "DYN550" for d in problems):  # a result past the bounds is not walked
        problems += _duplicate_env_problems(dgd, sections, k8s)
    return dgd, problems


def _env_lists(node: Any) -> Iterator[tuple[str, list]]:
    """(key, list) of every ``env`` and v1alpha1 ``envs`` list in a component (containers, init containers,
    the service's own envs), without recursion: a patched component is bounded (DYN550), not shallow."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key in ("env", "envs") and isinstance(value, list):
                    yield key, value
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def _duplicate_env_problems(dgd: dict, sections: list[tuple[str, ...]], k8s: K8sSettings) -> list[Diagnostic]:
    """DYN527: an env list naming a variable twice. dyncc writes each name once, so only ``patches`` or
    ``merge`` can add the second; server-side apply would refuse the DGD, client-side apply keep the last."""
    spec = dgd["spec"]
    components = (
        list(spec["services"].items()) if "services" in spec else [(c.get("name"), c) for c in spec["components"]]
    )
    problems = []
    for (label, component), section in zip(components, sections):
        for key, entries in _env_lists(component):
            names = [str(e["name"]) for e in entries if isinstance(e, dict) and "name" in e]
            for name in env_merge.duplicate_names(names):
                own = checking.section_settings(k8s, section)
                path: tuple[str, ...] = (
                    ("k8s", *section, "patches" if own.patches else "merge")
                    if own is not None and (own.patches or own.merge)
                    else ("k8s", *section)
                )
                problems.append(
                    Diagnostic(
                        "DYN527",
                        f"component {label}: an `{key}` list names {name[:80]!r} twice; server-side apply refuses the DGD "
                        "(env is keyed by name) and client-side apply keeps the last value",
                        path=path,
                        hint="set it once: in pools.<role>.env or k8s.<component>.env rather than by a patch",
                    )
                )
    return problems


# --- v1alpha1 (2025 operator) -------------------------------------------------------------------------


def _service_v1alpha1(
    plan: DeploymentPlan,
    k8s: K8sSettings,
    component_type: str,
    container: dict,
    replicas: int,
    settings: PodSettings,
    gpus: int | None = None,
    volumes: list | None = None,
    sub_type: str | None = None,
) -> dict:
    service: dict[str, Any] = {"componentType": component_type, "dynamoNamespace": plan.name, "replicas": replicas}
    if sub_type:
        service["subComponentType"] = sub_type
    pod: dict[str, Any] = {}
    if volumes:
        pod["volumes"] = list(volumes)
    if k8s.image_pull_secret:
        pod["imagePullSecrets"] = [{"name": k8s.image_pull_secret}]
    pods.apply_container(container, settings, frontend=component_type == "frontend")
    pods.apply_pod(pod, container, settings)
    env = container.pop("env", None)
    if env:
        service["envs"] = env
    env_from = [e for e in container.get("envFrom", []) if e != {"secretRef": {"name": k8s.hf_token_secret}}]
    container.pop("envFrom", None)
    if env_from:
        container["envFrom"] = env_from
    if k8s.hf_token_secret and component_type != "planner":
        service["envFromSecret"] = k8s.hf_token_secret
    resources = container.pop("resources", {})  # v1alpha1 says GPUs, CPU and memory at the service level
    service_resources = _v1alpha1_resources(resources, gpus)
    if service_resources:
        service["resources"] = service_resources
    if settings.topology_pack_domain:
        service["topologyConstraint"] = {"packDomain": settings.topology_pack_domain}
    if settings.shared_memory is not None:
        service["sharedMemory"] = (
            {"disabled": True} if settings.shared_memory == "0" else {"size": settings.shared_memory}
        )
    meta = pods.pod_metadata(settings, _labels(plan))
    service["extraPodMetadata"] = meta
    override = runtime_version_override(plan, k8s, container["image"])
    if override:
        service["runtimeVersionOverride"] = override
    container.pop("name")
    pod["mainContainer"] = container
    service["extraPodSpec"] = dict(sorted(pod.items(), key=lambda kv: kv[0] != "mainContainer"))
    return service


def _v1alpha1_resources(resources: dict[str, Any], gpus: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("requests", "limits"):
        values = dict(resources.get(kind, {}))
        values.pop("nvidia.com/gpu", None)
        entry: dict[str, Any] = {k: values.pop(k) for k in ("cpu", "memory") if k in values}
        if kind == "limits" and gpus is not None:
            entry["gpu"] = str(gpus)
        if values:
            entry["custom"] = values
        if entry:
            out[kind] = entry
    if resources.get("claims"):
        out["claims"] = resources["claims"]
    return out


def _v1alpha1_service_name(plan: DeploymentPlan, k8s: K8sSettings, role: str) -> str:
    own = getattr(k8s.pools, role)
    return own.name if own is not None and own.name else plan.engine.dgd_service_prefix + V1ALPHA1_SERVICE[role]


def _dgd_v1alpha1(plan: DeploymentPlan, k8s: K8sSettings) -> tuple[dict, list[tuple[str, ...]]]:
    """The 2025 DGD, and for each service (in order) the spec section its settings come from."""
    frontend_volumes, frontend_mounts = _volumes_and_mounts(plan, k8s, plan.router_policy is not None)
    services = {
        "Frontend": _service_v1alpha1(
            plan,
            k8s,
            "frontend",
            _container(plan, k8s, _image(plan), "dynamo.frontend", frontend_args(plan, k8s), [], frontend_mounts),
            k8s.frontend.replicas,
            pods.effective(k8s.defaults, k8s.frontend),
            volumes=frontend_volumes,
        )
    }
    sections: list[tuple[str, ...]] = [("frontend",)]
    volumes, mounts = _volumes_and_mounts(plan, k8s, with_engine_config=True)
    for pool in plan.pools:
        container = _worker_container(plan, k8s, pool, mounts)
        if _wants_compute_domain(plan, k8s):
            container["resources"]["claims"] = [{"name": CLAIM}]
        service = _service_v1alpha1(
            plan,
            k8s,
            "worker",
            container,
            pool.replicas,
            pods.effective(k8s.defaults, getattr(k8s.pools, pool.role)),
            gpus=_gpus_per_pod(pool),
            volumes=volumes,
            sub_type=pool.role if pool.role != "agg" else None,
        )
        select_gpu_nodes(service["extraPodSpec"], plan, pool.role)
        if _wants_compute_domain(plan, k8s):
            service["extraPodSpec"]["resourceClaims"] = [
                {"name": CLAIM, "resourceClaimTemplateName": f"{compute_domain_name(plan)}-channel"}
            ]
        if k8s.model_cache is not None and cache.downloads(plan, k8s):
            wait = cache.wait_for_download(plan, k8s, k8s.model_cache, _image(plan), _pull_policy(k8s))
            service["extraPodSpec"]["initContainers"] = [wait]
        if pool.nodes_per_worker > 1:
            service["multinode"] = {"nodeCount": pool.nodes_per_worker}
        own = getattr(k8s.pools, pool.role)
        if own is not None and own.scaling_adapter:
            service["scalingAdapter"] = {"enabled": True}
        services[_v1alpha1_service_name(plan, k8s, pool.role)] = service
        sections.append(("pools", pool.role))
    if plan.planner is not None:
        container = _container(
            plan,
            k8s,
            _planner_image(plan, k8s),
            "dynamo.planner",
            ["--config", planner_config(plan, plan.planner)],
            [],
            [],
            secret=False,
        )
        services["Planner"] = _service_v1alpha1(plan, k8s, "planner", container, 1, k8s.defaults)
        sections.append(("planner",))
    if k8s.frontend.name:
        services = {(k8s.frontend.name if k == "Frontend" else k): v for k, v in services.items()}
    spec: dict[str, Any] = {"backendFramework": plan.engine.dgd_backend, "services": services}
    if k8s.topology is not None:  # v1alpha1 names the ClusterTopology `topologyProfile`
        spec["topologyConstraint"] = {"topologyProfile": k8s.topology.cluster_topology_name}
        if k8s.topology.pack_domain:
            spec["topologyConstraint"]["packDomain"] = k8s.topology.pack_domain
    return {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "DynamoGraphDeployment",
        "metadata": _dgd_metadata(plan, k8s),
        "spec": spec,
    }, sections
