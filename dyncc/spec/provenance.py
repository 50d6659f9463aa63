"""Where a derived value came from: the user's spec path, a default (with its reason), or a rule."""

from __future__ import annotations

import dataclasses
from typing import Literal

SourceKind = Literal["user", "default", "rule"]


@dataclasses.dataclass(frozen=True)
class Provenance:
    kind: SourceKind
    detail: str  # spec path for "user", reason for "default", rule code for "rule"
    path: tuple = ()  # spec path of the value, for file:line

    def describe(self) -> str:
        return {"user": "set in spec", "default": "default", "rule": "rule"}[self.kind] + f": {self.detail}"
