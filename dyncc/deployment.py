"""The whole spec model: the target-neutral core (``dyncc.spec``) plus one section per registered target.

The spec package says what a deployment is and knows no target; each target owns its section's
settings model. This module puts them together — the model the loader validates against, the JSON
schema and the spec reference are generated from — so adding a target adds its section everywhere.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, create_model

from dyncc.spec import LoadedSpec
from dyncc.spec import loader as _loader
from dyncc.spec.model import CoreSpec

if TYPE_CHECKING:
    from dyncc.targets.base import Target


@functools.lru_cache(maxsize=1)
def deployment_model() -> type[CoreSpec]:
    """``DeploymentSpec``: :class:`CoreSpec` with a ``<settings_key>:`` section per registered target."""
    from dyncc.targets import targets

    sections: dict[str, Any] = {
        t.settings_key: (t.settings_model, Field(default_factory=t.settings_model, description=_section_doc(t)))
        for t in targets()
    }
    model: type[CoreSpec] = create_model(
        "DeploymentSpec", __base__=CoreSpec, __module__=__name__, __doc__=DEPLOYMENT_DOC, **sections
    )
    return model


DEPLOYMENT_DOC = (
    "A dyncc/v1 spec: one deployment (model, worker pools, routing, versions) and a settings section per "
    "target; `dyncc build -t NAME` reads the core and that target's section."
)


def _section_doc(target: Target) -> str:
    """The schema's description of a target's section (the spec reference and editors show it)."""
    return f"Settings of the {target.name} target: {target.summary}. Other targets ignore them."


def load_spec(path: str | Path) -> LoadedSpec:
    return _loader.load_spec(path, model=deployment_model())


def load_spec_text(raw: bytes | str, file: str = "<string>", base_dir: Path | None = None) -> LoadedSpec:
    return _loader.load_spec_text(raw, file, base_dir, model=deployment_model())


def schema() -> dict:
    """The spec's JSON Schema, for editors (yaml-language-server) and CI."""
    doc = deployment_model().model_json_schema(by_alias=True, mode="validation")
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "dyncc deployment spec (apiVersion dyncc/v1)"
    return doc


def schema_text() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"
