"""YAML text for generated files: block style, keys in the order written, no anchors or aliases.

Generated files are read by people and diffed in review, so a value repeated in two places is
written twice rather than as ``&id001`` / ``*id001``.
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString


def _literal_blocks(obj: Any) -> Any:
    # Embedded files (engine YAMLs in a ConfigMap) read best as `|` blocks.
    if isinstance(obj, dict):
        return {k: _literal_blocks(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_literal_blocks(v) for v in obj]
    if isinstance(obj, str) and "\n" in obj and not obj.endswith(" \n"):
        return LiteralScalarString(obj)
    return obj


def dump_yaml(obj: Any, header: str = "") -> str:
    yaml = YAML(typ="rt", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.representer.ignore_aliases = lambda data: True
    buf = io.StringIO()
    buf.write(header)
    yaml.dump(_literal_blocks(obj), buf)
    return buf.getvalue()
