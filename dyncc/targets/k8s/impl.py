"""Kubernetes target's rendering: a DynamoGraphDeployment for the Dynamo operator, plus the objects it mounts.

Files: ``configmap.yaml`` (the engine YAMLs, mounted into every worker's ``main`` container),
``dynamographdeployment.yaml``, and when the spec asks for them ``pvc.yaml`` (model cache) and
``computedomain.yaml`` (GB200 NVLink domain for multi-node workers). Worker command lines are the
plan's — the same flags the local and slurm targets run — with the engine YAML at its mount path.
``k8s.api_version: v1alpha1`` writes the 2025 ``services`` shape for clusters on the old operator.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from dyncc.compiler.plan import DeploymentPlan, PoolPlan, oversized_files, text_bytes
from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.spec.model import Benchmark, Planner
from dyncc.targets.k8s.settings import K8sSettings, ModelCache
from dyncc.yaml_text import dump_yaml

NAME = "k8s"

IMAGE_REGISTRY = "nvcr.io/nvidia/ai-dynamo"
ENGINE_MOUNT = "/etc/dyncc/engine"
HTTP_PORT = 8000
COMPONENT_TYPE = {"agg": "worker", "prefill": "prefill", "decode": "decode", "encode": "worker"}
COMPONENT_NAME = {"agg": "worker", "prefill": "prefill", "decode": "decode", "encode": "encode"}
V1ALPHA1_SERVICE = {
    "agg": "TRTLLMWorker",
    "prefill": "TRTLLMPrefillWorker",
    "decode": "TRTLLMDecodeWorker",
    "encode": "TRTLLMEncodeWorker",
}
# Multi-node TRT-LLM runs under mpirun as root in Dynamo's images.
MULTINODE_ENV = (("OMPI_ALLOW_RUN_AS_ROOT", "1"), ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"))
# Objects the operator derives from the DGD are named "<dgd>-<component>": DNS labels, 63 characters.
MAX_DERIVED_NAME = 63
COMPUTE_DOMAIN_GPUS = ("GB200", "GB300")
# Kubernetes refuses a ConfigMap whose data is over 1 MiB, and etcd (default --max-request-bytes)
# any object over 1.5 MiB; a manifest that size would only fail at `kubectl apply`.
MAX_CONFIGMAP_DATA_BYTES = 1024 * 1024
MAX_OBJECT_BYTES = 1536 * 1024


def check(plan: DeploymentPlan, k8s: K8sSettings) -> list[Diagnostic]:
    """Names the operator will derive must be valid DNS labels: too long is an error, never a truncation."""
    problems = []
    for component in ["frontend", "planner", *(COMPONENT_NAME[p.role] for p in plan.pools)]:
        derived = f"{plan.name}-{component}"
        if len(derived) > MAX_DERIVED_NAME:
            problems.append(
                Diagnostic(
                    "DYN504",
                    f"the operator would name the {component} component '{derived}' ({len(derived)} "
                    f"characters); Kubernetes allows {MAX_DERIVED_NAME}",
                    path=("name",),
                    hint=f"shorten `name` to at most {MAX_DERIVED_NAME - len(component) - 1} characters",
                )
            )
    return problems


def _configmap_too_large(plan: DeploymentPlan) -> list[Diagnostic]:
    size = sum(text_bytes(p.engine_file) + text_bytes(p.engine_yaml) for p in plan.pools)
    if size <= MAX_CONFIGMAP_DATA_BYTES:
        return []
    largest = max(plan.pools, key=lambda p: len(p.engine_yaml))
    return [
        Diagnostic(
            "DYN511",
            f"the engine-config ConfigMap would hold {size // 1024} KiB of data; Kubernetes allows "
            f"{MAX_CONFIGMAP_DATA_BYTES // 1024} KiB",
            path=("pools", largest.role, "engine", "extra"),
            hint="engine configs are a few KB: remove large passthrough values from engine.extra",
        )
    ]


def _objects_too_large(files: dict[str, str]) -> list[Diagnostic]:
    return [
        Diagnostic(
            "DYN513",
            f"{name} would be {text_bytes(text) // 1024} KiB; the Kubernetes API (etcd) refuses objects over "
            f"{MAX_OBJECT_BYTES // 1024} KiB",
            path=("pools",),
            hint="shrink what every component repeats (env values, engine.extra), or split the deployment",
        )
        for name, text in files.items()
        if len(text) > MAX_OBJECT_BYTES // 4 and text_bytes(text) > MAX_OBJECT_BYTES
    ]


def render(plan: DeploymentPlan, k8s: K8sSettings) -> dict[str, str]:
    problems = check(plan, k8s) + _configmap_too_large(plan)
    if problems:
        raise DiagnosticError(problems)
    files = {"configmap.yaml": _dump(plan, _configmap(plan, k8s))}
    cache = k8s.model_cache
    if cache is not None and cache.create:
        files["pvc.yaml"] = _dump(plan, _pvc(plan, k8s, cache))
    if _wants_compute_domain(plan, k8s):
        files["computedomain.yaml"] = _dump(plan, _compute_domain(plan, k8s))
    if plan.benchmark is not None:
        files["benchmark-job.yaml"] = _dump(
            plan,
            _benchmark_job(plan, k8s, plan.benchmark),
            [
                f"the DynamoGraphDeployment above, serving (its frontend Service {plan.name}-frontend:{HTTP_PORT})",
                "pip access from the Job's pod (it installs aiperf)",
            ],
        )
    dgd = _dgd_v1alpha1(plan, k8s) if api_version(plan, k8s) == "v1alpha1" else _dgd_v1beta1(plan, k8s)
    files["dynamographdeployment.yaml"] = _dump(plan, dgd, _requirements(plan, k8s))
    problems = oversized_files(NAME, files) + _objects_too_large(files)
    if problems:
        raise DiagnosticError(problems)
    return files


# --- shared pieces ------------------------------------------------------------------------------


def configmap_name(plan: DeploymentPlan) -> str:
    return f"{plan.name}-engine-config"


def _metadata(plan: DeploymentPlan, k8s: K8sSettings, name: str) -> dict:
    meta: dict[str, Any] = {"name": name}
    if k8s.namespace:
        meta["namespace"] = k8s.namespace
    meta["labels"] = {"app.kubernetes.io/managed-by": "dyncc", "app.kubernetes.io/part-of": plan.name}
    return meta


def _image(plan: DeploymentPlan) -> str:
    return plan.image or f"{IMAGE_REGISTRY}/tensorrtllm-runtime:{plan.dynamo_version}"


def _planner_image(plan: DeploymentPlan, k8s: K8sSettings) -> str:
    return k8s.planner_image or f"{IMAGE_REGISTRY}/{plan.profile.planner_image}:{plan.dynamo_version}"


def api_version(plan: DeploymentPlan, k8s: K8sSettings) -> str:
    return k8s.api_version or plan.profile.dgd_api_version


def _env(pairs) -> list[dict]:
    # Values stay strings: "1" must not become the integer 1 in YAML.
    return [{"name": str(k), "value": str(v)} for k, v in pairs]


def _worker_env(plan: DeploymentPlan, k8s: K8sSettings, pool: PoolPlan) -> list[tuple[str, str]]:
    env = list(pool.env) + [kv for kv in plan.profile.worker_env if kv[0] not in dict(pool.env)]
    if pool.nodes_per_worker > 1:
        env += [kv for kv in MULTINODE_ENV if kv[0] not in dict(env)]
    if k8s.model_cache is not None:
        env.append(("HF_HOME", k8s.model_cache.mount_path))
    return env


def _gpus_per_pod(pool: PoolPlan) -> int:
    # A spanning worker has one pod per node, each with that node's share of the ranks.
    return pool.gpus_per_worker // pool.nodes_per_worker


def frontend_args(plan: DeploymentPlan) -> list[str]:
    return ["--http-port", str(HTTP_PORT), *plan.frontend.flags]


def worker_args(plan: DeploymentPlan, pool: PoolPlan) -> list[str]:
    return pool.worker_args(plan.model_path, plan.served_name, f"{ENGINE_MOUNT}/{pool.engine_file}")


def planner_config(plan: DeploymentPlan, planner: Planner) -> str:
    roles = {p.role for p in plan.pools}
    config: dict[str, Any] = {
        "environment": "kubernetes",
        "backend": "trtllm",
        "mode": "disagg" if "prefill" in roles else "agg",
        "optimization_target": planner.mode,
        "pre_deployment_sweeping_mode": "none",
    }
    if planner.mode == "sla":
        config.update(
            ttft_ms=planner.ttft_ms,
            itl_ms=planner.itl_ms,
            throughput_adjustment_interval_seconds=planner.adjustment_interval_s,
        )
    else:
        config.update({k: v for k, v in planner.load.model_dump().items() if v is not None})
        config["load_adjustment_interval_seconds"] = planner.adjustment_interval_s
    return json.dumps(config, sort_keys=True)


def _wants_compute_domain(plan: DeploymentPlan, k8s: K8sSettings) -> bool:
    if k8s.compute_domain is not None:
        return k8s.compute_domain and any(p.nodes_per_worker > 1 for p in plan.pools)
    gpu = (plan.gpu_type or "").upper()
    return gpu.startswith(COMPUTE_DOMAIN_GPUS) and any(p.nodes_per_worker > 1 for p in plan.pools)


def compute_domain_name(plan: DeploymentPlan) -> str:
    return f"{plan.name}-compute-domain"


def _requirements(plan: DeploymentPlan, k8s: K8sSettings) -> list[str]:
    """What the spec leaves to the cluster on purpose: said at the top of the manifest."""
    needs = []
    ns = k8s.namespace or "the target namespace"
    if k8s.hf_token_secret:
        needs.append(f"Secret '{k8s.hf_token_secret}' in {ns} with HF_TOKEN (Hugging Face access token)")
    if k8s.image_pull_secret:
        needs.append(f"Secret '{k8s.image_pull_secret}' in {ns} (registry credentials for the images)")
    if k8s.model_cache is not None and not k8s.model_cache.create:
        needs.append(f"PersistentVolumeClaim '{k8s.model_cache.pvc}' in {ns} (ReadWriteMany)")
    if plan.planner is not None:
        needs.append("Prometheus scraping the frontend (the planner reads its metrics)")
    if _wants_compute_domain(plan, k8s):
        needs.append("the NVIDIA DRA driver with ComputeDomain support (resource.nvidia.com)")
    needs.append("the Dynamo operator with the nvidia.com DynamoGraphDeployment CRD")
    return needs


def _dump(plan: DeploymentPlan, obj: dict, requirements: list[str] | None = None) -> str:
    header = f"# {plan.header}\n" + "".join(f"# Requires: {need}\n" for need in requirements or [])
    return dump_yaml(obj, header)


def _configmap(plan: DeploymentPlan, k8s: K8sSettings) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(plan, k8s, configmap_name(plan)),
        "data": {pool.engine_file: pool.engine_yaml for pool in plan.pools},
    }


def _pvc(plan: DeploymentPlan, k8s: K8sSettings, cache: ModelCache) -> dict:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": cache.size}}}
    if cache.storage_class:
        spec["storageClassName"] = cache.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(plan, k8s, cache.pvc),
        "spec": spec,
    }


def _compute_domain(plan: DeploymentPlan, k8s: K8sSettings) -> dict:
    nodes = max(p.nodes_per_worker for p in plan.pools)
    return {
        "apiVersion": "resource.nvidia.com/v1beta1",
        "kind": "ComputeDomain",
        "metadata": _metadata(plan, k8s, compute_domain_name(plan)),
        "spec": {
            "numNodes": nodes,
            "channel": {"resourceClaimTemplate": {"name": f"{compute_domain_name(plan)}-channel"}},
        },
    }


def _volumes_and_mounts(plan: DeploymentPlan, k8s: K8sSettings, with_engine_config: bool) -> tuple[list, list]:
    volumes, mounts = [], []
    if with_engine_config:
        volumes.append({"name": "engine-config", "configMap": {"name": configmap_name(plan)}})
        mounts.append({"name": "engine-config", "mountPath": ENGINE_MOUNT, "readOnly": True})
    cache = k8s.model_cache
    if cache is not None:
        volumes.append({"name": "model-cache", "persistentVolumeClaim": {"claimName": cache.pvc}})
        mounts.append({"name": "model-cache", "mountPath": cache.mount_path})
    return volumes, mounts


def _benchmark_job(plan: DeploymentPlan, k8s: K8sSettings, bench: Benchmark) -> dict:
    """A Job running aiperf against the deployment's frontend Service; results under /results in its log."""
    from dyncc.targets.bench import aiperf_args

    url = f"http://{plan.name}-frontend:{HTTP_PORT}"
    runs = [
        shlex.join(["aiperf", *aiperf_args(plan, bench, url, str(c), f"/results/c{c}", plan.model_path)])
        for c in bench.concurrency
    ]
    script = " && ".join(
        [f"pip install --quiet aiperf=={bench.aiperf_version}", *runs, "cat /results/c*/profile_export_aiperf.csv"]
    )
    container: dict[str, Any] = {
        "name": "aiperf",
        "image": "python:3.12-slim",
        "command": ["/bin/sh", "-c"],
        "args": [script],
        "volumeMounts": [{"name": "results", "mountPath": "/results"}],
    }
    if k8s.hf_token_secret:
        container["envFrom"] = [{"secretRef": {"name": k8s.hf_token_secret}}]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(plan, k8s, f"{plan.name}-benchmark"),
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container],
                    "volumes": [{"name": "results", "emptyDir": {}}],
                }
            },
        },
    }


# --- v1beta1 ------------------------------------------------------------------------------------------


def _pod(plan: DeploymentPlan, k8s: K8sSettings, container: dict, volumes: list, pool: PoolPlan | None = None) -> dict:
    spec: dict[str, Any] = {"containers": [container]}
    if volumes:
        spec["volumes"] = volumes
    if k8s.image_pull_secret:
        spec["imagePullSecrets"] = [{"name": k8s.image_pull_secret}]
    if pool is not None and pool.nodes_per_worker > 1 and _wants_compute_domain(plan, k8s):
        spec["resourceClaims"] = [
            {"name": "compute-domain-channel", "resourceClaimTemplateName": f"{compute_domain_name(plan)}-channel"}
        ]
        container["resources"]["claims"] = [{"name": "compute-domain-channel"}]
    return {"spec": spec}


def _container(
    plan: DeploymentPlan,
    k8s: K8sSettings,
    image: str,
    module: str,
    args: list[str],
    env: list,
    mounts: list,
    gpus: int | None = None,
    secret: bool = True,
) -> dict:
    argv = ["python3", "-m", module, *map(str, args)]
    if plan.profile.k8s_command_style == "shell":
        # The 2025 operator's manifests: one shell string (every word quoted by shlex).
        container: dict[str, Any] = {
            "name": "main",
            "image": image,
            "command": ["/bin/sh", "-c"],
            "args": [shlex.join(argv)],
        }
    else:
        container = {"name": "main", "image": image, "command": argv[:3], "args": argv[3:]}
    if env:
        container["env"] = _env(env)
    if secret and k8s.hf_token_secret:
        container["envFrom"] = [{"secretRef": {"name": k8s.hf_token_secret}}]
    if gpus is not None:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    if mounts:
        container["volumeMounts"] = mounts
    return container


def _dgd_v1beta1(plan: DeploymentPlan, k8s: K8sSettings) -> dict:
    cache_volumes, cache_mounts = _volumes_and_mounts(plan, k8s, with_engine_config=False)
    components = [
        {
            "name": "frontend",
            "type": "frontend",
            "replicas": 1,
            "podTemplate": _pod(
                plan,
                k8s,
                _container(
                    plan, k8s, _image(plan), "dynamo.frontend", frontend_args(plan), [], cache_mounts, secret=True
                ),
                cache_volumes,
            ),
        }
    ]
    volumes, mounts = _volumes_and_mounts(plan, k8s, with_engine_config=True)
    for pool in plan.pools:
        container = _container(
            plan,
            k8s,
            _image(plan),
            "dynamo.trtllm",
            worker_args(plan, pool),
            _worker_env(plan, k8s, pool),
            mounts,
            gpus=_gpus_per_pod(pool),
        )
        component: dict[str, Any] = {
            "name": COMPONENT_NAME[pool.role],
            "type": COMPONENT_TYPE[pool.role],
            "replicas": pool.replicas,
        }
        if pool.nodes_per_worker > 1:
            component["multinode"] = {"nodeCount": pool.nodes_per_worker}
        component["podTemplate"] = _pod(plan, k8s, container, volumes, pool)
        components.append(component)
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
        components.append(
            {"name": "planner", "type": "planner", "replicas": 1, "podTemplate": _pod(plan, k8s, container, [])}
        )
    return {
        "apiVersion": "nvidia.com/v1beta1",
        "kind": "DynamoGraphDeployment",
        "metadata": _metadata(plan, k8s, plan.name),
        "spec": {"backendFramework": "trtllm", "components": components},
    }


# --- v1alpha1 (2025 operator) -------------------------------------------------------------------------


def _service_v1alpha1(
    plan: DeploymentPlan,
    k8s: K8sSettings,
    component_type: str,
    container: dict,
    replicas: int,
    gpus: int | None = None,
    volumes: list | None = None,
    sub_type: str | None = None,
) -> dict:
    service: dict[str, Any] = {"componentType": component_type, "dynamoNamespace": plan.name, "replicas": replicas}
    if sub_type:
        service["subComponentType"] = sub_type
    env = container.pop("env", None)
    if env:
        service["envs"] = env
    container.pop("envFrom", None)
    if k8s.hf_token_secret and component_type != "planner":
        service["envFromSecret"] = k8s.hf_token_secret
    container.pop("resources", None)  # v1alpha1 says GPUs at the service level
    if gpus is not None:
        service["resources"] = {"limits": {"gpu": str(gpus)}}
    container.pop("name")
    pod: dict[str, Any] = {"mainContainer": container}
    if volumes:
        pod["volumes"] = volumes
    if k8s.image_pull_secret:
        pod["imagePullSecrets"] = [{"name": k8s.image_pull_secret}]
    service["extraPodSpec"] = pod
    return service


def _dgd_v1alpha1(plan: DeploymentPlan, k8s: K8sSettings) -> dict:
    cache_volumes, cache_mounts = _volumes_and_mounts(plan, k8s, with_engine_config=False)
    services = {
        "Frontend": _service_v1alpha1(
            plan,
            k8s,
            "frontend",
            _container(plan, k8s, _image(plan), "dynamo.frontend", frontend_args(plan), [], cache_mounts),
            1,
            volumes=cache_volumes,
        )
    }
    volumes, mounts = _volumes_and_mounts(plan, k8s, with_engine_config=True)
    for pool in plan.pools:
        container = _container(
            plan,
            k8s,
            _image(plan),
            "dynamo.trtllm",
            worker_args(plan, pool),
            _worker_env(plan, k8s, pool),
            mounts,
            gpus=_gpus_per_pod(pool),
        )
        service = _service_v1alpha1(
            plan,
            k8s,
            "worker",
            container,
            pool.replicas,
            gpus=_gpus_per_pod(pool),
            volumes=volumes,
            sub_type=pool.role if pool.role != "agg" else None,
        )
        if pool.nodes_per_worker > 1:
            service["multinode"] = {"nodeCount": pool.nodes_per_worker}
        services[V1ALPHA1_SERVICE[pool.role]] = service
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
        services["Planner"] = _service_v1alpha1(plan, k8s, "planner", container, 1)
    return {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "DynamoGraphDeployment",
        "metadata": _metadata(plan, k8s, plan.name),
        "spec": {"backendFramework": "trtllm", "services": services},
    }
