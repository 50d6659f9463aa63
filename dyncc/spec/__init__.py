"""The deployment spec: pydantic models and the YAML loader that keeps file:line:col.

A spec is loaded through :mod:`dyncc.deployment` (the core model plus each target's section), which this
package does not import: it knows what a deployment is, not which targets exist."""

from dyncc.spec.loader import LoadedSpec, ModelFacts, SourceMap
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
]
