"""YAML text for generated files: block style, keys in the order written, no anchors or aliases,
embedded files (engine YAMLs in a ConfigMap) as ``|`` blocks.

Emitting uses PyYAML's libyaml-backed dumper where available (an order of magnitude faster than a
pure-Python emitter; loading stays with ruamel.yaml, which keeps positions for error messages).
"""

from __future__ import annotations

import re
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

# Strings a reader would take for something else must be quoted. PyYAML already quotes what its YAML 1.1
# resolver reads as bool/null/int/float/timestamp, but YAML 1.1 also reads y/Y/n/N as booleans (Kubernetes'
# go-yaml does: `value: y` is refused as "cannot unmarshal bool into string"), and YAML 1.2 (and go-yaml) readers
# read 0o17 as an octal integer and 1e3 as a float. Resolvers for them make the emitter quote such strings.
_Dumper.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))
_Dumper.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?0o[0-7_]+$"), list("-+0"))
_Dumper.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789")
)
_Dumper.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?0x[0-9a-fA-F_]+$"), list("-+0"))


def dump_yaml(obj: Any, header: str = "") -> str:
    return header + yaml.dump(
        obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096, allow_unicode=True
    )
