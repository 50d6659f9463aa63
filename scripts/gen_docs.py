"""Regenerate docs/spec-reference.md and the bundled dyncc/spec/dyncc-v1.schema.json (from the spec's JSON
Schema), docs/error-codes.md with its table of every code (from the code registry, dyncc/codes.yaml),
docs/capabilities.md (from the registered targets' declared capabilities), docs/disagg_router.svg (the
topology picture in the README) and the results in docs/performance.md (from benchmarks/results.md, which
benchmarks/run.py writes): every generated doc, in one command. tests/test_views.py,
tests/test_codes.py, tests/test_capabilities.py and tests/test_spec_docs.py fail when any is stale;
tests/test_docs_site.py builds the site they are part of. (The golden tree is not a doc:
scripts/update_golden.py.)

The reference's codes column lists the DYNnnn codes a key's description names: the description is the one
place a key's rules are written down, so the column cannot drift from it (tests/test_spec_docs.py checks
that every code named is in the registry)."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys
from typing import Any

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


# Markdown's punctuation, escaped so a regex in a table cell reads as itself (`[a-z]([-a-z]*)` is no link)
# in both GitHub's renderer and the docs site's (Python-Markdown; `|` for the table).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()>#+\-.!|])")


def _markdown_text(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("<", "&lt;")  # `\<` is no escape in Python-Markdown


def _bounds(prop: dict) -> str:
    for p in [prop, *prop.get("anyOf", [])]:
        parts = [f"{k} {p[k]}" for k in ("minimum", "maximum", "exclusiveMinimum", "pattern", "maxLength") if k in p]
        if parts:
            return _markdown_text(", ".join(parts))
    return ""


CODE = re.compile(r"\bDYN\d{3}\b")


def codes_in(description: str) -> list[str]:
    """The diagnostic codes a key's description names, in code order, each once."""
    return sorted(set(CODE.findall(description)))


def _code_links(description: str) -> str:
    return ", ".join(f"[{c}](error-codes.md#{c.lower()})" for c in codes_in(description))


def factory_defaults(model: Any) -> dict[str, dict[str, Any]]:
    """Defaults the JSON Schema leaves out (``default_factory``), per model name and key, as JSON values: a
    nested settings model made by its own class is ``{}`` (every key of it at its default)."""
    from pydantic import BaseModel

    found: dict[str, dict[str, Any]] = {}
    todo = [model]
    while todo:
        cls = todo.pop()
        if cls.__name__ in found:
            continue
        found[cls.__name__] = {}
        for name, field in cls.model_fields.items():
            key = field.alias or name
            factory = field.default_factory
            if isinstance(factory, type) and issubclass(factory, BaseModel):
                found[cls.__name__][key] = {}
            elif factory is not None:
                found[cls.__name__][key] = factory()  # type: ignore[call-arg]
            todo += [t for t in _model_types(field.annotation) if t.__name__ not in found]
    return found


def _model_types(annotation: Any) -> list[Any]:
    from typing import get_args

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [t for arg in get_args(annotation) for t in _model_types(arg)]


def _default(key: str, prop: dict, required: set[str], factory: dict[str, Any]) -> str:
    if key in required:
        return "required"
    if "default" in prop:
        return f"`{json.dumps(prop['default'])}`"
    if key in factory:
        return f"`{json.dumps(factory[key])}`"
    return ""


def spec_reference(schema: dict, defaults: dict[str, dict[str, Any]] | None = None) -> str:
    """The reference: one table per model, one row per key with its type, default, constraints, description
    and the codes the description names. ``defaults``: :func:`factory_defaults` of the spec model."""
    if defaults is None:
        from dyncc.deployment import deployment_model

        defaults = factory_defaults(deployment_model())
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
            "| key | type | default | constraints | description | codes |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        required = set(model.get("required", []))
        factory = defaults.get(name, {})
        for key, prop in model.get("properties", {}).items():
            default = _default(key, prop, required, factory)
            raw = prop.get("description") or ""
            desc = raw.replace("\n", " ").replace("|", "\\|")
            out.append(f"| `{key}` | {_type(prop, defs)} | {default} | {_bounds(prop)} | {desc} | {_code_links(raw)} |")
        out.append("")
    return "\n".join(out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def error_code_table(registry: dict) -> str:
    """One row per code, in code order, each linking to its entry below it."""
    rows = ["| code | severity | family | meaning |", "| --- | --- | --- | --- |"]
    rows += [
        f"| [{c.code}](#{c.code.lower()}) | {c.severity} | {c.family} | {_cell(c.title)} |"
        for c in sorted(registry.values(), key=lambda c: c.code)
    ]
    return "\n".join(rows)


def error_codes_doc(registry: dict, examples_dir: pathlib.Path) -> str:
    """docs/error-codes.md: the table of every code, then each code's explanation and the example showing it
    (named, not linked: the docs site holds docs/ alone, and a strict build refuses a link out of it)."""
    from dyncc.codes import example_for

    out = [
        "# Error codes",
        "",
        "Generated from `dyncc/codes.yaml` by `scripts/gen_docs.py`; do not edit by hand. "
        "`dyncc explain-code CODE` prints an entry with its example.",
        "",
        error_code_table(registry),
        "",
    ]
    for c in sorted(registry.values(), key=lambda c: c.code):
        example = example_for(c.code, examples_dir)
        if example is not None:
            shown = f"Example: `{example.relative_to(ROOT).as_posix()}`"
        else:
            shown = f"No example spec: {c.no_example_because}"
        out += [f"## {c.code}", "", f"**{c.title}** ({c.severity}; {c.family})", "", c.explanation, "", shown, ""]
    return "\n".join(out)


RESULTS_START = "<!-- results: benchmarks/results.md (scripts/gen_docs.py copies it here) -->\n"
RESULTS_END = "<!-- end results -->\n"


def performance_doc(doc: str, results: str) -> str:
    """docs/performance.md with the benchmark's latest results (benchmarks/results.md, which
    benchmarks/run.py writes) between its markers; its own title left out, the page has one."""
    start, end = doc.index(RESULTS_START) + len(RESULTS_START), doc.index(RESULTS_END)
    body = results.split("\n", 1)[1].lstrip("\n") if results.startswith("# ") else results
    return doc[:start] + body.rstrip("\n") + "\n\n" + doc[end:]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from dyncc.codes import registry
    from dyncc.deployment import schema, schema_text
    from dyncc.targets import targets
    from dyncc.targets.base import capability_matrix

    (ROOT / "docs" / "spec-reference.md").write_text(spec_reference(schema()))
    (ROOT / "docs" / "capabilities.md").write_text(capability_matrix(targets()), encoding="utf-8")
    (ROOT / "dyncc" / "spec" / "dyncc-v1.schema.json").write_text(schema_text())
    (ROOT / "docs" / "error-codes.md").write_text(error_codes_doc(registry(), ROOT / "examples" / "invalid"))
    performance = ROOT / "docs" / "performance.md"
    results = (ROOT / "benchmarks" / "results.md").read_text(encoding="utf-8")
    performance.write_text(performance_doc(performance.read_text(encoding="utf-8"), results), encoding="utf-8")
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
