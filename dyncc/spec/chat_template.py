"""The spec's custom chat template (`model.chat_template`): read once at load, so that every target ships
the same bytes beside its engine configs and a missing or unreadable file is an error before anything is
built (DYN126), not a worker that exits at start-up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dyncc.diagnostics import Diagnostic, DiagnosticError, Location, YamlPath
from dyncc.spec.input_gate import UnreadableFile, read_regular

Locate = Callable[[YamlPath], Location]
MAX_CHAT_TEMPLATE_BYTES = 1024 * 1024  # real templates are a few KB; the largest known are under 64 KB


def read_chat_template(name: str | None, base_dir: Path, locate: Locate) -> str | None:
    """The template's text, or None when the spec names none. ``name`` is relative to the spec's directory."""
    if name is None:
        return None
    path = Path(name)  # `~` is not expanded: no shell reads the spec (as for model.path, DYN118)
    try:
        data = read_regular(path if path.is_absolute() else base_dir / path, MAX_CHAT_TEMPLATE_BYTES)
    except UnreadableFile as exc:
        raise _problem(f"{name} cannot be read: {exc.reason}", locate) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _problem(f"{name} is not UTF-8 text (bad byte at offset {exc.start})", locate) from None


def _problem(message: str, locate: Locate) -> DiagnosticError:
    path = ("model", "chat_template")
    return DiagnosticError(
        [
            Diagnostic(
                "DYN126",
                f"model.chat_template: {message}",
                path=path,
                hint="name a Jinja template file (UTF-8, at most 1 MiB), relative to the spec file",
                location=locate(path),
            )
        ]
    )
