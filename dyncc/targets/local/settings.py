"""The spec's ``local:`` section: settings of the local target only (cheap to import: the spec model is
composed from every registered target's settings)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dyncc.spec.model import SectionModel


class LocalSettings(SectionModel):
    """The local target: a bash launch script running the frontend and every worker on this machine."""

    http_host: Literal["127.0.0.1", "0.0.0.0", "localhost", "::1"] = Field(
        "127.0.0.1", description="Address the frontend listens on (0.0.0.0: every interface; workers stay on loopback)."
    )
    http_port: int = Field(
        8000,
        ge=1,
        le=65535,
        description="Frontend HTTP port: no worker's system port (DYN402), free when `dyncc up` starts (DYN521, DYN523).",
    )
    system_port_base: int = Field(
        8081,
        ge=1,
        le=65535,
        description="First worker's system (health) port; one port per worker after it, within Dynamo's range (DYN402).",
    )
    ready_timeout_s: int = Field(
        900,
        ge=1,
        le=86_400,
        description="Seconds the launch script waits for readiness (DYNCC_READY_TIMEOUT overrides it).",
    )
