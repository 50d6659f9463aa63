"""What a target is: the seam between the target-neutral compiler and one way of running a deployment.

A :class:`Target` owns its spec section (a pydantic settings model the spec is composed from), declares
what it can run (:class:`Capability`), checks a plan against its own limits and renders the plan into
files. The compiler knows no target; a target knows the plan and its own settings, nothing of another
target. Declarations are cheap to import (the spec model and ``dyncc schema`` need every target's
settings); a target's implementation module is imported only when it checks or renders.

The seam is typed by the settings model: ``Target(settings_model=K8sSettings, ...)`` is a
``Target[K8sSettings]``, whose ``settings(spec)`` gives a ``K8sSettings`` and whose ``check``/``render`` take
one; each target's ``__init__`` has mypy check its implementation module against
``Implementation[<its settings>]``, and a test checks the same of every registered target.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import msgspec

from dyncc.diagnostics import Diagnostic
from dyncc.spec.model import SpecModel

if TYPE_CHECKING:
    from dyncc.compiler.plan import DeploymentPlan, FileContent, Files


class Capability(enum.Enum):
    """What a target can deploy; a spec that needs one its target lacks is refused with a code."""

    MULTI_NODE = "multi-node"  # workers on several nodes, or one worker spanning nodes
    GPU_TYPES = "GPU type per pool"  # pools on node groups of different GPU types, nodes selected per pool
    PLANNER = "planner"  # runs Dynamo's planner when the spec enables it
    MOCK_ENGINE = "mock engine"  # `worker_runtime: mocker`: Dynamo's mock engine instead of the real one
    BENCHMARK = "benchmark"  # writes the spec's `benchmark:` as a runnable aiperf load test
    FRONTEND_REPLICAS = "frontend replicas"  # runs several frontends (KV routers), which replica sync joins up
    NATS_SERVER = "NATS server"  # every process gets a NATS server (NATS_SERVER) from the platform
    INFRA_NODE = "etcd/NATS node"  # etcd and NATS on a node of their own (infrastructure.node: dedicated)
    LAUNCH_PREFIX = "launch prefix"  # worker processes started under a pool's launch_prefix (numactl ...)
    ENV_TEMPLATES = "per-worker env"  # {worker_index} and {rank} filled into a pool's env values


SettingsT = TypeVar("SettingsT", bound=SpecModel)
SettingsT_contra = TypeVar("SettingsT_contra", bound=SpecModel, contravariant=True)


class Implementation(Protocol[SettingsT_contra]):
    """The module behind a target: its checks and its rendering, both over the plan and the target's settings.
    (Positional parameters: a module may name the settings after its target, ``k8s``.)"""

    def check(self, plan: DeploymentPlan, settings: SettingsT_contra, /) -> list[Diagnostic]: ...

    # A Mapping: a module may say it writes text only (dict[str, str]).
    def render(self, plan: DeploymentPlan, settings: SettingsT_contra, /) -> Mapping[str, FileContent]: ...


class Target(msgspec.Struct, Generic[SettingsT], frozen=True):
    name: str  # -t NAME and the output directory OUT/NAME
    settings_key: str  # the spec section it owns
    settings_model: type[SettingsT]
    capabilities: frozenset[Capability]
    implementation: str  # module path of its check() and render()
    summary: str = ""

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def module(self) -> Implementation[SettingsT]:
        # Imported by name so that declaring a target stays cheap; its __init__ has mypy check the module.
        module: Implementation[SettingsT] = importlib.import_module(self.implementation)
        return module

    def settings(self, spec: Any) -> SettingsT:
        """This target's section of a spec composed by dyncc.deployment (its type is built at run time)."""
        section = getattr(spec, self.settings_key)
        if not isinstance(section, self.settings_model):
            raise TypeError(f"spec.{self.settings_key} is a {type(section).__name__}, not the {self.name} settings")
        return section

    def check(self, plan: DeploymentPlan, settings: SettingsT) -> list[Diagnostic]:
        return self.module().check(plan, settings)

    def render(self, plan: DeploymentPlan, settings: SettingsT) -> Files:
        return dict(self.module().render(plan, settings))


# A target of any settings type: what the registry holds and what target-neutral code takes.
AnyTarget = Target[Any]


class Feature(msgspec.Struct, frozen=True):
    """A spec feature that needs a capability: every target either realizes it or refuses it with a code.

    ``blocking`` refusals stop the target (an error; ``build -t all`` skips it); the others let the target
    build the deployment without the feature, with a warning, because the feature is an add-on to it."""

    name: str
    spec_path: tuple[str, ...]
    capability: Capability
    code: str  # of the refusal
    used: Callable[[DeploymentPlan], bool]
    refusal: Callable[[DeploymentPlan, AnyTarget], Diagnostic]
    blocking: bool = True


def _multi_node_refusal(plan: DeploymentPlan, target: AnyTarget) -> Diagnostic:
    return Diagnostic(
        "DYN501",
        f"the {target.name} target runs one node; this spec places workers on {plan.placement.nodes_used} nodes",
        path=("cluster",),
        hint="shrink the deployment to one node",
    )


def _gpu_types(plan: DeploymentPlan) -> list[str]:
    return sorted({g.gpu_type or "" for g in plan.placement.node_groups})


def _gpu_types_refusal(plan: DeploymentPlan, target: AnyTarget) -> Diagnostic:
    groups = plan.placement.node_groups
    return Diagnostic(
        "DYN570",
        f"the {target.name} target runs every worker on one host, but the pools run on "
        f"{' and '.join(_gpu_types(plan))} ({', '.join(f'{r}: {g.gpu_type}' for g in groups for r in g.roles)})",
        path=("pools", groups[-1].roles[-1], "node_group"),
        hint="put every pool on one GPU type",
    )


def _mock_engine_refusal(plan: DeploymentPlan, target: AnyTarget) -> Diagnostic:
    return Diagnostic(
        "DYN530",
        f"the {target.name} target cannot run {plan.engine.label} (worker_runtime: {plan.worker_runtime})",
        path=("worker_runtime",),
        hint=f"use worker_runtime: {plan.config_engine.name} for this target",
    )


def _planner_refusal(plan: DeploymentPlan, target: AnyTarget) -> Diagnostic:
    # Dynamo 1.6.1's planner scales only through the Kubernetes operator; outside Kubernetes its "virtual"
    # connector merely publishes decisions for another process to carry out, which no target here does.
    return Diagnostic(
        "DYN580",
        f"the {target.name} target cannot run Dynamo's planner: outside Kubernetes the planner only publishes "
        "scaling decisions, and nothing would carry them out",
        path=("planner", "enabled"),
        hint="set planner.enabled: false for this target",
    )


def _benchmark_note(plan: DeploymentPlan, target: AnyTarget) -> Diagnostic:
    return Diagnostic(
        "DYN581",
        f"the {target.name} target does not write the spec's benchmark: (aiperf load test); the deployment "
        "is built without it",
        path=("benchmark",),
        severity="warning",
        hint="remove benchmark:, or run the load test yourself against the frontend",
    )


def _replica_sync_note(plan: DeploymentPlan, target: AnyTarget) -> Diagnostic:
    return Diagnostic(
        "DYN307",
        f"router.replica_sync synchronizes several KV-router (frontend) replicas, but the {target.name} target "
        "runs one frontend: it has no effect there",
        path=("router", "replica_sync"),
        severity="warning",
        hint="remove router.replica_sync",
    )


def _nats_note(plan: DeploymentPlan, target: AnyTarget) -> Diagnostic:
    return Diagnostic(
        "DYN706",
        "request_plane nats: the frontend and every worker send requests through a NATS server (NATS_SERVER), "
        f"and the {target.name} target starts none for Dynamo {plan.dynamo_version} (discovery needs no NATS)",
        path=("request_plane",),
        severity="warning",
        hint="provide NATS_SERVER to every process (pools.<role>.env and the target's frontend env), or keep "
        "Dynamo's default tcp request plane",
    )


def _infra_node_note(plan: DeploymentPlan, target: AnyTarget) -> Diagnostic:
    return Diagnostic(
        "DYN583",
        f"infrastructure.node: dedicated asks for etcd/NATS on a node of their own; the {target.name} target "
        "places them itself (one host, or the platform's), so it is built without that node",
        path=("infrastructure", "node"),
        severity="warning",
        hint="remove infrastructure.node for this target",
    )


def _launch_prefix_refusal(plan: DeploymentPlan, target: AnyTarget) -> Diagnostic:
    pool = next(p for p in plan.pools if p.launch_prefix)
    return Diagnostic(
        "DYN584",
        f"pools.{pool.role}.launch_prefix ({' '.join(pool.launch_prefix)[:80]}) would not be applied: the "
        f"{target.name} target starts worker processes without a prefix",
        path=("pools", pool.role, "launch_prefix"),
        hint="remove launch_prefix for this target (or bind NUMA in the image's entrypoint)",
    )


def templated_env(plan: DeploymentPlan) -> list[tuple[str, str]]:
    """(role, variable) of each pool env value holding a per-worker placeholder."""
    from dyncc.compiler.plan import RANK, WORKER_INDEX

    return [(p.role, k) for p in plan.pools for k, v in p.env if WORKER_INDEX in v or RANK in v]


def _env_templates_refusal(plan: DeploymentPlan, target: AnyTarget) -> Diagnostic:
    role, name = templated_env(plan)[0]
    return Diagnostic(
        "DYN585",
        f"pools.{role}.env.{name} holds {{worker_index}} or {{rank}}, which the {target.name} target does not fill "
        "in: every worker would get the same literal value (a shared-memory name, say, would collide)",
        path=("pools", role, "env", name),
        hint="write one value per pool, or remove the placeholder for this target",
    )


FEATURES: tuple[Feature, ...] = (
    Feature(
        "pools on different GPU types (cluster.node_groups)",
        ("cluster", "node_groups"),
        Capability.GPU_TYPES,
        "DYN570",
        lambda p: len(_gpu_types(p)) > 1,
        _gpu_types_refusal,
    ),
    Feature(
        "workers on several nodes",
        ("cluster", "nodes"),
        Capability.MULTI_NODE,
        "DYN501",
        lambda p: not p.single_node,
        _multi_node_refusal,
    ),
    Feature(
        "Dynamo's mock engine (`worker_runtime: mocker`)",
        ("worker_runtime",),
        Capability.MOCK_ENGINE,
        "DYN530",
        lambda p: p.engine.mock,
        _mock_engine_refusal,
    ),
    Feature(
        "Dynamo's planner (`planner.enabled`)",
        ("planner", "enabled"),
        Capability.PLANNER,
        "DYN580",
        lambda p: p.planner is not None,
        _planner_refusal,
    ),
    Feature(
        "aiperf load test (`benchmark:`)",
        ("benchmark",),
        Capability.BENCHMARK,
        "DYN581",
        lambda p: p.benchmark is not None,
        _benchmark_note,
        blocking=False,
    ),
    Feature(
        "KV-router replica sync (`router.replica_sync`)",
        ("router", "replica_sync"),
        Capability.FRONTEND_REPLICAS,
        "DYN307",
        lambda p: "--router-replica-sync" in p.frontend.flags,
        _replica_sync_note,
        blocking=False,
    ),
    Feature(
        "NATS request plane (`request_plane: nats`)",
        ("request_plane",),
        Capability.NATS_SERVER,
        "DYN706",
        lambda p: p.request_plane == "nats",
        _nats_note,
        blocking=False,
    ),
    Feature(
        "etcd/NATS on a node of their own (`infrastructure.node: dedicated`)",
        ("infrastructure", "node"),
        Capability.INFRA_NODE,
        "DYN583",
        lambda p: p.infra_node == "dedicated",
        _infra_node_note,
        blocking=False,
    ),
    Feature(
        "a launch prefix for worker processes (`pools.<role>.launch_prefix`, NUMA binding)",
        ("pools", "<role>", "launch_prefix"),
        Capability.LAUNCH_PREFIX,
        "DYN584",
        lambda p: any(pool.launch_prefix for pool in p.pools),
        _launch_prefix_refusal,
    ),
    Feature(
        "per-worker env values (`{worker_index}`, `{rank}` in `pools.<role>.env`)",
        ("pools", "<role>", "env"),
        Capability.ENV_TEMPLATES,
        "DYN585",
        lambda p: bool(templated_env(p)),
        _env_templates_refusal,
    ),
)


def needed_capabilities(plan: DeploymentPlan) -> dict[Capability, Callable[[DeploymentPlan, AnyTarget], Diagnostic]]:
    """The capabilities a plan needs, each with the refusal a target lacking it gives."""
    return {f.capability: f.refusal for f in FEATURES if f.blocking and f.used(plan)}


def _with_capable(diagnostic: Diagnostic, capability: Capability, others: Iterable[AnyTarget]) -> Diagnostic:
    capable = [t.name for t in others if t.can(capability)]
    if diagnostic.severity != "error":
        named = f"; targets that realize it: {', '.join(capable)}" if capable else ""
        return msgspec.structs.replace(diagnostic, message=diagnostic.message + named)
    hint = f"build it with -t {' or -t '.join(capable)}" if capable else diagnostic.hint
    if capable and diagnostic.hint:
        hint = f"{hint}, or {diagnostic.hint}"
    return msgspec.structs.replace(diagnostic, hint=hint)


def cannot_run(plan: DeploymentPlan, target: AnyTarget, others: Iterable[AnyTarget]) -> Diagnostic | None:
    """Why ``target`` cannot run ``plan`` (the first capability it lacks, hint naming the targets that can)."""
    for capability, refusal in needed_capabilities(plan).items():
        if not target.can(capability):
            return _with_capable(refusal(plan, target), capability, others)
    return None


def left_out(plan: DeploymentPlan, target: AnyTarget, others: Iterable[AnyTarget]) -> list[Diagnostic]:
    """Warnings for the add-on features ``target`` builds ``plan`` without (naming the targets that write them)."""
    others = list(others)
    return [
        _with_capable(f.refusal(plan, target), f.capability, others)
        for f in FEATURES
        if not f.blocking and f.used(plan) and not target.can(f.capability)
    ]


# What Dynamo's mock engine cannot stand in for, whatever the target (checked by dyncc.engines.mocker).
MOCK_ENGINE_LIMITS: tuple[tuple[str, str, str], ...] = (
    ("an encode pool (EPD)", "DYN503", "the mock engine has no encode mode"),
    ("kvbm.enabled", "DYN582", "the mock engine has no KV block manager connector"),
)


def capability_matrix(targets: Iterable[AnyTarget]) -> str:
    """docs/capabilities.md: which target realizes which feature, and the code of each refusal."""
    targets = sorted(targets, key=lambda t: t.name)
    head = ["| feature | capability | " + " | ".join(t.name for t in targets) + " |"]
    head.append("| --- | --- | " + " | ".join("---" for _ in targets) + " |")
    rows = []
    for f in FEATURES:
        kind = "refused" if f.blocking else "warning"
        cells = ["yes" if t.can(f.capability) else f"{kind} ({f.code})" for t in targets]
        rows.append(f"| {f.name} | {f.capability.value} | " + " | ".join(cells) + " |")
    declared = [f"- **{t.name}**: {', '.join(sorted(c.value for c in t.capabilities)) or 'none'}" for t in targets]
    limits = [f"- {what}: refused with {code} on every target ({why})" for what, code, why in MOCK_ENGINE_LIMITS]
    return "\n".join(
        [
            "# Capability matrix",
            "",
            "<!-- generated from the targets' declared capabilities and dyncc.targets.base.FEATURES;",
            "     regenerate: python3 scripts/gen_docs.py -->",
            "",
            "Every spec feature that needs a capability is either realized by a target or refused there with a",
            "coded error whose hint names the targets that can realize it; `build -t all` skips (and names) the",
            "targets that refuse a spec. An add-on a target cannot realize gets a warning there (the spec still builds).",
            "",
            *head,
            *rows,
            "",
            "Capabilities each target declares:",
            "",
            *declared,
            "",
            "Under Dynamo's mock engine (`worker_runtime: mocker`):",
            "",
            *limits,
            "",
        ]
    )
