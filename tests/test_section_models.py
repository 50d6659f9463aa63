"""Target sections a spec does not write are not validated, and nothing tells: their value is what validating
an empty section gives, a dump of the spec is the same, and a load builds no model of an unwritten section
(the models are most of a cold build's own time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from dyncc.deployment import deployment_model, load_spec, load_spec_text, model_for
from dyncc.spec.model import SectionModel
from dyncc.targets import targets

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _section_models() -> list[type[SectionModel]]:
    """Every SectionModel reachable from a registered target's settings, by field annotation."""
    found: dict[type[SectionModel], None] = {}  # in the order reached

    def visit(model: type[SectionModel]) -> None:
        if model in found:
            return
        found[model] = None
        for field in model.model_fields.values():
            for inner in _model_types(field.annotation):
                if issubclass(inner, SectionModel):
                    visit(inner)

    for target in targets():
        visit(target.settings_model)
    return list(found)


def _model_types(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _model_types(arg)]


def _tree(instance: BaseModel) -> tuple:
    """An instance as everything the targets can read of it: type, values, and which fields were set."""
    return (
        type(instance),
        sorted(instance.model_fields_set),
        {
            name: _tree(value) if isinstance(value, BaseModel) else value
            for name, value in ((n, getattr(instance, n)) for n in type(instance).model_fields)
        },
    )


@pytest.mark.parametrize("model", _section_models(), ids=lambda m: m.__qualname__)
def test_constructed_defaults_are_what_validating_nothing_gives(model):
    try:
        validated = model()
    except Exception:  # a model with a required field has no defaults to give; none is a section's default
        assert not any(target.settings_model is model for target in targets()), (
            f"{model.__qualname__}: a target's section must validate when the spec writes nothing"
        )
        return
    assert _tree(model.constructed_defaults()) == _tree(validated)
    assert _tree(model.section_defaults()) == _tree(validated)  # once the validator is built, by it


def test_the_walk_reaches_nested_sections():
    names = {m.__qualname__ for m in _section_models()}
    assert {"K8sSettings", "PodSettings", "FrontendSettings", "PoolsSettings", "SlurmSettings"} <= names


@pytest.mark.parametrize("example", ["disagg_router.yaml", "gb200_wide_ep_recipe.yaml", "slurm_site.yaml"])
def test_a_spec_dumps_the_same_whichever_sections_are_typed(example):
    loaded = load_spec(EXAMPLES / example)
    everything_typed = deployment_model().model_validate(loaded.spec.model_dump(by_alias=True, exclude_unset=True))
    for mode in ("python", "json"):
        assert loaded.spec.model_dump(mode=mode, by_alias=True) == everything_typed.model_dump(mode=mode, by_alias=True)
    assert loaded.spec.model_dump_json() == everything_typed.model_dump_json()
    for part in ({"local": {"http_port"}, "slurm": True}, {"compose": {"restart"}, "name": True}):
        assert loaded.spec.model_dump(include=part) == everything_typed.model_dump(include=part)
        assert loaded.spec.model_dump(exclude=part) == everything_typed.model_dump(exclude=part)


def test_a_written_section_is_validated_and_an_unwritten_one_is_not_typed():
    text = (EXAMPLES / "agg.yaml").read_text()
    with pytest.raises(Exception) as refused:
        load_spec_text(text + "\nk8s:\n  namespace: Not_A_Label\n")
    assert "k8s.namespace" in str(refused.value) or "DYN" in str(refused.value)
    data = {"k8s": {}}
    typed = model_for(data).model_fields
    assert typed["k8s"].annotation.__name__ == "K8sSettings"
    assert typed["slurm"].annotation.__name__ != "SlurmSettings"


# After a cold build of every target: the modules of settings models with a validator of their own, and the target
# sections the schema of the spec's model holds (a written section is validated inside it).
BUILDS_IN_A_FRESH_PROCESS = """
import json, sys, tempfile
from dyncc.api import build
from dyncc.deployment import model_for
from dyncc.spec.input_gate import load_yaml_data
from dyncc.spec.model import SectionModel
from dyncc.targets import targets
build(sys.argv[1], ["all"], tempfile.mkdtemp())
def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)
data, _ = load_yaml_data(open(sys.argv[1], "rb").read(), sys.argv[1])
schema = repr(model_for(data).__pydantic_core_schema__)
print(json.dumps({
    "own validator": sorted({m.__module__ for m in subclasses(SectionModel) if m.__pydantic_complete__}),
    "in the spec's schema": sorted(
        m.__name__ for m in (t.settings_model for t in targets())
        if f"'cls': <class '{m.__module__}.{m.__qualname__}'>" in schema
    ),
}))
"""


@pytest.mark.parametrize(
    ("example", "typed"),
    [
        ("disagg_router.yaml", []),
        ("gb200_wide_ep_recipe.yaml", ["K8sSettings"]),
        ("slurm_site.yaml", ["SlurmSettings"]),
    ],
)
def test_a_build_of_every_target_builds_only_the_sections_the_spec_writes(example, typed):
    out = subprocess.run(
        [sys.executable, "-c", BUILDS_IN_A_FRESH_PROCESS, str(EXAMPLES / example)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["in the spec's schema"] == typed
    # What the targets read of an unwritten section (its values) needs no validator: no model of one got its
    # own. (A written section's default parts, e.g. k8s.metrics, are validated as pydantic makes them.)
    written_modules = {t.settings_model.__module__ for t in targets() if t.settings_model.__name__ in typed}
    assert set(found["own validator"]) <= written_modules


@pytest.mark.parametrize("section", ["compose", "local", "slurm"])
def test_a_sweep_over_a_section_the_base_does_not_write_is_checked_point_by_point(section, tmp_path):
    """Each point is validated by its own model: the swept key writes the section the base leaves unwritten
    (a point reusing the base's model took the values unchecked, and a target then met a plain dict)."""
    from dyncc.api import validate

    key, good, bad = {
        "compose": ("restart", '[always, "no"]', "[bogus]"),
        "local": ("http_port", "[8001, 8002]", "[99999]"),
        "slurm": ("partition", "[batch, gpu]", '["bad partition;"]'),
    }[section]
    base = (EXAMPLES / "agg.yaml").read_text()
    spec = tmp_path / "s.yaml"
    spec.write_text(base + f"sweep:\n  {section}.{key}: {good}\n")
    assert validate(spec).ok
    spec.write_text(base + f"sweep:\n  {section}.{key}: {bad}\n")
    refused = validate(spec)
    assert not refused.ok and "DYN804" in {d.code for d in refused.diagnostics}
