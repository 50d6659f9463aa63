"""Slurm target: one sbatch job whose srun steps start the frontend and every worker replica.

The declaration only; the job script is written by :mod:`.impl`.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from dyncc.targets.base import Capability, Implementation, Target
from dyncc.targets.slurm.settings import SlurmSettings

if TYPE_CHECKING:  # mypy checks the implementation takes these settings; imported lazily at run time
    from dyncc.targets.slurm import impl as _impl

    _checked: Implementation[SlurmSettings] = _impl

TARGET: Target[SlurmSettings] = Target(
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
    # A submodule (`from dyncc.targets.slurm import cache`) is imported as itself: asking the implementation
    # for it would import the implementation first, and circle back through that submodule.
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    return getattr(importlib.import_module(TARGET.implementation), name)
