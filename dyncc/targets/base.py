"""What a target is: the seam between the target-neutral compiler and one way of running a deployment.

A :class:`Target` owns its spec section (a pydantic settings model the spec is composed from), declares
what it can run (:class:`Capability`), checks a plan against its own limits and renders the plan into
files. The compiler knows no target; a target knows the plan and its own settings, nothing of another
target. Declarations are cheap to import (the spec model and ``dyncc schema`` need every target's
settings); a target's implementation module is imported only when it checks or renders.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from dyncc.diagnostics import Diagnostic
from dyncc.spec.model import SpecModel

if TYPE_CHECKING:
    from dyncc.compiler.plan import DeploymentPlan


class Capability(enum.Enum):
    """What a target can deploy; a spec that needs one its target lacks is refused with a code."""

    MULTI_NODE = "multi-node"  # workers on several nodes, or one worker spanning nodes
    PLANNER = "planner"  # runs Dynamo's planner when the spec enables it
    MOCK_ENGINE = "mock engine"  # `worker_runtime: mocker`: Dynamo's mock engine instead of TensorRT-LLM
    BENCHMARK = "benchmark"  # writes the spec's `benchmark:` as a runnable aiperf load test


class Implementation(Protocol):
    """The module behind a target: its checks and its rendering, both over the plan and the target's settings."""

    def check(self, plan: DeploymentPlan, settings: Any) -> list[Diagnostic]: ...

    def render(self, plan: DeploymentPlan, settings: Any) -> dict[str, str]: ...


@dataclasses.dataclass(frozen=True)
class Target:
    name: str  # -t NAME and the output directory OUT/NAME
    settings_key: str  # the spec section it owns
    settings_model: type[SpecModel]
    capabilities: frozenset[Capability]
    implementation: str  # module path of its check() and render()
    summary: str = ""

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def module(self) -> Implementation:
        module: Implementation = importlib.import_module(self.implementation)
        return module

    def settings(self, spec: Any) -> Any:
        """This target's section of a (composed) spec."""
        return getattr(spec, self.settings_key)

    def check(self, plan: DeploymentPlan, settings: Any) -> list[Diagnostic]:
        return self.module().check(plan, settings)

    def render(self, plan: DeploymentPlan, settings: Any) -> dict[str, str]:
        return self.module().render(plan, settings)


def needed_capabilities(plan: DeploymentPlan) -> dict[Capability, Callable[[DeploymentPlan, Target], Diagnostic]]:
    """The capabilities a plan needs, each with the refusal a target lacking it gives."""
    needed: dict[Capability, Callable[[DeploymentPlan, Target], Diagnostic]] = {}
    if not plan.single_node:
        needed[Capability.MULTI_NODE] = _multi_node_refusal
    if plan.worker_runtime == "mocker":
        needed[Capability.MOCK_ENGINE] = _mock_engine_refusal
    return needed


def cannot_run(plan: DeploymentPlan, target: Target, others: Iterable[Target]) -> Diagnostic | None:
    """Why ``target`` cannot run ``plan`` (the first capability it lacks, hint naming the targets that can)."""
    for capability, refusal in needed_capabilities(plan).items():
        if not target.can(capability):
            diagnostic = refusal(plan, target)
            capable = [t.name for t in others if t.can(capability)]
            hint = f"build it with -t {' or -t '.join(capable)}" if capable else diagnostic.hint
            return dataclasses.replace(diagnostic, hint=hint)
    return None


def _multi_node_refusal(plan: DeploymentPlan, target: Target) -> Diagnostic:
    return Diagnostic(
        "DYN501",
        f"the {target.name} target runs one node; this spec places workers on {plan.placement.nodes_used} nodes",
        path=("cluster",),
        hint="shrink the deployment to one node",
    )


def _mock_engine_refusal(plan: DeploymentPlan, target: Target) -> Diagnostic:
    return Diagnostic(
        "DYN530",
        f"the {target.name} target cannot run Dynamo's mock engine (worker_runtime: mocker)",
        path=("worker_runtime",),
        hint="use worker_runtime: trtllm for this target",
    )
