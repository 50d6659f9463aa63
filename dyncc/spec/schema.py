"""The bundled JSON Schema's path, and the commented starter specs `dyncc init` writes. The schema itself is
generated from the composed spec model (:func:`dyncc.deployment.schema`)."""

from __future__ import annotations

from importlib import resources

from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.spec.model import DNS_LABEL

SCHEMA_FILE = "dyncc-v1.schema.json"
MODELINE = "# yaml-language-server: $schema="


def bundled_schema_path() -> str:
    """The schema shipped with this dyncc (kept equal to schema_text() by the test suite)."""
    return str(resources.files(__package__).joinpath(SCHEMA_FILE))


def starter_text(template: str, name: str | None = None) -> str:
    text = resources.files("dyncc").joinpath("starters", f"{template}.yaml").read_text("utf-8")
    lines = text.splitlines(keepends=True)
    # Point editors at the schema this dyncc ships.
    lines = [f"{MODELINE}{bundled_schema_path()}\n" if l.startswith(MODELINE) else l for l in lines]
    if name is not None:
        import re

        if not re.match(DNS_LABEL, name) or len(name) > 63:
            raise DiagnosticError(
                [
                    Diagnostic(
                        "DYN013",
                        f"--name {name!r} is not a DNS label",
                        hint="lower-case letters, digits and '-', at most 63 characters",
                    )
                ]
            )
        lines = [
            f"name: {name}" + l[l.index("  #") :]
            if l.startswith("name: ") and "  #" in l
            else (f"name: {name}\n" if l.startswith("name: ") else l)
            for l in lines
        ]
    return "".join(lines)
