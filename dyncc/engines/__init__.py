"""Engines turn a pool of the compiled deployment into the worker program it runs.

An engine is a package here whose ``ENGINE`` declares an :class:`~dyncc.engines.base.Engine`: the spec's
``worker_runtime`` name for it, its module, image and readiness facts, and the module that writes its
command lines, resolves and checks its config. Registering one is one line in :data:`REGISTERED` (a tuple
in the source, as for targets: read without scanning installed metadata, reviewed with dyncc).
"""

from __future__ import annotations

import functools
import importlib

from dyncc.engines.base import Engine

REGISTERED: tuple[str, ...] = (
    "dyncc.engines.trtllm",
    "dyncc.engines.mocker",
)

__all__ = ["REGISTERED", "Engine", "configuring", "engine", "engine_names", "engines"]


@functools.lru_cache(maxsize=1)
def engines() -> tuple[Engine, ...]:
    """Every registered engine, in registration order."""
    return tuple(importlib.import_module(module).ENGINE for module in REGISTERED)


def engine_names() -> tuple[str, ...]:
    return tuple(e.name for e in engines())


def engine(name: str) -> Engine:
    """The engine the spec's ``worker_runtime`` names."""
    for candidate in engines():
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def configuring(runtime: Engine) -> Engine:
    """The engine whose config the workers' spec section resolves to: the runtime's own, or, for one that
    stands in for another (the mock engine), the first registered engine that reads the section."""
    if runtime.configures:
        return runtime
    return next(e for e in engines() if e.configures)
