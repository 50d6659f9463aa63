"""Docker compose target: one GPU server with Docker and the NVIDIA Container Toolkit.

The declaration only; the compose file is written by :mod:`.impl`.
"""

from __future__ import annotations

from dyncc.targets.base import Target
from dyncc.targets.compose.settings import ComposeSettings

TARGET = Target(
    name="compose",
    settings_key="compose",
    settings_model=ComposeSettings,
    capabilities=frozenset(),  # one server, workers in containers only: no planner, mock engine or load test
    implementation="dyncc.targets.compose.impl",
    summary="docker compose file for one GPU server (NVIDIA Container Toolkit)",
)
