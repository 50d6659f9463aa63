"""Local target: one node, one bash launch script, one engine config per pool.

The declaration only; the script is written by :mod:`.impl`, imported when the target checks or renders.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from dyncc.targets.base import Capability, Implementation, Target
from dyncc.targets.local.settings import LocalSettings

if TYPE_CHECKING:  # mypy checks the implementation takes these settings; imported lazily at run time
    from dyncc.targets.local import impl as _impl

    _checked: Implementation[LocalSettings] = _impl

TARGET: Target[LocalSettings] = Target(
    name="local",
    settings_key="local",
    settings_model=LocalSettings,
    capabilities=frozenset({Capability.MOCK_ENGINE, Capability.BENCHMARK}),
    implementation="dyncc.targets.local.impl",
    summary="bash launch script for one machine (dyncc up runs it)",
)


def __getattr__(name: str) -> Any:
    # `from dyncc.targets.local import worker_command` keeps working without importing the renderer eagerly.
    # A submodule (`from dyncc.targets.local import cache`) is imported as itself: asking the implementation
    # for it would import the implementation first, and circle back through that submodule.
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    return getattr(importlib.import_module(TARGET.implementation), name)
