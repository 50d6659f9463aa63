"""Where a derived value came from: the user's spec path, a default (with its reason), or a rule."""

from __future__ import annotations

from typing import Literal

import msgspec

SourceKind = Literal["user", "default", "rule"]


class Provenance(msgspec.Struct, frozen=True):
    kind: SourceKind
    detail: str  # spec path for "user", reason for "default", rule code for "rule"
    path: tuple = ()  # spec path of the value, for file:line

    def describe(self) -> str:
        return {"user": "set in spec", "default": "default", "rule": "rule"}[self.kind] + f": {self.detail}"
