"""Validators for generated Kubernetes objects.

DynamoGraphDeployment: the real CRD's openAPIV3Schema (conftest.REFERENCE: ../shared/reference beside the
checkout; tests that use it carry ``@pytest.mark.reference(CRD_ENTRY)``)
turned into a strict JSON Schema: ``additionalProperties: false`` wherever ``properties`` is given
(unless ``x-kubernetes-preserve-unknown-fields``), int-or-string as integer|string, ``nullable`` as a
null type; the ``x-kubernetes-*`` extensions dropped. Core kinds (ConfigMap, PVC): kubernetes-validate
in strict mode, where an unknown kind does not count as valid.
"""

from __future__ import annotations

import copy
import functools

import jsonschema
from conftest import REFERENCE
from ruamel.yaml import YAML

CRD_ENTRY = "nvidia.com_dynamographdeployments.yaml"
CRD = REFERENCE / CRD_ENTRY


def _strict(node):
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["type"] = ["integer", "string"]
    if node.get("nullable") and "type" in out:
        out["type"] = [*([out["type"]] if isinstance(out["type"], str) else out["type"]), "null"]
    if (
        "properties" in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in node
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def dgd_validator(version: str) -> jsonschema.protocols.Validator:
    docs = [d for d in YAML(typ="safe").load_all(CRD.read_text()) if d]
    crd = next(d for d in docs if d.get("kind") == "CustomResourceDefinition")
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]
    schema = _strict(copy.deepcopy(schema))
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema)


def dgd_errors(manifest: dict) -> list[str]:
    version = manifest["apiVersion"].split("/")[1]
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in dgd_validator(version).iter_errors(manifest)]


def core_errors(manifest: dict) -> list[str]:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(manifest, "1.30", strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [str(exc)]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [f"no schema: {exc}"]
    return []
