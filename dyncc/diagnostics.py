"""Diagnostics: the one shape every problem dyncc reports takes.

A diagnostic names a stable code (``DYN104``), the YAML path of the value at fault, where that value
sits in the file, and what to do instead. Loading, rules and targets all speak this type, so the CLI
can print any of them the same way, as text for people or JSON for CI.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

Severity = Literal["error", "warning", "info"]

YamlPath = tuple[str | int, ...]


def format_yaml_path(path: YamlPath) -> str:
    """``("pools", "prefill", "replicas")`` -> ``pools.prefill.replicas``; list items as ``[i]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "<document>"


@dataclasses.dataclass(frozen=True)
class Location:
    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclasses.dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    path: YamlPath = ()
    hint: str | None = None
    severity: Severity = "error"
    location: Location | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def located(self, location: Location | None) -> Diagnostic:
        return dataclasses.replace(self, location=location)

    def to_json(self) -> dict:
        loc = self.location
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "path": format_yaml_path(self.path),
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
            "hint": self.hint,
        }

    def render(self, source_line: str | None = None) -> str:
        """Compiler-style text; with the offending source line, a caret marks the value."""
        where = f"{self.location}: " if self.location else ""
        text = f"{where}{self.severity} {self.code}: {self.message}"
        if source_line is not None and self.location is not None:
            gutter = str(self.location.line)
            col = self.location.column - 1
            text += (
                f"\n {gutter} | {source_line}\n {' ' * len(gutter)} | {' ' * col}{'^' * _token_width(source_line, col)}"
            )
        text += f"\n    at {format_yaml_path(self.path)}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


def _token_width(line: str, col: int) -> int:
    """Width of the YAML token starting at ``col``: a quoted string, or up to the next separator."""
    rest = line[col:]
    if rest[:1] in ("'", '"'):
        end = rest.find(rest[0], 1)
        return end + 1 if end > 0 else len(rest)
    width = 0
    for ch in rest:
        if ch in " :,#]}\t" and width:
            break
        width += 1
    return max(width, 1)


class DiagnosticError(Exception):
    """Raised when a step cannot go on; carries every diagnostic found so far."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("; ".join(f"{d.code}: {d.message}" for d in self.diagnostics))


def has_errors(diagnostics: Sequence[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)
