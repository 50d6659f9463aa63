"""The spec's ``local:`` section: settings of the local target only (cheap to import: the spec model is
composed from every registered target's settings)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dyncc.spec.model import SpecModel


class LocalSettings(SpecModel):
    http_host: Literal["127.0.0.1", "0.0.0.0", "localhost", "::1"] = "127.0.0.1"
    http_port: int = Field(8000, ge=1, le=65535)
    system_port_base: int = Field(8081, ge=1, le=65535)
    ready_timeout_s: int = Field(900, ge=1, le=86_400)
