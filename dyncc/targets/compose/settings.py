"""The spec's ``compose:`` section: settings of the docker compose target only (cheap to import)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dyncc.spec.model import SectionModel

IMAGE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$"


class ComposeSettings(SectionModel):
    """The compose target: one docker compose file for one GPU server."""

    http_host: Literal["127.0.0.1", "0.0.0.0", "::1", "::"] = Field(
        "127.0.0.1", description="Host address the frontend's port is published on (0.0.0.0: every interface)."
    )
    http_port: int = Field(8000, ge=1, le=65535, description="Host port the frontend is published on.")
    system_port: int = Field(
        8081, ge=1, le=32767, description="Each worker's system (health) port inside its own container."
    )
    restart: Literal["no", "on-failure", "unless-stopped", "always"] = Field(
        "on-failure", description="Restart policy of the frontend and workers."
    )
    hf_cache: str = Field(
        "hf-cache",
        pattern=r"^([a-z0-9][a-z0-9_.-]*|/[A-Za-z0-9._/-]*)$",
        max_length=4096,
        description="Hugging Face cache: a named volume, or an absolute host directory (mounted as HF_HOME).",
    )
    etcd_image: str = Field(
        "quay.io/coreos/etcd:v3.5.21", pattern=IMAGE_PATTERN, max_length=512, description="Image of the etcd service."
    )
    nats_image: str = Field(
        "nats:2.11", pattern=IMAGE_PATTERN, max_length=512, description="Image of the NATS service."
    )
    ready_timeout_s: int = Field(
        900, ge=1, le=86_400, description="Grace period of the workers' healthchecks (model download and load)."
    )
