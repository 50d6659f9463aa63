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

This module is the target's entry points (:func:`check`, :func:`render`) and the checks only the whole
output shows; the DGD's shapes are :mod:`.dgd`, the pieces they share and the objects beside them
:mod:`.objects`.
"""

from __future__ import annotations

from dyncc.compiler.plan import (
    DeploymentPlan,
    oversized_files,
    text_bytes,
)
from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.targets.k8s import cache, env_checks
from dyncc.targets.k8s.dgd import _checked_dgd
from dyncc.targets.k8s.objects import (
    HTTP_PORT,
    MAX_CONFIGMAP_DATA_BYTES,
    MAX_DERIVED_NAME,
    MAX_OBJECT_BYTES,
    NAME,
    _benchmark_job,
    _compute_domain,
    _configmap,
    _dump,
    _hub_requirements,
    _kustomization,
    _metadata,
    _pod_monitor,
    _pull_policy,
    _pvc,
    _requirements,
    _revision_slot,
    _wants_compute_domain,
    _worker_takes_revision,
    frontend_args,
    frontend_name,
    pool_name,
)
from dyncc.targets.k8s.settings import ComponentSettings, K8sSettings
from dyncc.targets.release_flags import frontend_command_problems, worker_command_problems


def check(plan: DeploymentPlan, k8s: K8sSettings) -> list[Diagnostic]:
    """Derived names, settings that need each other, what the workers' engine cannot run or its release lacks,
    and the whole DGD (patches applied) against the CRD."""
    problems = (
        _name_problems(plan, k8s)
        + _settings_problems(plan, k8s)
        + list(plan.engine_problems)
        + worker_command_problems(plan, NAME)
        # Several frontends get --router-replica-sync from the target (frontend_args), not from the spec.
        + frontend_command_problems(
            plan, frontend_args(plan, k8s), NAME, {"--router-replica-sync": ("k8s", "frontend", "replicas")}
        )
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
