"""Docker compose target: one GPU server with Docker and the NVIDIA Container Toolkit.

The declaration only; the compose file is written by :mod:`.impl`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dyncc.targets.base import Implementation, Target
from dyncc.targets.compose.settings import ComposeSettings

if TYPE_CHECKING:  # mypy checks the implementation takes these settings; imported lazily at run time
    from dyncc.targets.compose import impl as _impl

    _checked: Implementation[ComposeSettings] = _impl

TARGET: Target[ComposeSettings] = Target(
    name="compose",
    settings_key="compose",
    settings_model=ComposeSettings,
    capabilities=frozenset(),  # one server, workers in containers only: no planner, mock engine or load test
    implementation="dyncc.targets.compose.impl",
    summary="docker compose file for one GPU server (NVIDIA Container Toolkit)",
)
