"""YAML text for generated files: block style, keys in the order written, no anchors or aliases,
embedded files (engine YAMLs in a ConfigMap) as ``|`` blocks.

Emitting uses PyYAML's libyaml-backed dumper where available (an order of magnitude faster than a
pure-Python emitter; loading stays with ruamel.yaml, which keeps positions for error messages).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    _Base = yaml.SafeDumper
else:
    _Base = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_Base):
    def ignore_aliases(self, data: Any) -> bool:
        # A value used twice is written twice: generated files are read and diffed by people.
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value and not value.endswith(" \n") and "\t" not in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(obj: Any, header: str = "") -> str:
    return header + yaml.dump(
        obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096, allow_unicode=True
    )
