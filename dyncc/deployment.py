"""The whole spec model: the target-neutral core (``dyncc.spec``) plus one section per registered target.

The spec package says what a deployment is and knows no target; each target owns its section's
settings model. This module puts them together — the model the loader validates against, the JSON
schema and the spec reference are generated from — so adding a target adds its section everywhere.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

from pydantic import Field, PlainSerializer, SerializationInfo, create_model

from dyncc.spec import LoadedSpec
from dyncc.spec import loader as _loader
from dyncc.spec.model import CoreSpec, SectionModel

if TYPE_CHECKING:
    from dyncc.targets.base import Target


@functools.cache
def deployment_model(written: frozenset[str] | None = None) -> type[CoreSpec]:
    """``DeploymentSpec``: :class:`CoreSpec` with a ``<settings_key>:`` section per registered target.

    ``written``: the section keys a spec writes. The other sections hold their defaults, made without a
    validator (``SectionModel.section_defaults``), so loading a spec builds only the settings models it
    needs (a cold ``build -t all`` spends most of its own time building models). None: every section typed,
    as the JSON schema, the docs and the editor need it."""
    from dyncc.targets import targets

    sections: dict[str, Any] = {}
    for t in targets():
        doc = _section_doc(t)
        if written is None or t.settings_key in written:
            sections[t.settings_key] = (t.settings_model, Field(default_factory=t.settings_model, description=doc))
        else:
            # Never validated: a key the spec does not write. Its value is the section's own default instance,
            # dumped by its own model (pydantic's dump of an Any does not build a deferred model).
            defaults = t.settings_model.section_defaults
            unwritten = Annotated[Any, PlainSerializer(_dump_section)]
            sections[t.settings_key] = (unwritten, Field(default_factory=defaults, description=doc))
    model: type[CoreSpec] = create_model(
        "DeploymentSpec", __base__=CoreSpec, __module__=__name__, __doc__=DEPLOYMENT_DOC, **sections
    )
    return model


def model_for(data: Mapping[str, Any]) -> type[CoreSpec]:
    """The deployment model that validates ``data``: typed in the target sections ``data`` writes."""
    from dyncc.targets import targets

    return deployment_model(frozenset(t.settings_key for t in targets() if t.settings_key in data))


def _dump_section(section: SectionModel, info: SerializationInfo) -> Any:
    return section.model_dump(
        mode=info.mode,
        # This section's part of a whole-spec include/exclude (pydantic-core's and pydantic's names for one shape).
        include=cast(Any, info.include),
        exclude=cast(Any, info.exclude),
        context=info.context,
        by_alias=info.by_alias,
        exclude_unset=info.exclude_unset,
        exclude_defaults=info.exclude_defaults,
        exclude_none=info.exclude_none,
        round_trip=info.round_trip,
    )


DEPLOYMENT_DOC = (
    "A dyncc/v1 spec: one deployment (model, worker pools, routing, versions) and a settings section per "
    "target; `dyncc build -t NAME` reads the core and that target's section."
)


def _section_doc(target: Target) -> str:
    """The schema's description of a target's section (the spec reference and editors show it)."""
    return f"Settings of the {target.name} target: {target.summary}. Other targets ignore them."


def load_spec(path: str | Path) -> LoadedSpec:
    return _loader.load_spec(path, model_for=model_for)


def load_spec_text(raw: bytes | str, file: str = "<string>", base_dir: Path | None = None) -> LoadedSpec:
    return _loader.load_spec_text(raw, file, base_dir, model_for=model_for)


def schema() -> dict:
    """The spec's JSON Schema, for editors (yaml-language-server) and CI."""
    doc = deployment_model().model_json_schema(by_alias=True, mode="validation")
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "dyncc deployment spec (apiVersion dyncc/v1)"
    return doc


def schema_text() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"
