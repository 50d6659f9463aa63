"""The GPUs AIConfigurator has performance data for, by its system name: a fact the compiler checks a timed
spec against (DYN913) and the AIConfigurator adaptor (:mod:`dyncc.aic`) maps pools with."""

from __future__ import annotations

# AIConfigurator system -> (dyncc cluster.gpu_type, GPUs per node). GB200/GB300 are 4-GPU NVL trays:
# dyncc's k8s target gives their multi-node workers an NVLink ComputeDomain from gpu_type.
SYSTEMS: dict[str, tuple[str, int]] = {
    "a100_sxm": ("A100", 8),
    "h100_sxm": ("H100", 8),
    "h200_sxm": ("H200", 8),
    "b200_sxm": ("B200", 8),
    "b300_sxm": ("B300", 8),
    "gb200": ("GB200", 4),
    "gb300": ("GB300", 4),
    "l40s": ("L40S", 8),
    "rtx_pro_6000_server": ("RTX-PRO-6000", 8),
}


def system_for_gpu_type(gpu_type: str) -> str | None:
    """The AIConfigurator system for a spec's ``cluster.gpu_type`` (``H200``, ``h200``, ``h200_sxm``)."""
    word = gpu_type.strip().lower()
    if word in SYSTEMS:
        return word
    for system, (name, _) in SYSTEMS.items():
        if name.lower() == word:
            return system
    return None
