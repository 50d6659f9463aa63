"""Targets turn a :class:`~dyncc.compiler.plan.DeploymentPlan` into files.

A target is a package here whose ``TARGET`` declares a :class:`~dyncc.targets.base.Target`: its spec
section and settings model, its capabilities, and the module that checks and renders. Registering one
is one line in :data:`REGISTERED`. A tuple in the source rather than ``[project.entry-points]``: it works
from a source checkout without reinstalling (entry points live in installed metadata, stale until
``pip install`` runs again), it is read without importlib.metadata's scan of every installed
distribution, and the set of targets is part of dyncc, reviewed with it — not a plugin point.
"""

from __future__ import annotations

import functools
import importlib

from dyncc.targets.base import AnyTarget, Capability, Target

REGISTERED: tuple[str, ...] = (
    "dyncc.targets.local",
    "dyncc.targets.k8s",
    "dyncc.targets.slurm",
    "dyncc.targets.compose",
)

__all__ = ["AnyTarget", "Capability", "REGISTERED", "Target", "load_target", "target_names", "targets"]


@functools.lru_cache(maxsize=1)
def targets() -> tuple[AnyTarget, ...]:
    """Every registered target, by name."""
    declared = [importlib.import_module(module).TARGET for module in REGISTERED]
    return tuple(sorted(declared, key=lambda t: t.name))


def target_names() -> tuple[str, ...]:
    return tuple(t.name for t in targets())


def load_target(name: str) -> AnyTarget:
    for target in targets():
        if target.name == name:
            return target
    raise KeyError(name)
