"""Every spec key says what it does: a description in the JSON Schema (editors show it on hover) and in the
generated reference (docs/spec-reference.md), with its default and the codes of the rules that concern it."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

from conftest import ROOT

from dyncc.codes import registry
from dyncc.deployment import schema

sys.path.insert(0, str(ROOT / "scripts"))
from gen_docs import codes_in, performance_doc, spec_reference  # noqa: E402

REFERENCE = ROOT / "docs" / "spec-reference.md"
# A table cell boundary: a `|` the generator did not escape.
CELL = re.compile(r"(?<!\\)\|")


def undescribed_keys(doc: dict) -> list[str]:
    """``Model.key`` of every property, in the root model and every ``$defs`` model, with no description."""
    models = [("DeploymentSpec", doc), *doc.get("$defs", {}).items()]
    return [
        f"{name}.{key}"
        for name, model in models
        for key, prop in model.get("properties", {}).items()
        if not str(prop.get("description") or "").strip()
    ]


def reference_rows(markdown: str) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(model, key, cells by column name) for every key row of the reference's tables."""
    model, header = "", []
    for line in markdown.splitlines():
        if line.startswith("## "):
            model, header = line[3:].strip(), []
        elif line.startswith("| key |"):
            header = [c.strip() for c in CELL.split(line)[1:-1]]
        elif line.startswith("| `") and header:
            cells = [c.strip() for c in CELL.split(line)[1:-1]]
            assert len(cells) == len(header), f"{model}: malformed row {line!r}"
            row = dict(zip(header, cells, strict=True))
            yield model, row["key"].strip("`"), row


def test_every_schema_key_and_model_has_a_description():
    doc = schema()
    assert undescribed_keys(doc) == [], "add Field(description=...) to these keys"
    models = [("DeploymentSpec", doc), *doc["$defs"].items()]
    assert [name for name, model in models if not model.get("description")] == [], "add a class docstring"


def test_the_check_finds_an_empty_description():
    """The check above can fail: a key with no description, or a blank one, is reported by name."""
    doc = {
        "properties": {"a": {"description": "does a"}, "b": {}},
        "$defs": {"M": {"properties": {"c": {"description": " "}}}},
    }
    assert undescribed_keys(doc) == ["DeploymentSpec.b", "M.c"]


def test_every_key_in_the_generated_reference_has_a_description_and_its_codes():
    text = REFERENCE.read_text()
    assert text == spec_reference(schema()), "run scripts/gen_docs.py"
    rows = list(reference_rows(text))
    keys = sum(len(m.get("properties", {})) for m in [schema(), *schema()["$defs"].values()])
    assert len(rows) == keys, "every key of every model is a row of the reference"
    assert [f"{model}.{key}" for model, key, row in rows if not row["description"]] == []
    for model, key, row in rows:
        linked = re.findall(r"\[(DYN\d{3})\]\(error-codes\.md#dyn\d{3}\)", row["codes"])
        assert linked == codes_in(row["description"]), f"{model}.{key}: the codes column is the description's codes"


def test_codes_named_in_descriptions_exist():
    known = set(registry())
    named = {
        (model, key, code)
        for model, key, row in reference_rows(REFERENCE.read_text())
        for code in codes_in(row["description"])
    }
    assert named, "descriptions name the rules that concern their key"
    assert sorted(n for n in named if n[2] not in known) == []


def test_defaults_are_shown_including_those_made_by_a_factory():
    rows = {(model, key): row for model, key, row in reference_rows(REFERENCE.read_text())}
    assert rows[("DeploymentSpec", "apiVersion")]["default"] == "required"
    assert rows[("Pool", "tensor_parallel")]["default"] == "`1`"
    assert rows[("Benchmark", "concurrency")]["default"] == "`[1, 4, 16]`"
    assert rows[("DeploymentSpec", "router")]["default"] == "`{}`"
    assert "DYN101" in rows[("Pool", "gpus_per_worker")]["codes"]


def test_the_performance_page_shows_the_benchmarks_latest_results():
    """docs/performance.md carries benchmarks/results.md as benchmarks/run.py last wrote it."""
    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    results = (ROOT / "benchmarks" / "results.md").read_text(encoding="utf-8")
    assert performance_doc(page, results) == page, "run scripts/gen_docs.py"
    assert results.splitlines()[2] in page  # the run's own line: which command, when, which Python
