"""The round trip: the imported spec built for Kubernetes, its DGD read back and compared with the original
fact by fact; a difference no import warning accounts for is one the import lost silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dyncc.tools.import_input import read_sources
from dyncc.tools.importer.manifests import (
    DEFAULT_FLAGS,
    WORKER_ROLES,
    DgdFacts,
    Difference,
    DiffKey,
    ImportNote,
    ImportResult,
    facts,
)

# --- the round trip's comparison --------------------------------------------------------------------


def compare(original: DgdFacts, rebuilt: DgdFacts) -> list[Difference]:
    """Every fact of the original that the rebuilt DGD does not have (values equal to the defaults aside)."""
    diffs: list[Difference] = []
    for role in sorted(set(original.roles) | set(rebuilt.roles)):
        a, b = original.roles.get(role), rebuilt.roles.get(role)
        if a is None or b is None:
            diffs.append(Difference((role, "component"), a is not None, b is not None))
            continue
        for aspect in ("replicas", "gpus", "image"):
            if getattr(a, aspect) != getattr(b, aspect):
                diffs.append(Difference((role, aspect), getattr(a, aspect), getattr(b, aspect)))
        # Environment lost, not environment dyncc adds (its own settings: DYN_SYSTEM_ENABLED, ...).
        diffs += [Difference((role, "env", k), v, b.env.get(k)) for k, v in sorted(a.env.items()) if b.env.get(k) != v]
        defaults = DEFAULT_FLAGS.get("frontend" if role == "frontend" else "worker", {})
        diffs += _compare_maps((role, "flag"), a.flags, b.flags, defaults)
        if a.engine is None:
            if b.engine is not None and role in WORKER_ROLES:
                diffs.append(Difference((role, "engine", "*"), None, "written by dyncc"))
        elif b.engine is not None:
            diffs += _compare_maps((role, "engine"), a.engine, b.engine, a.engine_defaults)
    return diffs


def _compare_maps(prefix: DiffKey, a: Mapping[str, Any], b: Mapping[str, Any], defaults: Mapping[str, Any]) -> list:
    out = []
    missing = object()
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key, missing), b.get(key, missing)
        if left == right:
            continue
        if key in defaults and {_norm(v) for v in (left, right) if v is not missing} == {_norm(defaults[key])}:
            continue
        out.append(Difference((*prefix, key), None if left is missing else left, None if right is missing else right))
    return out


def _norm(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if not isinstance(value, str) else value


def covered(diff: Difference, notes: Iterable[ImportNote]) -> bool:
    """Whether a warning accounts for the difference: it names the fact, or the whole aspect with `*`."""
    for note in notes:
        for key in note.covers:
            if key == diff.key or (key[-1] == "*" and diff.key[: len(key) - 1] == key[:-1]):
                return True
    return False


# --- the round trip ---------------------------------------------------------------------------------


def round_trip(result: ImportResult, work_dir: Path) -> list[Difference]:
    """Build the imported spec for Kubernetes and compare the DGD with the original: the differences no
    warning accounts for (empty when the import lost nothing silently)."""
    from dyncc.api import build

    work_dir.mkdir(parents=True, exist_ok=True)
    spec_path = work_dir / "imported.yaml"
    spec_path.write_text(result.text, encoding="utf-8")
    built = build(spec_path, ["k8s"], work_dir / "build")
    (output,) = built.outputs
    rebuilt = facts(read_sources([output.directory / name for name in sorted(output.files)]))
    return [d for d in compare(result.facts, rebuilt) if not covered(d, result.notes)]
