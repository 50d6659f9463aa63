"""Regenerate docs/spec-reference.md (from the spec's JSON Schema) and docs/disagg_router.svg
(the topology picture in the README). tests/test_views.py fails when either is stale."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _type(prop, defs: dict) -> str:
    if not isinstance(prop, dict):
        return "any"
    if "$ref" in prop:
        return f"[{prop['$ref'].split('/')[-1]}](#{prop['$ref'].split('/')[-1].lower()})"
    if "anyOf" in prop:
        return " or ".join(_type(p, defs) for p in prop["anyOf"] if p.get("type") != "null")
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    if prop.get("type") == "array":
        return f"list of {_type(prop.get('items', {}), defs)}"
    if prop.get("type") == "object":
        extra = prop.get("additionalProperties")
        return f"map of {_type(extra, defs)}" if isinstance(extra, dict) else "map"
    return prop.get("type", "any")


def _bounds(prop: dict) -> str:
    for p in [prop, *prop.get("anyOf", [])]:
        parts = [f"{k} {p[k]}" for k in ("minimum", "maximum", "exclusiveMinimum", "pattern", "maxLength") if k in p]
        if parts:
            return ", ".join(parts).replace("|", "\\|")
    return ""


def spec_reference(schema: dict) -> str:
    defs = schema.get("$defs", {})
    out = [
        "# Spec reference (apiVersion dyncc/v1)",
        "",
        "Generated from `dyncc schema` by `scripts/gen_docs.py`; do not edit by hand.",
        "",
    ]
    for name, model in [("DeploymentSpec", schema), *sorted(defs.items())]:
        out += [
            f"## {name}",
            "",
            (model.get("description") or "").strip().replace("\n", " "),
            "",
            "| key | type | default | constraints | description |",
            "| --- | --- | --- | --- | --- |",
        ]
        required = set(model.get("required", []))
        for key, prop in model.get("properties", {}).items():
            default = (
                "required" if key in required else f"`{json.dumps(prop.get('default'))}`" if "default" in prop else ""
            )
            desc = (prop.get("description") or "").replace("\n", " ").replace("|", "\\|")
            out.append(f"| `{key}` | {_type(prop, defs)} | {default} | {_bounds(prop)} | {desc} |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from dyncc.spec.schema import schema

    (ROOT / "docs" / "spec-reference.md").write_text(spec_reference(schema()))
    dot = subprocess.run(
        [sys.executable, "-m", "dyncc", "graph", "examples/disagg_router.yaml", "--format", "dot"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, check=True).stdout
    (ROOT / "docs" / "disagg_router.svg").write_bytes(svg)


if __name__ == "__main__":
    main()
