"""What ``patches`` and ``merge`` may do to a component, judged on the result against the component dyncc
generated (both shapes: v1beta1 ``podTemplate``, v1alpha1 ``extraPodSpec``).

Two kinds of change are refused. A change that breaks the component (DYN551): no ``main`` container, its
command removed, another component type or name, a GPU count other than the pool's parallelism needs, a
volume the command reads gone, two containers of one name. The deployment would be applied and never
serve. And a change of the pods' security posture (DYN552) — an image or command swapped, a container
added, privileged mode, added capabilities, a hostPath volume, the host's network, PID or IPC namespace
— unless the spec lists it in ``k8s.allow_in_patches``: a patch is opaque in review, so what it grants
must be said where the spec says the rest. Typed settings (``security_context``, ``volumes``) are part of
the generated component, so they are never reported here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from dyncc.diagnostics import Diagnostic
from dyncc.targets.k8s import patches

Path = tuple[str | int, ...]
HOST_NAMESPACES = (("hostNetwork", "host_network"), ("hostPID", "host_pid"), ("hostIPC", "host_ipc"))
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


class Shape(msgspec.Struct, frozen=True):
    """Where a component of one DGD API version keeps its pod spec, main container and GPU count."""

    pod: Path  # from the component to the PodSpec
    main_key: str | None  # v1alpha1: the PodSpec's `mainContainer`; v1beta1: the container named main
    gpu: Path  # the GPU limit, from the main container (v1beta1) or the component (v1alpha1)
    gpu_on_container: bool
    identity: tuple[str, ...]  # fields the operator derives names and wiring from


V1BETA1 = Shape(("podTemplate", "spec"), None, ("resources", "limits", "nvidia.com/gpu"), True, ("name", "type"))
V1ALPHA1 = Shape(
    ("extraPodSpec",),
    "mainContainer",
    ("resources", "limits", "gpu"),
    False,
    ("componentType", "subComponentType", "dynamoNamespace"),
)


def _dig(node: Any, path: Iterable[str | int]) -> Any:
    for key in path:
        if isinstance(node, dict) and isinstance(key, str):
            node = node.get(key)
        else:
            return None
    return node


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _containers(component: Any, shape: Shape) -> list[tuple[Path, str, dict[str, Any]]]:
    """(path in the component, name, container) of every container of the pod, the main one first."""
    pod = _dig(component, shape.pod)
    found: list[tuple[Path, str, dict[str, Any]]] = []
    if not isinstance(pod, dict):
        return found
    if shape.main_key is not None and isinstance(pod.get(shape.main_key), dict):
        found.append(((*shape.pod, shape.main_key), "main", pod[shape.main_key]))
    for kind in CONTAINER_LISTS:
        for i, container in enumerate(_items(pod.get(kind))):
            if isinstance(container, dict):
                found.append(((*shape.pod, kind, i), str(container.get("name")), container))
    return found


def _main(component: Any, shape: Shape) -> tuple[Path, dict[str, Any]] | None:
    for path, name, container in _containers(component, shape):
        is_main = path[-1] == shape.main_key if shape.main_key else name == "main" and path[-2] == "containers"
        if is_main:
            return path, container
    return None


def _gpus(component: Any, shape: Shape) -> Any:
    if not shape.gpu_on_container:
        return _dig(component, shape.gpu)
    main = _main(component, shape)
    return _dig(main[1], shape.gpu) if main else None


def _mounts(container: dict[str, Any]) -> set[tuple[Any, Any]]:
    return {(m.get("name"), m.get("mountPath")) for m in _items(container.get("volumeMounts")) if isinstance(m, dict)}


def _volume_names(component: Any, shape: Shape) -> set[Any]:
    return {v.get("name") for v in _items(_dig(component, (*shape.pod, "volumes"))) if isinstance(v, dict)}


def breaks(before: dict[str, Any], after: dict[str, Any], shape: Shape) -> list[tuple[Path, str]]:
    """(where, what would fail) for each way ``after`` breaks what ``before`` ran."""
    found: list[tuple[Path, str]] = []
    main_before, main_after = _main(before, shape), _main(after, shape)
    if main_after is None:
        return [(shape.pod, "it has no `main` container: the operator would start no Dynamo process in its pods")]
    path, main = main_after
    old_main = main_before[1] if main_before else {}
    if not main.get("image"):
        found.append(((*path, "image"), "its main container has no image: Kubernetes refuses the pod"))
    for key in ("command", "args"):
        if old_main.get(key) and not main.get(key):
            found.append(
                (
                    (*path, key),
                    f"its main container's `{key}` is removed: the pod would run the image's entrypoint, not the "
                    "Dynamo process dyncc wrote",
                )
            )
    for key in shape.identity:
        if before.get(key) != after.get(key):
            found.append(
                (
                    (key,),
                    f"its `{key}` changes from {before.get(key)!r} to {after.get(key)!r}: the operator derives the "
                    "component's role, names and Dynamo namespace from it (names: k8s.<component>.name)",
                )
            )
    gpus_before, gpus_after = _gpus(before, shape), _gpus(after, shape)
    if gpus_before is not None and gpus_after != gpus_before:
        where = (*path, *shape.gpu) if shape.gpu_on_container else shape.gpu
        found.append(
            (
                where,
                f"its GPU limit changes from {gpus_before!r} to {gpus_after!r}: the worker's ranks (tensor x "
                f"pipeline x context parallel) need {gpus_before} GPUs per pod and would not start",
            )
        )
    if before.get("multinode") != after.get("multinode"):
        found.append(
            (
                ("multinode",),
                "its `multinode` changes: the worker's ranks are spread over exactly the nodes dyncc placed",
            )
        )
    for name in sorted(map(str, _volume_names(before, shape) - _volume_names(after, shape))):
        found.append(((*shape.pod, "volumes"), f"volume '{name}' is gone: the paths its command reads would not exist"))
    for name, mount in sorted(map(lambda m: (str(m[0]), str(m[1])), _mounts(old_main) - _mounts(main))):
        found.append(
            ((*path, "volumeMounts"), f"mount '{name}' at {mount} is gone: the paths its command reads would not exist")
        )
    seen: set[str] = set()
    for where, name, _ in _containers(after, shape):
        if name in seen:
            found.append((where, f"two containers are named '{name}': Kubernetes refuses the pod"))
        seen.add(name)
    return found


def _privileged(container: dict[str, Any] | None) -> bool:
    return _dig(container, ("securityContext", "privileged")) is True


def _capabilities(container: dict[str, Any] | None) -> set[str]:
    return {str(c) for c in _items(_dig(container, ("securityContext", "capabilities", "add")))}


def _host_paths(component: Any, shape: Shape) -> set[tuple[str, str]]:
    volumes = _items(_dig(component, (*shape.pod, "volumes")))
    return {(str(v.get("name")), str(_dig(v, ("hostPath", "path")))) for v in volumes if _dig(v, ("hostPath",))}


def posture_changes(before: dict[str, Any], after: dict[str, Any], shape: Shape) -> list[tuple[str, Path, str]]:
    """(change kind as k8s.allow_in_patches names it, where, what) for each security-relevant change."""
    found: list[tuple[str, Path, str]] = []
    old = {name: c for _, name, c in _containers(before, shape)}
    for path, name, c in _containers(after, shape):
        prev = old.get(name)
        if prev is None:
            found.append(("image", path, f"adds container '{name}' running image {str(c.get('image'))[:80]!r}"))
        else:
            if c.get("image") and c.get("image") != prev.get("image"):
                image = str(c.get("image"))[:80]
                found.append(("image", (*path, "image"), f"runs container '{name}' from image {image!r}"))
            for key in ("command", "args"):
                if c.get(key) != prev.get(key) and (c.get(key) or name != "main"):  # main's removal: breaks()
                    found.append(("command", (*path, key), f"rewrites the `{key}` of container '{name}'"))
        if _privileged(c) and not _privileged(prev):
            found.append(("privileged", (*path, "securityContext"), f"makes container '{name}' privileged"))
        added = _capabilities(c) - _capabilities(prev)
        if added:
            caps = ", ".join(sorted(added))[:120]
            found.append(("capabilities", (*path, "securityContext"), f"adds capabilities {caps} to '{name}'"))
    for key, kind in HOST_NAMESPACES:
        if _dig(after, (*shape.pod, key)) is True and _dig(before, (*shape.pod, key)) is not True:
            found.append((kind, (*shape.pod, key), f"sets {key}: the pods share the node's namespace"))
    for name, host in sorted(_host_paths(after, shape) - _host_paths(before, shape)):
        found.append(("host_path", (*shape.pod, "volumes"), f"mounts the node's {host[:80]!r} (volume '{name}')"))
    return found


def check(
    before: dict[str, Any],
    after: dict[str, Any],
    shape: Shape,
    label: str,
    blame: list[tuple[patches.Path, patches.Path]],
    fallback: Path,
    allowed: Iterable[str],
) -> list[Diagnostic]:
    """DYN551 for each way the patches break the component, DYN552 for each posture change not allowed;
    each at the patch (or merge key) that made it."""
    problems: dict[tuple[str, Path, str], Diagnostic] = {}
    for where, what in breaks(before, after, shape):
        at = patches.culprit(where, blame) or fallback
        problems.setdefault(
            ("DYN551", at, what),
            Diagnostic(
                "DYN551",
                f"the patches break the {label} component: {what}",
                path=at,
                hint="fix or remove this patch; patch the fields you need to add, not what dyncc writes",
            ),
        )
    permitted = set(allowed)
    for kind, where, what in posture_changes(before, after, shape):
        if kind in permitted:
            continue
        at = patches.culprit(where, blame) or fallback
        problems.setdefault(
            ("DYN552", at, kind),
            Diagnostic(
                "DYN552",
                f"a patch changes the security posture of the {label} component: it {what}",
                path=at,
                hint=f"remove the patch, or, if this is intended, add `{kind}` to k8s.allow_in_patches",
            ),
        )
    return list(problems.values())
