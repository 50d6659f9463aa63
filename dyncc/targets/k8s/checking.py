"""The generated DGD with the spec's ``patches`` and ``merge`` applied (both API versions), then checked:
bounded patching (DYN550), the patch policy (DYN551, DYN552), the CRD schema (DYN540, DYN546) and the API
server's annotation limits (DYN553, DYN554). Every problem is located at the patch or setting that made it.
"""

from __future__ import annotations

import copy
from typing import Any

from dyncc.diagnostics import Diagnostic
from dyncc.targets.k8s import crd_schema, limits, patches, pods, policy
from dyncc.targets.k8s.settings import ComponentSettings, K8sSettings

Section = tuple[str, ...]
Blames = dict[int | str, list[tuple[patches.Path, patches.Path]]]


def section_settings(k8s: K8sSettings, section: Section) -> ComponentSettings | None:
    if section == ("frontend",):
        return k8s.frontend
    if section[0] == "pools":
        own: ComponentSettings | None = getattr(k8s.pools, section[1])
        return own
    return None


def _components(dgd: dict[str, Any]) -> tuple[dict[Any, Any] | list[Any], list[int | str], bool]:
    """(the collection holding the components, their keys in order, whether it is the v1alpha1 shape)."""
    spec = dgd["spec"]
    if "services" in spec:
        return spec["services"], list(spec["services"]), True
    return spec["components"], list(range(len(spec["components"]))), False


def patched_and_checked(dgd: dict[str, Any], sections: list[Section], k8s: K8sSettings) -> list[Diagnostic]:
    """Apply each section's patches to its component of ``dgd`` (in place), then check the result."""
    collection, keys, alpha = _components(dgd)
    shape = policy.V1ALPHA1 if alpha else policy.V1BETA1
    problems: list[Diagnostic] = []
    blames: Blames = {}
    for key, section in zip(keys, sections):
        own = section_settings(k8s, section)
        if own is None or not (own.patches or own.merge):
            continue
        before: dict[str, Any] = collection[key]  # type: ignore[index]
        label = str(key) if alpha else str(before.get("name"))
        patched, blame, failed = patches.apply(copy.deepcopy(before), own, section, label)
        collection[key] = patched  # type: ignore[index]
        blames[key] = blame
        problems += failed
        if any(d.code == "DYN550" for d in failed):
            continue
        fallback = ("k8s", *section, "patches" if own.patches else "merge")
        problems += policy.check(before, patched, shape, label, blame, fallback, k8s.allow_in_patches)
    if any(d.code == "DYN550" for d in problems):
        return problems  # a component past the bounds is not walked again
    problems += _schema_problems(dgd, k8s, dict(zip(keys, sections)), blames, alpha)
    annotations = ("extraPodMetadata", "annotations") if alpha else ("podTemplate", "metadata", "annotations")
    where = {key: _annotations_path(k8s, sec, blames.get(key, []), annotations) for key, sec in zip(keys, sections)}
    problems += limits.annotation_problems(dgd, where)
    too_large_to_apply = limits.client_apply_problem(dgd)
    return problems + ([too_large_to_apply] if too_large_to_apply else [])


def _annotations_path(
    k8s: K8sSettings, section: Section, blame: list[tuple[patches.Path, patches.Path]], inner: patches.Path
) -> patches.Path:
    culprit = patches.culprit(inner, blame)
    if culprit is not None:
        return culprit
    if section == ("planner",):
        return ("k8s", "defaults", "annotations")
    return pods.where_set(k8s.defaults, section_settings(k8s, section), "annotations", section)


def _as_v1beta1(inner: tuple[Any, ...]) -> tuple[Any, ...]:
    """A path in a v1alpha1 service, spelled as in a v1beta1 component (where :data:`pods.SETTING_OF` looks)."""
    if inner[:2] == ("extraPodSpec", "mainContainer"):
        return ("podTemplate", "spec", "containers", 0, *inner[2:])
    if inner[:1] == ("extraPodSpec",):
        return ("podTemplate", "spec", *inner[1:])
    if inner[:1] == ("extraPodMetadata",):
        return ("podTemplate", "metadata", *inner[1:])
    if inner[:1] == ("sharedMemory",):
        return ("sharedMemorySize", *inner[1:])
    return inner


def _schema_problems(
    dgd: dict[str, Any], k8s: K8sSettings, sections: dict[int | str, Section], blames: Blames, alpha: bool
) -> list[Diagnostic]:
    """One diagnostic per CRD-schema error, at the patch or setting that wrote the field (a default that
    breaks every component is reported once)."""
    problems: dict[tuple[Any, ...], Diagnostic] = {}
    collection = ("spec", "services" if alpha else "components")
    for path, message in crd_schema.errors(dgd):
        where = "/".join(map(str, path))
        spec_path: tuple[str | int, ...] = ("k8s",)
        code, hint = "DYN546", "this setting does not fit the CRD field it is written to; see the message"
        key: tuple[Any, ...] = (spec_path, path)
        if len(path) > 3 and path[:2] == collection and path[2] in sections:
            component, inner = path[2], path[3:]
            name = component if alpha else dgd["spec"]["components"][component].get("name")
            where = f"component '{name}', {'/'.join(map(str, inner))}"
            culprit = patches.culprit(inner, blames.get(component, []))
            if culprit is not None:
                spec_path = culprit
                code, hint = "DYN540", "fix or remove this patch: the DGD it produces breaks the CRD's schema"
            else:
                spec_path = _setting_path(k8s, sections[component], _as_v1beta1(inner) if alpha else inner)
            key = (spec_path, inner, message) if spec_path[:2] == ("k8s", "defaults") else (spec_path, path)
        problems.setdefault(
            key,
            Diagnostic(
                code, f"the DynamoGraphDeployment would not pass the CRD schema at {where}: {message}", spec_path, hint
            ),
        )
    return list(problems.values())


def _setting_path(k8s: K8sSettings, section: Section, inner: tuple[Any, ...]) -> tuple[str | int, ...]:
    for prefix, field in pods.SETTING_OF.items():
        if inner[: len(prefix)] == prefix:
            own = section_settings(k8s, section)
            return pods.where_set(k8s.defaults, own, field, section)
    return ("k8s", *section) if section != ("planner",) else ("k8s",)
