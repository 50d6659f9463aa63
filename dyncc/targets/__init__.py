"""Targets turn a :class:`~dyncc.compiler.plan.DeploymentPlan` into files.

A target is a subpackage here exposing ``NAME``, ``MULTI_NODE`` (can it run a worker or a
deployment that spans nodes) and ``render(plan) -> {relative path: text}``. Targets are found by
listing this package, and imported only when used, so adding one touches no other.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from types import ModuleType


@functools.lru_cache(maxsize=1)
def target_names() -> tuple[str, ...]:
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg))


def load_target(name: str) -> ModuleType:
    if name not in target_names():
        raise KeyError(name)
    return importlib.import_module(f"{__name__}.{name}")
