"""What every section of the spec shares: the strict base model, and the string patterns for what ends up in
shell scripts, manifests and file names."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# Strings that end up in shell scripts, manifests and file names. Anything outside these patterns is
# rejected at load time; what passes is still quoted by every target.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
NoControlChars = Annotated[str, Field(min_length=1, pattern=r"^[^\x00-\x1f\x7f]+$")]

# One word of a pool's launch prefix (a program and its arguments, each passed as one argv word).
LaunchWord = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]


class SpecModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=False)
