"""The spec's ``slurm:`` section: settings of the Slurm target only (cheap to import)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from dyncc.spec.model import SpecModel


class SlurmSettings(SpecModel):
    partition: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]+$", max_length=128)
    account: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]+$", max_length=128)
    time: str = Field("04:00:00", pattern=r"^(\d+-)?\d{1,2}(:\d{2}){0,2}$")
    gpu_request: Literal["gres", "gpus-per-node"] = Field(
        "gres", description="How #SBATCH asks for GPUs; some clusters reject --gpus-per-node."
    )
    exclusive: bool = True
    discovery: Literal["file", "etcd"] = Field(
        "file",
        description="file: Dynamo's file discovery on the shared submit directory; etcd: started on the head node.",
    )
    http_port: int = Field(8000, ge=1, le=65535)
    system_port_base: int = Field(
        8081, ge=1, le=65535, description="First worker's system (health) port; one port per worker after it."
    )
    mpi: Literal["pmix", "pmi2", "none"] = "pmix"
    container_mounts: list[Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/-]*(:/[A-Za-z0-9._/-]*)?(:(ro|rw))?$")]] = (
        Field(default_factory=list)
    )
    ready_timeout_s: int = Field(1800, ge=1, le=86_400)
