"""The deployment spec: pydantic models and the YAML loader that keeps file:line:col."""

from dyncc.spec.loader import LoadedSpec, ModelFacts, SourceMap, load_spec, load_spec_text
from dyncc.spec.model import API_VERSION, ROLES, CoreSpec, Pool, Role

__all__ = [
    "API_VERSION",
    "ROLES",
    "CoreSpec",
    "LoadedSpec",
    "ModelFacts",
    "Pool",
    "Role",
    "SourceMap",
    "load_spec",
    "load_spec_text",
]
