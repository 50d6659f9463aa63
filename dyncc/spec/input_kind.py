"""What each kind of input dyncc reads may be: the limits that bound loading it, and the codes of its refusals."""

from __future__ import annotations

import msgspec

# Limits that bound the time and memory of loading whatever the input. ruamel's pure-Python round-trip
# parser is the cost: ~1-3 us per character and ~70-150 us per value (measured), so the byte cap bounds
# scanning to a few seconds and the node cap bounds everything after it; real specs are 1-2 KB with a few
# hundred values, a DynamoGraphDeployment with its ConfigMaps a few KB. Past any limit the file is refused
# with a coded error, not parsed further.
MAX_SPEC_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 10_000  # YAML nodes as written (scalars, collections, keys, alias uses)
MAX_VALUES = 20_000  # values after aliases are expanded (an alias to a list of 1000 counts 1000)
MAX_TOKENS = 8 * MAX_NODES  # scanner tokens: a backstop for input that makes tokens but no nodes


class InputKind(msgspec.Struct, frozen=True):
    """A kind of file dyncc reads: what messages call it, its size cap, and the codes of its refusals."""

    noun: str  # "spec", "manifest": "cannot read spec file", "the manifest has more than ..."
    read_code: str  # missing, not a regular file, no permission
    read_hint: str
    max_bytes: int = MAX_SPEC_BYTES
    size_code: str = "DYN001"  # over max_bytes
    size_hint: str = "a spec is a few KB; point at the spec file, not a checkpoint or a device"
    count_hint: str = "a spec has hundreds of values, not tens of thousands; split or shorten it"
    # The YAML version a document without a %YAML directive is read as: 1.2 for a spec; 1.1 for what
    # Kubernetes and the engines (PyYAML) read, where `on`, `yes` and `0777` mean what they meant there.
    yaml_version: tuple[int, int] | None = None


SPEC = InputKind("spec", "DYN002", "pass the path of a spec YAML file")
