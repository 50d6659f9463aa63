"""The bundled JSON Schema's path, and the commented starter specs `dyncc init` writes. The schema itself is
generated from the composed spec model (:func:`dyncc.deployment.schema`)."""

from __future__ import annotations

from importlib import resources

from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.spec.model import DNS_LABEL

MODELINE = "# yaml-language-server: $schema="
# What `dyncc init` writes in place of a modeline: a path into this install breaks once the spec is committed
# (another machine, another venv), and a URL needs a server. A schema file beside the spec, referred to
# relatively, goes wherever the spec goes.
SCHEMA_NOTE = (
    "# Editor completion and checks: `dyncc schema -o dyncc.schema.json` beside this file, then make\n"
    f"# `{MODELINE}dyncc.schema.json` its first line.\n"
)


def starter_text(template: str, name: str | None = None) -> str:
    text = resources.files("dyncc").joinpath("starters", f"{template}.yaml").read_text("utf-8")
    lines = [SCHEMA_NOTE, *text.splitlines(keepends=True)]
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
