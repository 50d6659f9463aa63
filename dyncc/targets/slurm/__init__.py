"""Slurm target: one sbatch job whose srun steps start the frontend and every worker replica.

The declaration only; the job script is written by :mod:`.impl`.
"""

from __future__ import annotations

import importlib
from typing import Any

from dyncc.targets.base import Capability, Target
from dyncc.targets.slurm.settings import SlurmSettings

TARGET = Target(
    name="slurm",
    settings_key="slurm",
    settings_model=SlurmSettings,
    capabilities=frozenset(
        {
            Capability.MULTI_NODE,
            Capability.GPU_TYPES,
            Capability.MOCK_ENGINE,
            Capability.BENCHMARK,
            # The job starts NATS itself (on the head or the dedicated node) when the request plane needs it.
            Capability.NATS_SERVER,
            Capability.INFRA_NODE,
            Capability.LAUNCH_PREFIX,
            Capability.ENV_TEMPLATES,
        }
    ),
    implementation="dyncc.targets.slurm.impl",
    summary="one sbatch job: frontend and every worker as srun steps",
)


def __getattr__(name: str) -> Any:
    return getattr(importlib.import_module(TARGET.implementation), name)
