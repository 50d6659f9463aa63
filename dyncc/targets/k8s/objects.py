"""The pieces every DynamoGraphDeployment shape shares: names (each a DNS label the operator derives more
from), images, worker and frontend arguments (the plan's, with the engine YAML at its mount path and no
``--namespace``), environment, and the objects written beside the DGD (ConfigMap, PVC, ComputeDomain,
PodMonitor, the benchmark Job, kustomization) and the container they all build on.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from dyncc.compiler.plan import (
    ROUTER_POLICY_FILE,
    DeploymentPlan,
    PoolPlan,
    Slot,
)
from dyncc.compiler.rules.versions import image_tag
from dyncc.diagnostics import Diagnostic
from dyncc.spec.model import Benchmark, Planner
from dyncc.targets import env_merge
from dyncc.targets.env_merge import Given, Written
from dyncc.targets.k8s import cache, pods
from dyncc.targets.k8s.settings import K8sSettings, ModelCache
from dyncc.yaml_text import dump_yaml

NAME = "k8s"

IMAGE_REGISTRY = "nvcr.io/nvidia/ai-dynamo"
ENGINE_MOUNT = "/etc/dyncc/engine"
HTTP_PORT = 8000
COMPONENT_TYPE = {"agg": "worker", "prefill": "prefill", "decode": "decode", "encode": "worker"}
COMPONENT_NAME = {"agg": "worker", "prefill": "prefill", "decode": "decode", "encode": "encode"}
# v1alpha1 service names after the engine's prefix (Engine.dgd_service_prefix).
V1ALPHA1_SERVICE = {"agg": "Worker", "prefill": "PrefillWorker", "decode": "DecodeWorker", "encode": "EncodeWorker"}
# Objects the operator derives from the DGD are named "<dgd>-<component>": DNS labels, 63 characters.
MAX_DERIVED_NAME = 63
COMPUTE_DOMAIN_GPUS = ("GB200", "GB300")
CLAIM = "compute-domain-channel"
# Kubernetes refuses a ConfigMap whose data is over 1 MiB, and etcd (default --max-request-bytes)
# any object over 1.5 MiB; a manifest that size would only fail at `kubectl apply`.
MAX_CONFIGMAP_DATA_BYTES = 1024 * 1024
MAX_OBJECT_BYTES = 1536 * 1024
# The operator's runtimeVersionOverride pattern: a plain MAJOR.MINOR.PATCH.
PLAIN_VERSION = re.compile(r"^(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})$")
RELEASE = re.compile(r"^v?(\d+\.\d+\.\d+)")
# Encode endpoints the plan names (dyn://<namespace>.<component>.<endpoint>): on k8s the namespace is the
# operator's DYN_NAMESPACE, which kubelet substitutes for $(DYN_NAMESPACE) in args (issue 28: EPD).
DYN_ENDPOINT = re.compile(r"^dyn://[^.]+\.(?P<rest>[^.]+\.[^.]+)$")
# --- shared pieces ------------------------------------------------------------------------------


def configmap_name(plan: DeploymentPlan) -> str:
    return f"{plan.name}-engine-config"


def frontend_name(k8s: K8sSettings) -> str:
    return k8s.frontend.name or "frontend"


def pool_name(k8s: K8sSettings, role: str) -> str:
    own = getattr(k8s.pools, role)
    return (own.name if own is not None else None) or COMPONENT_NAME[role]


def _labels(plan: DeploymentPlan) -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": "dyncc", "app.kubernetes.io/part-of": plan.name}


def _metadata(plan: DeploymentPlan, k8s: K8sSettings, name: str) -> dict:
    meta: dict[str, Any] = {"name": name}
    if k8s.namespace:
        meta["namespace"] = k8s.namespace
    meta["labels"] = _labels(plan)
    return meta


def _image(plan: DeploymentPlan) -> str:
    image = plan.worker_image()
    assert image is not None  # an engine that runs on the host is refused first (the mock engine: DYN530)
    return image


def _planner_image(plan: DeploymentPlan, k8s: K8sSettings) -> str:
    return k8s.planner_image or f"{IMAGE_REGISTRY}/{plan.profile.planner_image}:{plan.dynamo_version}"


def runtime_version_override(plan: DeploymentPlan, k8s: K8sSettings, image: str) -> str | None:
    """The operator reads the Dynamo version from the image tag; admission requires runtimeVersionOverride
    when the tag is not a plain X.Y.Z (digest-pinned, untagged, `latest`, `0.8.1.post2`, `1.6.1-arm64`)."""
    tag = image_tag(image)
    if tag is not None and "@" not in image and PLAIN_VERSION.match(tag):
        return None
    if k8s.runtime_version:
        return k8s.runtime_version
    release = RELEASE.match(plan.dynamo_version)
    return release.group(1) if release else None


def api_version(plan: DeploymentPlan, k8s: K8sSettings) -> str:
    return k8s.api_version or plan.profile.dgd_api_version


def _pull_policy(k8s: K8sSettings) -> dict[str, str]:
    """``imagePullPolicy`` of every container written, when the spec sets one."""
    return {"imagePullPolicy": k8s.image_pull_policy} if k8s.image_pull_policy else {}


def _env(pairs) -> list[dict]:
    # Values stay strings: "1" must not become the integer 1 in YAML.
    return [{"name": str(k), "value": str(v)} for k, v in pairs]


def written_worker_env(plan: DeploymentPlan, k8s: K8sSettings, pool: PoolPlan) -> list[Written]:
    """What dyncc itself sets in a pool's worker containers, and whether anything relies on the value."""
    written = [
        Written(name, value, f"Dynamo {plan.dynamo_version}'s workers serve the health endpoints the pods' probes ask")
        for name, value in plan.profile.worker_env
    ]
    if pool.nodes_per_worker > 1:
        why = f"{plan.engine.label}'s ranks in a worker spanning nodes start under MPI, which refuses root otherwise"
        written += [Written(name, value, why, relied_on=False) for name, value in plan.engine.multinode_env]
    model_cache = k8s.model_cache
    if model_cache is not None:
        # Workers fetch a hub model into HF_HOME themselves unless the download Job put it in a directory of
        # the cache (served by its path); then another HF_HOME leaves the cache unused but breaks nothing.
        fetch = not model_cache.download and cache.model_is_hub_id(plan)
        why = (
            f"they download {plan.model_path} into HF_HOME, and k8s.model_cache is mounted at "
            f"{model_cache.mount_path}: elsewhere each pod would download it again, outside the cache"
            if fetch
            else f"k8s.model_cache is mounted at {model_cache.mount_path}"
        )
        written.append(
            Written(
                "HF_HOME",
                model_cache.mount_path,
                why,
                relied_on=fetch,
                instead="k8s.model_cache.mount_path",
                works_with=env_merge.inside(model_cache.mount_path),
            )
        )
    return written


def _worker_env(plan: DeploymentPlan, k8s: K8sSettings, pool: PoolPlan) -> list[tuple[str, str]]:
    """The pool's env, then what dyncc sets itself: each name once (a spec value equal to dyncc's is written
    once; the others are the diagnostics of :func:`worker_env_problems`)."""
    given = [Given(name, value, ("pools", pool.role, "env", name)) for name, value in pool.env]
    resolved = env_merge.resolve(written_worker_env(plan, k8s, pool), given, _workers(pool))
    return [(g.name, str(g.value)) for g in resolved.given] + [(w.name, w.value) for w in resolved.written]


def _workers(pool: PoolPlan) -> str:
    return f"the k8s {pool.role} workers"


def worker_env_problems(plan: DeploymentPlan, k8s: K8sSettings) -> list[Diagnostic]:
    """DYN525/DYN526 for each variable the spec gives a pool's workers (``pools.<role>.env``, or the k8s env
    settings, which take precedence over it) that dyncc sets there as well, to another value."""
    problems: list[Diagnostic] = []
    for pool in plan.pools:
        own = getattr(k8s.pools, pool.role)
        given = {name: Given(name, value, ("pools", pool.role, "env", name)) for name, value in pool.env}
        for name, value in pods.effective(k8s.defaults, own).env.items():
            section = ("pools", pool.role) if own is not None and name in own.env else ("defaults",)
            given[name] = Given(name, value, ("k8s", *section, "env", name))
        written = written_worker_env(plan, k8s, pool)
        problems += env_merge.resolve(written, list(given.values()), _workers(pool)).problems
    return env_merge.unique_problems(problems)


def _gpus_per_pod(pool: PoolPlan) -> int:
    # A spanning worker has one pod per node, each with that node's share of the ranks.
    return pool.gpus_per_worker // pool.nodes_per_worker


def _without_namespace(args: list[str]) -> list[str]:
    """Drop ``--namespace X``: on Kubernetes the operator's DYN_NAMESPACE (``<k8s-ns>-<dgd>``) must apply;
    an explicit flag would put every dyncc deployment of a Kubernetes namespace into one Dynamo namespace."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--namespace":
            skip = True
        else:
            out.append(arg)
    return out


def frontend_args(plan: DeploymentPlan, k8s: K8sSettings | None = None) -> list[str]:
    args = ["--http-port", str(HTTP_PORT), *_without_namespace(list(plan.frontend.flags))]
    args += plan.router_policy_args(f"{ENGINE_MOUNT}/{ROUTER_POLICY_FILE}")
    # Several frontends each run a KV router; they share active-sequence state only with replica sync.
    replicas = k8s.frontend.replicas if k8s is not None else 1
    if replicas > 1 and plan.frontend.router_mode == "kv" and "--router-replica-sync" not in args:
        args.append("--router-replica-sync")
    return args


def worker_args(plan: DeploymentPlan, pool: PoolPlan, k8s: K8sSettings | None = None) -> list[str]:
    """The plan's worker arguments with the model and engine files where the pod has them."""
    model = cache.served_model_path(plan, k8s) if k8s is not None else plan.model_path

    def slot(s: Slot) -> str | None:
        if s.kind in ("model", "local_model"):
            return model
        if s.kind == "engine_file":
            return f"{ENGINE_MOUNT}/{s.name}"
        if s.kind == "revision":  # a slot only where the release's worker has the flag (DYN549 warns elsewhere)
            return plan.model_revision or "" if k8s is not None and _worker_takes_revision(plan, k8s) else None
        return None

    args = [str(word) for word in plan.worker_args(pool, slot)]
    return _operator_encode_endpoint(_without_namespace(args))


def _revision_slot(plan: DeploymentPlan) -> bool:
    return all(pool.command.uses("revision") for pool in plan.pools)


def _operator_encode_endpoint(args: list[str]) -> list[str]:
    """The encode worker registers in the operator's Dynamo namespace (``<k8s-namespace>-<deployment>``, or a
    per-rollout one: DYN_NAMESPACE in its pod), not in the spec's: the caller is pointed there through
    kubelet's $(DYN_NAMESPACE) substitution, from the same operator-set variable in its own pod."""
    out = list(args)
    for i, arg in enumerate(out[:-1]):
        match = DYN_ENDPOINT.match(out[i + 1]) if arg == "--encode-endpoint" else None
        if match:
            out[i + 1] = f"dyn://$(DYN_NAMESPACE).{match['rest']}"
    return out


def _worker_takes_revision(plan: DeploymentPlan, k8s: K8sSettings) -> bool:
    """Without a download Job, a 1.x worker downloads the hub model itself, at `--revision`."""
    downloads = k8s.model_cache is not None and k8s.model_cache.download
    return bool(plan.model_revision) and cache.model_is_hub_id(plan) and not downloads


def planner_config(plan: DeploymentPlan, planner: Planner) -> str:
    roles = {p.role for p in plan.pools}
    config: dict[str, Any] = {
        "environment": "kubernetes",
        "backend": plan.engine.dgd_backend,
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


def _is_compute_domain_gpu(plan: DeploymentPlan) -> bool:
    return (plan.gpu_type or "").upper().startswith(COMPUTE_DOMAIN_GPUS)


def _wants_compute_domain(plan: DeploymentPlan, k8s: K8sSettings) -> bool:
    if k8s.compute_domain is not None:
        return k8s.compute_domain
    return _is_compute_domain_gpu(plan) and any(p.nodes_per_worker > 1 for p in plan.pools)


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
        needs.append(f"PersistentVolumeClaim '{k8s.model_cache.pvc}' in {ns} ({k8s.model_cache.access_mode})")
    if plan.planner is not None:
        needs.append("Prometheus scraping the frontend (the planner reads its metrics)")
    if _wants_compute_domain(plan, k8s):
        needs.append("the NVIDIA DRA driver with ComputeDomain support (resource.nvidia.com)")
    needs.append("the Dynamo operator with the nvidia.com DynamoGraphDeployment CRD")
    return needs


def _hub_requirements(k8s: K8sSettings) -> list[str]:
    needs = ["network access to huggingface.co and PyPI from the Job's pod"]
    if k8s.hf_token_secret:
        needs.append(f"Secret '{k8s.hf_token_secret}' (key HF_TOKEN) for gated repositories; optional otherwise")
    return needs


def _dump(plan: DeploymentPlan, obj: dict, requirements: list[str] | None = None) -> str:
    header = f"# {plan.header}\n" + "".join(f"# Requires: {need}\n" for need in requirements or [])
    return dump_yaml(obj, header)


def _configmap(plan: DeploymentPlan, k8s: K8sSettings) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(plan, k8s, configmap_name(plan)),
        # a downloaded draft model is named by its cache directory (cache.engine_yaml_for)
        "data": {**plan.engine_files(), **{p.engine_file: cache.engine_yaml_for(plan, k8s, p) for p in plan.pools}},
    }


def _pvc(plan: DeploymentPlan, k8s: K8sSettings, cache: ModelCache) -> dict:
    spec: dict[str, Any] = {"accessModes": [cache.access_mode], "resources": {"requests": {"storage": cache.size}}}
    if cache.storage_class:
        spec["storageClassName"] = cache.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(plan, k8s, cache.pvc),
        "spec": spec,
    }


def _compute_domain(plan: DeploymentPlan, k8s: K8sSettings) -> dict:
    # Sized for the whole deployment, as Dynamo's GB200 recipe does: every node of every worker pool joins.
    nodes = sum(p.replicas * p.nodes_per_worker for p in plan.pools)
    return {
        "apiVersion": "resource.nvidia.com/v1beta1",
        "kind": "ComputeDomain",
        "metadata": _metadata(plan, k8s, compute_domain_name(plan)),
        "spec": {
            "numNodes": nodes,
            "channel": {"resourceClaimTemplate": {"name": f"{compute_domain_name(plan)}-channel"}},
        },
    }


def _pod_monitor(plan: DeploymentPlan, k8s: K8sSettings) -> dict:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": _metadata(plan, k8s, f"{plan.name}-metrics"),
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/part-of": plan.name}},
            "podMetricsEndpoints": [{"port": "system", "path": "/metrics", "interval": k8s.metrics.interval}],
        },
    }


def _kustomization(k8s: K8sSettings, files: dict[str, str]) -> dict:
    kust: dict[str, Any] = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
    if k8s.namespace:
        kust["namespace"] = k8s.namespace
    order = ["configmap.yaml", "pvc.yaml", "model-download-job.yaml", "computedomain.yaml"]
    rest = sorted(f for f in files if f not in order)
    kust["resources"] = (
        [f for f in order if f in files]
        + [f for f in rest if f != "dynamographdeployment.yaml"]
        + ["dynamographdeployment.yaml"]
    )
    return kust


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

    url = f"http://{plan.name}-{frontend_name(k8s)}:{HTTP_PORT}"
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
        **_pull_policy(k8s),
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
            **_pull_policy(k8s),
            "command": ["/bin/sh", "-c"],
            "args": [shlex.join(argv)],
        }
    else:
        container = {"name": "main", "image": image, **_pull_policy(k8s), "command": argv[:3], "args": argv[3:]}
    if env:
        container["env"] = _env(env)
    if secret and k8s.hf_token_secret:
        container["envFrom"] = [{"secretRef": {"name": k8s.hf_token_secret}}]
    if gpus is not None:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    if mounts:
        container["volumeMounts"] = list(mounts)
    return container
