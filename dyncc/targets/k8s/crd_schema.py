"""The DynamoGraphDeployment CRD's openAPIV3Schema, vendored, and a strict checker for generated DGDs.

Why vendored: every DGD dyncc writes (patches included) is checked against the operator's public API
schema before a file is written, and a pip-installed dyncc has no copy of the CRD. The data file
(``data/dgd-openapi.json``) is the CRD's ``openAPIV3Schema`` per served version with descriptions
removed (about 180 KB); ``vendor()`` regenerates it from a CRD file and records the source.

Strict means what ``kubectl apply --validate=strict`` means for a CRD: a field the schema does not
define is an error (``properties`` without ``x-kubernetes-preserve-unknown-fields``), as is a wrong
type, a value outside an enum, a pattern or a bound. CEL rules (``x-kubernetes-validations``) are not
evaluated; the admission webhook's checks are not in the schema at all.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

DATA_FILE = "dgd-openapi.json"
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
}

Schema = dict[str, Any]
JsonPath = tuple[str | int, ...]


@functools.cache
def _vendored() -> dict[str, Any]:
    text = resources.files("dyncc.targets.k8s").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def schema(version: str) -> Schema:
    """The openAPIV3Schema of ``nvidia.com/<version>`` DynamoGraphDeployment."""
    found: Schema = _vendored()["versions"][version]
    return found


def source() -> str:
    return str(_vendored()["source"])


def errors(manifest: dict[str, Any]) -> list[tuple[JsonPath, str]]:
    """Every place ``manifest`` breaks the CRD schema of its apiVersion: (path in the object, message)."""
    version = str(manifest.get("apiVersion", "")).rpartition("/")[2]
    found: list[tuple[JsonPath, str]] = []
    _check(manifest, schema(version), (), found)
    return found


def _type_ok(value: Any, node: Schema) -> bool:
    if node.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    wanted = node.get("type")
    if wanted is None:
        return True
    if value is None:
        return bool(node.get("nullable"))
    if isinstance(value, bool) and wanted in ("integer", "number"):
        return False
    return isinstance(value, _TYPES.get(wanted, (object,)))


def _type_name(node: Schema) -> str:
    return "integer or string" if node.get("x-kubernetes-int-or-string") else str(node.get("type"))


def _check(value: Any, node: Schema, path: JsonPath, found: list[tuple[JsonPath, str]]) -> None:
    if not _type_ok(value, node):
        found.append((path, f"expected {_type_name(node)}, got {type(value).__name__} {json.dumps(value)[:60]}"))
        return
    if value is None:
        return
    if "enum" in node and value not in node["enum"]:
        found.append((path, f"{json.dumps(value)[:60]} is not one of {', '.join(map(str, node['enum']))}"))
    if isinstance(value, str):
        _check_string(value, node, path, found)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(value, node, path, found)
    elif isinstance(value, list):
        _check_list(value, node, path, found)
    elif isinstance(value, dict):
        _check_object(value, node, path, found)


def _check_string(value: str, node: Schema, path: JsonPath, found: list[tuple[JsonPath, str]]) -> None:
    if "pattern" in node and not re.search(node["pattern"], value):
        found.append((path, f"{value!r} does not match {node['pattern']}"))
    if len(value) > node.get("maxLength", len(value)) or len(value) < node.get("minLength", 0):
        found.append((path, f"{value!r} has {len(value)} characters, outside the allowed length"))


def _check_number(value: float, node: Schema, path: JsonPath, found: list[tuple[JsonPath, str]]) -> None:
    if "minimum" in node and value < node["minimum"] or "maximum" in node and value > node["maximum"]:
        found.append((path, f"{value} is outside [{node.get('minimum', '')}, {node.get('maximum', '')}]"))


def _check_list(value: list, node: Schema, path: JsonPath, found: list[tuple[JsonPath, str]]) -> None:
    if "maxItems" in node and len(value) > node["maxItems"]:
        found.append((path, f"{len(value)} items; at most {node['maxItems']} allowed"))
    for i, item in enumerate(value):
        if "items" in node:
            _check(item, node["items"], (*path, i), found)


def _check_object(value: dict, node: Schema, path: JsonPath, found: list[tuple[JsonPath, str]]) -> None:
    for key in node.get("required", []):
        if key not in value:
            found.append((path, f"required field {key!r} is missing"))
    props: dict[str, Schema] = node.get("properties", {})
    extra = node.get("additionalProperties")
    for key, item in value.items():
        if key in props:
            _check(item, props[key], (*path, key), found)
        elif isinstance(extra, dict):
            _check(item, extra, (*path, key), found)
        elif props and not node.get("x-kubernetes-preserve-unknown-fields") and extra is not True:
            found.append(((*path, key), f"unknown field {key!r}; the CRD defines {_some(props)}"))


def _some(props: dict[str, Schema]) -> str:
    names = sorted(props)
    return ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")


def _without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_without_descriptions(v) for v in node]
    return node


def vendor(crd_file: Path, note: str) -> str:
    """The data file's text from a CRD YAML (``nvidia.com_dynamographdeployments.yaml``)."""
    from ruamel.yaml import YAML

    docs = [d for d in YAML(typ="safe").load_all(crd_file.read_text(encoding="utf-8")) if d]
    crd = next(d for d in docs if d.get("kind") == "CustomResourceDefinition")
    versions = {v["name"]: _without_descriptions(v["schema"]["openAPIV3Schema"]) for v in crd["spec"]["versions"]}
    gen = crd["metadata"].get("annotations", {}).get("controller-gen.kubebuilder.io/version", "?")
    data = {"source": f"{note} (controller-gen {gen}; descriptions removed)", "versions": versions}
    return json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"


if __name__ == "__main__":  # python3 -m dyncc.targets.k8s.crd_schema CRD.yaml "where it came from"
    import sys

    out = Path(__file__).parent / "data" / DATA_FILE
    out.write_text(vendor(Path(sys.argv[1]), sys.argv[2]), encoding="utf-8")
