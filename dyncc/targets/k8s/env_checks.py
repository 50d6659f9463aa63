"""Env of the k8s target's pods, checked before anything is written: what the Dynamo operator sets itself
(DYN548, DYN555, DYN556), and literal secrets in ``k8s.*.env``, ``patches`` and ``merge`` (DYN113, the
same check the spec's ``pools.<role>.env`` gets: a secret is passed by reference, never written)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dyncc.compiler.plan import DeploymentPlan
from dyncc.compiler.rules.values import secret_finding, secret_shape
from dyncc.diagnostics import Diagnostic
from dyncc.targets.k8s import pods
from dyncc.targets.k8s.settings import ComponentSettings, K8sSettings

SpecPath = tuple[str | int, ...]
Sections = list[tuple[tuple[str, ...], ComponentSettings | None]]
# The discovery backend the operator sets by default (its Helm value `discoveryBackend`, else `etcd`).
OPERATOR_DISCOVERY = "kubernetes"
# Other values Dynamo accepts, and what each needs on Kubernetes to work at all.
DISCOVERY_NEEDS = {
    "etcd": "an etcd server the operator is configured with (it then sets ETCD_ENDPOINTS in every pod); with "
    "its default Kubernetes discovery the pods would wait for an etcd that is not there",
    "file": "DYN_FILE_KV naming a directory on a volume every pod mounts (ReadWriteMany); on each pod's own "
    "file system the frontend would never see the workers",
}
DISCOVERY_BACKENDS = ("kubernetes", "etcd", "file", "mem")


def _spec_env(plan: DeploymentPlan, k8s: K8sSettings, sections: Sections) -> Iterator[tuple[str, Any, SpecPath]]:
    """(name, value, spec path) of every env variable the spec gives the k8s pods."""
    for pool in plan.pools:
        for name, pool_value in pool.env:
            yield name, pool_value, ("pools", pool.role, "env", name)
    for name, value in k8s.defaults.env.items():
        yield name, value, ("k8s", "defaults", "env", name)
    for section, own in sections:
        if own is not None:
            for name, own_value in own.env.items():
                yield name, own_value, ("k8s", *section, "env", name)


def operator_env_problems(plan: DeploymentPlan, k8s: K8sSettings, sections: Sections) -> list[Diagnostic]:
    """Env the operator sets per deployment (DYN_NAMESPACE...) must not be overridden from the spec: a fixed
    DYN_NAMESPACE would put every deployment of a Kubernetes namespace into one Dynamo namespace. The
    discovery backend is judged by its value: the operator's own is a note, one that needs more of the
    cluster a warning, one that cannot work across pods an error."""
    problems = []
    for name, value, path in _spec_env(plan, k8s, sections):
        if name not in pods.OPERATOR_ENV:
            continue
        if name == "DYN_DISCOVERY_BACKEND" and isinstance(value, str):
            problems.append(_discovery_problem(value, path))
            continue
        problems.append(
            Diagnostic(
                "DYN548",
                f"{name} is set by the Dynamo operator in every pod (per deployment); on k8s a spec value would "
                "override it",
                path=path,
                hint="remove it; the operator derives DYN_NAMESPACE as <k8s-namespace>-<deployment name>",
            )
        )
    return problems


def _discovery_problem(value: str, path: SpecPath) -> Diagnostic:
    if value == OPERATOR_DISCOVERY:
        return Diagnostic(
            "DYN555",
            f"DYN_DISCOVERY_BACKEND={value} is what the Dynamo operator sets in every pod: it changes nothing on k8s",
            path=path,
            severity="info",
            hint="remove it from the k8s settings, or keep it to state the backend explicitly",
        )
    if value in DISCOVERY_NEEDS:
        return Diagnostic(
            "DYN556",
            f"DYN_DISCOVERY_BACKEND={value} overrides the operator's Kubernetes discovery; it needs "
            f"{DISCOVERY_NEEDS[value]}",
            path=path,
            severity="warning",
            hint="remove it to use the operator's discovery, unless the cluster provides what it needs",
        )
    why = (
        "`mem` discovery is per process: the frontend would never see a worker in another pod"
        if value == "mem"
        else f"Dynamo accepts only {', '.join(DISCOVERY_BACKENDS)}: every process would exit at start-up"
    )
    return Diagnostic(
        "DYN548",
        f"DYN_DISCOVERY_BACKEND={value[:40]!r} overrides the operator's discovery, and {why}",
        path=path,
        hint="remove it: the operator sets the discovery backend of every pod",
    )


def _secret(name: str | None, value: str) -> str | None:
    """Why ``value`` (under env name ``name``, if any) looks like a secret, or None: the spec's own check."""
    if name is not None:
        return secret_finding(name, value)
    shape = secret_shape(value)
    return f"its value looks like {shape}" if shape else None


def _literal_values(node: Any, path: SpecPath) -> Iterator[tuple[str | None, str, SpecPath]]:
    """(env name or None, string, spec path) of every string in a patch value or merge: an env entry
    (`{name, value}`) is judged by its name too."""
    stack: list[tuple[Any, SpecPath]] = [(node, path)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("name"), str) and isinstance(item.get("value"), str):
                yield item["name"], item["value"], (*at, "value")
            stack.extend((v, (*at, k)) for k, v in item.items() if not (k == "value" and "name" in item))
        elif isinstance(item, list):
            stack.extend((v, (*at, i)) for i, v in enumerate(item))
        elif isinstance(item, str):
            yield None, item, at


def secret_problems(plan: DeploymentPlan, k8s: K8sSettings, sections: Sections) -> list[Diagnostic]:
    """DYN113 for a literal secret in the k8s pods' env, patches or merge: it would be written in plaintext
    into the DGD (the spec's own pools.<role>.env is checked by the rule)."""
    found: list[tuple[str, SpecPath, str]] = []
    k8s_env = [(n, v, p) for n, v, p in _spec_env(plan, k8s, sections) if p[0] == "k8s" and isinstance(v, str)]
    for name, value, path in k8s_env:
        why = _secret(name, value)
        if why:
            found.append((f"env {name}", path, why))
    for section, own in sections:
        if own is None:
            continue
        hatch: list[tuple[Any, SpecPath]] = [(own.merge, ("k8s", *section, "merge"))]
        hatch += [(op.value, ("k8s", *section, "patches", i, "value")) for i, op in enumerate(own.patches)]
        for node, base in hatch:
            for env_name, text, path in _literal_values(node, base):
                why = _secret(env_name, text)
                if why:
                    found.append((f"env {env_name}" if env_name else "a value", path, why))
    return [
        Diagnostic(
            "DYN113",
            f"{what} looks like a secret ({why}); it would be written in plaintext into dynamographdeployment.yaml",
            path=path,
            hint="pass it by reference: k8s.<component>.env.<NAME>: {secret: <Secret>, key: <key>}, env_from, "
            "or k8s.hf_token_secret",
        )
        for what, path, why in found
    ]
