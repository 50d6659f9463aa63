"""Limits of the Kubernetes API server the DGD and the pods the operator derives from it must fit.

- Annotations: at most 256 KiB in total per object, keys and values counted (the API server's
  ``TotalAnnotationSizeLimitB``). Over it the DGD is refused at ``kubectl apply`` (DGD annotations), or
  the DGD is accepted and the operator's pods are refused (pod-template annotations): DYN553.
- ``kubectl apply`` without ``--server-side`` stores the whole object as JSON in the
  ``kubectl.kubernetes.io/last-applied-configuration`` annotation, so a DGD whose JSON is near 256 KiB
  fails that way although it is a valid object: DYN554, a warning (server-side apply works).
- The whole object is limited to 1.5 MiB by etcd; the rendered files are checked for it (DYN513).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from dyncc.diagnostics import Diagnostic

MAX_ANNOTATION_BYTES = 256 * 1024
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
SpecPath = tuple[str | int, ...]


def annotation_bytes(annotations: Any) -> int:
    if not isinstance(annotations, dict):
        return 0
    return sum(len(str(k).encode()) + len(str(v).encode()) for k, v in annotations.items())


def _dig(node: Any, *keys: str) -> Any:
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _pod_annotations(dgd: dict[str, Any]) -> Iterator[tuple[str, int | str, Any]]:
    """(component name, index or key in the DGD, pod annotations) of each component, both API versions."""
    components = _dig(dgd, "spec", "components")
    for i, component in enumerate(components if isinstance(components, list) else []):
        yield str(_dig(component, "name")), i, _dig(component, "podTemplate", "metadata", "annotations")
    services = _dig(dgd, "spec", "services")
    for name, service in (services if isinstance(services, dict) else {}).items():
        yield str(name), name, _dig(service, "extraPodMetadata", "annotations")


def annotation_problems(dgd: dict[str, Any], where: dict[int | str, SpecPath]) -> list[Diagnostic]:
    """DYN553 for the DGD's own annotations and each component's pod annotations over 256 KiB; ``where``
    gives the spec path that wrote each component's annotations (by its index or service name)."""
    problems = []
    own = annotation_bytes(_dig(dgd, "metadata", "annotations"))
    if own > MAX_ANNOTATION_BYTES:
        problems.append(
            _too_large("the DynamoGraphDeployment", own, ("k8s", "annotations"), "kubectl apply refuses it")
        )
    for name, key, pod_annotations in _pod_annotations(dgd):
        size = annotation_bytes(pod_annotations)
        if size > MAX_ANNOTATION_BYTES:
            what = f"the pods of component '{name}'"
            path = where.get(key, ("k8s",))
            problems.append(_too_large(what, size, path, "the operator's pods would be refused, the DGD never serve"))
    return problems


def _too_large(what: str, size: int, path: SpecPath, effect: str) -> Diagnostic:
    return Diagnostic(
        "DYN553",
        f"{what} would carry {size // 1024} KiB of annotations; Kubernetes allows "
        f"{MAX_ANNOTATION_BYTES // 1024} KiB per object in total: {effect}",
        path=path,
        hint="keep large data out of annotations (a ConfigMap mounted as a volume holds up to 1 MiB)",
    )


def client_apply_problem(dgd: dict[str, Any]) -> Diagnostic | None:
    """DYN554 when `kubectl apply` (client-side) could not store the DGD in its last-applied annotation."""
    size = len(json.dumps(dgd, separators=(",", ":")).encode())
    total = size + len(LAST_APPLIED) + annotation_bytes(_dig(dgd, "metadata", "annotations"))
    if total <= MAX_ANNOTATION_BYTES:
        return None
    return Diagnostic(
        "DYN554",
        f"the DynamoGraphDeployment is {size // 1024} KiB as JSON: `kubectl apply` without --server-side "
        f"copies it into the {LAST_APPLIED} annotation, which Kubernetes limits to "
        f"{MAX_ANNOTATION_BYTES // 1024} KiB with the object's other annotations, and fails",
        path=("k8s",),
        severity="warning",
        hint="apply it with `kubectl apply --server-side -k <dir>` (or kubectl create), or shrink what every "
        "component repeats (env values, annotations)",
    )
