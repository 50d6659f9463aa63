"""Model delivery through ``k8s.model_cache``: what the download Job fetches, and the paths workers serve.

A hub id (``org/name``) is downloaded once, at ``model.revision``, into ``<mount>/hub-models/<org--name>``
and served from there; so is an Eagle draft model given as a hub id (the engine YAML in the ConfigMap
then names its cache directory: with ``HF_HUB_OFFLINE=1`` or no hub access the worker could not fetch it
at start-up). An absolute ``model.path`` (``/model-cache/deepseek-r1-fp4``) is a path inside the pod —
on the cache volume or in the image — and is served as is: nothing is downloaded for it. A relative
local directory cannot be downloaded (DYN545).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import msgspec

from dyncc.compiler.plan import DeploymentPlan, PoolPlan
from dyncc.targets.k8s import pods
from dyncc.targets.k8s.settings import K8sSettings, ModelCache

DOWNLOAD_DONE = ".dyncc-download-complete"
# The Hugging Face hub's repo id: `namespace/name` (a draft model in any other form is a path).
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


class Download(msgspec.Struct, frozen=True):
    repo: str
    revision: str | None
    directory: str  # in the cache volume


def _directory(cache: ModelCache, repo: str, revision: str | None) -> str:
    """One directory per repo and revision, so two revisions never share files."""
    leaf = repo.replace("/", "--")
    if revision:
        leaf += f"--{revision.replace('/', '--')}"
    return f"{cache.mount_path.rstrip('/')}/hub-models/{leaf}"


def model_is_hub_id(plan: DeploymentPlan) -> bool:
    """Neither an absolute path in the pod nor a directory on this machine: a Hugging Face repo id."""
    return not plan.model_path_absolute and plan.model_local_dir is None


def draft_model(plan: DeploymentPlan) -> str | None:
    """The Eagle draft model the engine configs name (the same in every pool: DYN205)."""
    return next((pool.draft_model for pool in plan.pools if pool.draft_model is not None), None)


def downloads(plan: DeploymentPlan, k8s: K8sSettings) -> list[Download]:
    """What the model-download Job fetches: the served model when it is a hub id, and the draft model."""
    cache = k8s.model_cache
    if cache is None or not cache.download:
        return []
    found = []
    if model_is_hub_id(plan):
        found.append(
            Download(plan.model_path, plan.model_revision, _directory(cache, plan.model_path, plan.model_revision))
        )
    draft = draft_model(plan)
    if draft is not None and HUB_ID.match(draft) and draft != plan.model_path:
        found.append(Download(draft, None, _directory(cache, draft, None)))
    return found


def served_model_path(plan: DeploymentPlan, k8s: K8sSettings) -> str:
    """``--model-path`` of the workers: the cache directory of a downloaded model, else the path as given."""
    cache = k8s.model_cache
    if cache is not None and cache.download and model_is_hub_id(plan):
        return _directory(cache, plan.model_path, plan.model_revision)
    return plan.model_path


def engine_yaml_for(plan: DeploymentPlan, k8s: K8sSettings, pool: PoolPlan) -> str:
    """The pool's engine YAML as the ConfigMap carries it: a downloaded draft model named by its cache
    directory; otherwise exactly the YAML every target writes."""
    draft = {d.repo: d.directory for d in downloads(plan, k8s) if d.repo == draft_model(plan)}
    if pool.draft_model is None or pool.draft_model not in draft:
        return pool.engine_yaml
    return plan.engine_text_with_draft(pool, draft[pool.draft_model])


def _markers(found: list[Download]) -> list[str]:
    return [shlex.quote(f"{d.directory}/{DOWNLOAD_DONE}") for d in found]


def download_job(
    plan: DeploymentPlan, k8s: K8sSettings, cache: ModelCache, metadata: dict[str, Any], pull_policy: dict[str, str]
) -> dict[str, Any]:
    """Fills the cache once: ``hf download`` of each repo (at its revision) into the PVC, each followed by a
    marker file the workers' init container waits for, so no worker starts on a half-written checkpoint."""
    found = downloads(plan, k8s)
    markers = _markers(found)
    steps = []
    for download, marker in zip(found, markers):
        command = ["hf", "download", download.repo, "--local-dir", download.directory]
        if download.revision:
            command += ["--revision", download.revision]
        steps.append(f"{shlex.join(command)} && touch {marker}")
    # Idempotent: a re-created Job (after its TTL, or on a new cluster with the same PVC) finds the markers.
    done = " && ".join(f"[ -f {m} ]" for m in markers)
    script = (
        f"if {done}; then echo model already in the cache; exit 0; fi && "
        f"pip install --quiet --no-cache-dir 'huggingface_hub>=0.34' && {' && '.join(steps)}"
    )
    env: list[dict[str, Any]] = [{"name": "HF_HOME", "value": cache.mount_path}]
    if k8s.hf_token_secret:
        ref = {"name": k8s.hf_token_secret, "key": "HF_TOKEN", "optional": True}
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": ref}})
    container = {
        "name": "download",
        "image": cache.download_image,
        **pull_policy,
        "command": ["/bin/sh", "-c"],
        "args": [script],
        "env": env,
        "volumeMounts": [{"name": "model-cache", "mountPath": cache.mount_path}],
    }
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [{"name": "model-cache", "persistentVolumeClaim": {"claimName": cache.pvc}}],
    }
    defaults = k8s.defaults
    if defaults.tolerations is not None:
        pod["tolerations"] = [pods.toleration(t.model_dump(exclude_none=True)) for t in defaults.tolerations]
    if defaults.node_selector:
        pod["nodeSelector"] = dict(defaults.node_selector)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {"backoffLimit": 3, "completions": 1, "parallelism": 1, "template": {"spec": pod}},
    }


def wait_for_download(
    plan: DeploymentPlan, k8s: K8sSettings, cache: ModelCache, image: str, pull_policy: dict[str, str]
) -> dict[str, Any]:
    """The workers' init container: it waits for every marker of the download Job."""
    done = " && ".join(f"[ -f {m} ]" for m in _markers(downloads(plan, k8s)))
    return {
        "name": "wait-for-model",
        "image": image,  # the worker's own image: already pulled on the node, has /bin/sh
        **pull_policy,
        "command": ["/bin/sh", "-c"],
        "args": [f"until {done}; do echo waiting for the model-download Job; sleep 10; done"],
        "volumeMounts": [{"name": "model-cache", "mountPath": cache.mount_path, "readOnly": True}],
    }
