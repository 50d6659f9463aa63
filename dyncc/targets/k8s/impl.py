"""Kubernetes target's rendering: a DynamoGraphDeployment for the Dynamo operator, plus the objects it mounts.

Files: ``configmap.yaml`` (the engine YAMLs, mounted into every worker's ``main`` container),
``dynamographdeployment.yaml``, ``kustomization.yaml`` (so ``kubectl apply -k`` and site overlays work),
and when the spec asks for them ``pvc.yaml`` + ``model-download-job.yaml`` (model cache filled once),
``computedomain.yaml`` (GB200 NVLink domain), ``podmonitor.yaml`` and ``benchmark-job.yaml``. Worker
command lines are the plan's — the same flags the local and slurm targets run — with the engine YAML at
its mount path, and without ``--namespace``: on Kubernetes the operator gives every component
``DYN_NAMESPACE=<k8s-namespace>-<dgd-name>``, so two deployments in one Kubernetes namespace never share a
Dynamo namespace. Pod settings and patches from ``k8s:`` are applied, and the DGD is checked against the
CRD's schema (vendored, :mod:`.crd_schema`) before anything is written.
``k8s.api_version: v1alpha1`` writes the 2025 ``services`` shape for clusters on the old operator.
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
    oversized_files,
    text_bytes,
)
from dyncc.compiler.rules.versions import image_tag
from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.spec.model import Benchmark, Planner
from dyncc.targets.k8s import cache, checking, env_checks, pods
from dyncc.targets.k8s.gpus import select_gpu_nodes
from dyncc.targets.k8s.settings import ComponentSettings, K8sSettings, ModelCache, PodSettings
from dyncc.targets.release_flags import worker_command_problems
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


def check(plan: DeploymentPlan, k8s: K8sSettings) -> list[Diagnostic]:
    """Derived names, settings that need each other, what the workers' engine cannot run or its release lacks,
    and the whole DGD (patches applied) against the CRD."""
    problems = (
        _name_problems(plan, k8s)
        + _settings_problems(plan, k8s)
        + list(plan.engine_problems)
        + worker_command_problems(plan, NAME)
    )
    if problems:
        return problems
    _, problems = _checked_dgd(plan, k8s)
    return problems


def _component_names(plan: DeploymentPlan, k8s: K8sSettings) -> list[tuple[str, tuple[str, ...]]]:
    names: list[tuple[str, tuple[str, ...]]] = [(frontend_name(k8s), ("k8s", "frontend", "name"))]
    names += [(pool_name(k8s, p.role), ("k8s", "pools", p.role, "name")) for p in plan.pools]
    if plan.planner is not None:
        names.append(("planner", ("planner",)))
    return names


def _name_problems(plan: DeploymentPlan, k8s: K8sSettings) -> list[Diagnostic]:
    """Names the operator will derive must be valid DNS labels: too long is an error, never a truncation;
    component names are unique (the CRD compares them case-insensitively)."""
    problems = []
    seen: dict[str, str] = {}
    for component, path in _component_names(plan, k8s):
        derived = f"{plan.name}-{component}".lower()
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
        if component.lower() in seen:
            problems.append(
                Diagnostic(
                    "DYN542",
                    f"two components would be named '{component}' (the {seen[component.lower()]} and this one); "
                    "the CRD requires unique names, compared case-insensitively",
                    path=path,
                    hint="give each component its own `name`",
                )
            )
        seen.setdefault(component.lower(), ".".join(path[1:-1]) or "planner")
    return problems


def _settings_problems(plan: DeploymentPlan, k8s: K8sSettings) -> list[Diagnostic]:
    problems = []
    sections: list[tuple[tuple[str, ...], ComponentSettings | None]] = [(("frontend",), k8s.frontend)]
    sections += [(("pools", role), getattr(k8s.pools, role)) for role in ("agg", "prefill", "decode", "encode")]
    for section, own in sections:
        if own is not None and own.topology_pack_domain and k8s.topology is None:
            problems.append(
                Diagnostic(
                    "DYN543",
                    "topology_pack_domain needs the deployment's topology (k8s.topology.cluster_topology_name)",
                    path=("k8s", *section, "topology_pack_domain"),
                    hint="add k8s.topology: {cluster_topology_name: <your ClusterTopology>}",
                )
            )
        if section[0] == "pools" and own is not None and section[1] not in {p.role for p in plan.pools}:
            problems.append(
                Diagnostic(
                    "DYN544",
                    f"k8s.pools.{section[1]} sets pod settings for a pool the spec does not have",
                    path=("k8s", *section),
                    hint=f"remove k8s.pools.{section[1]}, or add pools.{section[1]}",
                    severity="warning",
                )
            )
    problems += _revision_problems(plan, k8s)
    problems += env_checks.operator_env_problems(plan, k8s, sections) + env_checks.secret_problems(plan, k8s, sections)
    model_cache = k8s.model_cache
    relative_local = plan.model_local_dir is not None and not plan.model_path_absolute
    if model_cache is not None and model_cache.download and relative_local:
        problems.append(
            Diagnostic(
                "DYN545",
                f"model.path '{plan.model_path}' is a local directory on this machine: the model-cache Job "
                "downloads from the Hugging Face hub only",
                path=("k8s", "model_cache", "download"),
                hint="give the path in the pod as an absolute model.path (e.g. on the cache volume: served as is), "
                "set model_cache.download: false and fill the PVC yourself, or give a hub id",
            )
        )
    return problems


def _revision_problems(plan: DeploymentPlan, k8s: K8sSettings) -> list[Diagnostic]:
    if plan.model_revision is None:
        return []
    if not cache.model_is_hub_id(plan):
        kind = "a path served as is" if plan.model_path_absolute else "a local directory"
        return [
            Diagnostic(
                "DYN547",
                f"model.revision {plan.model_revision!r} cannot apply on k8s: model.path is {kind}",
                path=("model", "revision"),
                hint="remove model.revision, or give model.path as a hub id",
            )
        ]
    if _worker_takes_revision(plan, k8s) and not _revision_slot(plan):  # 0.x: warn, build
        return [
            Diagnostic(
                "DYN549",
                f"Dynamo {plan.dynamo_version}'s worker has no --revision flag: without a model-cache download "
                f"Job, k8s workers download the default branch, not {plan.model_revision!r}",
                path=("model", "revision"),
                hint="add k8s.model_cache (its download Job fetches the revision)",
                severity="warning",
            )
        ]
    return []


def _configmap_too_large(plan: DeploymentPlan, k8s: K8sSettings) -> list[Diagnostic]:
    size = sum(text_bytes(p.engine_file) + text_bytes(cache.engine_yaml_for(plan, k8s, p)) for p in plan.pools)
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
    problems = [
        d
        for d in _name_problems(plan, k8s) + _settings_problems(plan, k8s) + _configmap_too_large(plan, k8s)
        if d.is_error
    ]
    if problems:
        raise DiagnosticError(problems)
    dgd, problems = _checked_dgd(plan, k8s)
    if any(d.is_error for d in problems):  # its warnings and notes are check()'s to report
        raise DiagnosticError([d for d in problems if d.is_error])
    files = {"configmap.yaml": _dump(plan, _configmap(plan, k8s))}
    model_cache = k8s.model_cache
    if model_cache is not None and model_cache.create:
        files["pvc.yaml"] = _dump(plan, _pvc(plan, k8s, model_cache))
    if model_cache is not None and cache.downloads(plan, k8s):
        job = cache.download_job(
            plan, k8s, model_cache, _metadata(plan, k8s, f"{plan.name}-model-download"), _pull_policy(k8s)
        )
        files["model-download-job.yaml"] = _dump(plan, job, _hub_requirements(k8s))
    if _wants_compute_domain(plan, k8s):
        files["computedomain.yaml"] = _dump(plan, _compute_domain(plan, k8s))
    if k8s.metrics.pod_monitor:
        files["podmonitor.yaml"] = _dump(plan, _pod_monitor(plan, k8s), ["the prometheus-operator CRDs"])
    if plan.benchmark is not None:
        files["benchmark-job.yaml"] = _dump(
            plan,
            _benchmark_job(plan, k8s, plan.benchmark),
            [
                f"the DynamoGraphDeployment above, serving (its frontend Service {plan.name}-frontend:{HTTP_PORT})",
                "pip access from the Job's pod (it installs aiperf)",
            ],
        )
    files["dynamographdeployment.yaml"] = _dump(plan, dgd, _requirements(plan, k8s))
    if k8s.kustomization:
        files["kustomization.yaml"] = _dump(plan, _kustomization(k8s, files))
    problems = oversized_files(NAME, files) + _objects_too_large(files)
    if problems:
        raise DiagnosticError(problems)
    return files


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


def _worker_env(plan: DeploymentPlan, k8s: K8sSettings, pool: PoolPlan) -> list[tuple[str, str]]:
    env = list(pool.env) + [kv for kv in plan.profile.worker_env if kv[0] not in dict(pool.env)]
    if pool.nodes_per_worker > 1:
        env += [kv for kv in plan.engine.multinode_env if kv[0] not in dict(env)]
    if k8s.model_cache is not None:
        env.append(("HF_HOME", k8s.model_cache.mount_path))
    return env


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
    """The DGD with the spec's patches applied, and every problem of the result located in the spec."""
    build = _dgd_v1alpha1 if api_version(plan, k8s) == "v1alpha1" else _dgd_v1beta1
    dgd, sections = build(plan, k8s)
    return dgd, checking.patched_and_checked(dgd, sections, k8s)


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
