"""Diagnostics: the one shape every problem dyncc reports takes.

A diagnostic names a stable code (``DYN104``), the YAML path of the value at fault, where that value
sits in the file, and what to do instead. Loading, rules and targets all speak this type, so the CLI
can print any of them the same way, as text for people or JSON for CI.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Literal

import msgspec

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


# Characters that act on a terminal instead of showing: C0/C1 controls (ESC starts colour, title and
# clear-screen sequences; CR overwrites the line) and the invisible format characters (bidi overrides,
# zero-width ones). Newline and tab lay text out and stay.
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` safe to print to a terminal: control and invisible characters shown as ``\\x1b``/``\\u202e``."""
    return _CONTROL.sub(_escape, text)


class Location(msgspec.Struct, frozen=True):
    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


# With DYNCC_CHECK_CODES=1 (tests/conftest.py sets it, for the tests and every dyncc process they start) each
# diagnostic is checked against the code registry (dyncc/codes.yaml) as it is made, and by
# msgspec.structs.replace: an unregistered code, or a severity its entry does not list, raises at once. Without
# it the class has no __post_init__ at all, so users pay nothing, not even the registry's load.
CHECK_CODES = os.environ.get("DYNCC_CHECK_CODES") == "1"

# The code of a rule's finding before the rule's decorator stamps its own on it (the stamp is checked).
UNSTAMPED = ""


class UnregisteredCode(AssertionError):
    """A diagnostic raised with a code dyncc/codes.yaml does not register, or at a severity it does not list."""


def check_registered(code: str, severity: str) -> None:
    """Raise :class:`UnregisteredCode` unless ``code`` is registered at ``severity``."""
    from dyncc.codes import registry

    if code == UNSTAMPED:
        return
    info = registry().get(code)
    if info is None:
        raise UnregisteredCode(f"{code!r} is not registered in dyncc/codes.yaml")
    if severity not in info.severities:
        raise UnregisteredCode(
            f"{code} is registered as {' or '.join(info.severities)} in dyncc/codes.yaml, raised as {severity}"
        )


class Diagnostic(msgspec.Struct, frozen=True):
    code: str
    message: str
    path: YamlPath = ()
    hint: str | None = None
    severity: Severity = "error"
    location: Location | None = None
    # About the key at ``path`` (one that should not be there), not its value: located at the key, where
    # the caret of an unknown spec key (DYN010) is.
    about_key: bool = False

    if CHECK_CODES:

        def __post_init__(self) -> None:
            check_registered(self.code, self.severity)

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def located(self, location: Location | None) -> Diagnostic:
        return msgspec.structs.replace(self, location=location)

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
        """Compiler-style text; with the offending source line, a caret marks the value. Spec content in it
        (keys, values, the source line) is escaped, so it cannot drive the terminal."""
        where = f"{self.location}: " if self.location else ""
        text = f"{where}{self.severity} {self.code}: {self.message}"
        if source_line is not None and self.location is not None:
            gutter = str(self.location.line)
            source_line, col = _clip(source_line, self.location.column - 1)
            shown_col = len(printable(source_line[:col]))
            width = len(printable(source_line[col : col + _token_width(source_line, col)]))
            text += f"\n {gutter} | {printable(source_line)}\n {' ' * len(gutter)} | {' ' * shown_col}{'^' * width}"
        text += f"\n    at {format_yaml_path(self.path)}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return printable(text)


SOURCE_WIDTH = 160


def _clip(line: str, col: int) -> tuple[str, int]:
    """A window of a long source line around ``col`` (a 1 MB line is not echoed whole), and the new column."""
    if len(line) <= SOURCE_WIDTH:
        return line, col
    start = max(0, min(col - SOURCE_WIDTH // 3, len(line) - SOURCE_WIDTH))
    head = "..." if start else ""
    tail = "..." if start + SOURCE_WIDTH < len(line) else ""
    return head + line[start : start + SOURCE_WIDTH] + tail, col - start + len(head)


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
