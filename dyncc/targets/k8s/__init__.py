"""Kubernetes target: a DynamoGraphDeployment for the Dynamo operator, plus the objects it mounts.

The declaration only; the manifests are written by :mod:`.impl`.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from dyncc.targets.base import Capability, Implementation, Target
from dyncc.targets.k8s.settings import K8sSettings

if TYPE_CHECKING:  # mypy checks the implementation takes these settings; imported lazily at run time
    from dyncc.targets.k8s import impl as _impl

    _checked: Implementation[K8sSettings] = _impl

TARGET: Target[K8sSettings] = Target(
    name="k8s",
    settings_key="k8s",
    settings_model=K8sSettings,
    capabilities=frozenset(
        {
            Capability.MULTI_NODE,
            Capability.GPU_TYPES,
            Capability.PLANNER,
            Capability.BENCHMARK,
            Capability.FRONTEND_REPLICAS,
            # Dynamo's platform chart installs NATS and the operator sets NATS_SERVER in every pod.
            Capability.NATS_SERVER,
        }
    ),
    implementation="dyncc.targets.k8s.impl",
    summary="DynamoGraphDeployment and the objects it mounts, for the Dynamo operator",
)


def __getattr__(name: str) -> Any:
    # A submodule (`from dyncc.targets.k8s import cache`) is imported as itself: asking the implementation
    # for it would import the implementation first, and circle back through that submodule.
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    return getattr(importlib.import_module(TARGET.implementation), name)
