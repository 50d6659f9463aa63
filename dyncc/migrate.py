"""`dyncc migrate`: a spec rewritten in the current form, comments and order kept.

The loader already reads old forms (``dyncc.spec.deprecations``); this writes the same moves into the text,
so the file stops warning. The result is validated before it is returned: migrate never hands back a
spec that does not load.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from dyncc.diagnostics import Diagnostic, DiagnosticError, YamlPath, format_yaml_path
from dyncc.spec.deprecations import upgrade
from dyncc.spec.loader import SourceMap, load_spec_text, parse_yaml, read_spec_bytes


@dataclasses.dataclass(frozen=True)
class Migration:
    text: str  # the spec in the current form (the input unchanged when nothing moved)
    changes: tuple[str, ...]  # one line per rewrite, for people
    diagnostics: tuple[Diagnostic, ...]  # what the migrated spec still warns about


def migrate_file(path: str | Path) -> Migration:
    """The spec at ``path`` in the current form. Raises :class:`DiagnosticError` when it cannot be read or
    parsed, or when its old forms disagree (DYN022)."""
    path = Path(path)
    raw = read_spec_bytes(path)
    tree = parse_yaml(raw, str(path))
    if not isinstance(tree, CommentedMap):
        load_spec_text(raw, str(path), base_dir=path.parent)  # raises the loader's own DYN003
    upgraded = upgrade(tree)
    errors = [d for d in upgraded.diagnostics if d.is_error]
    if errors:
        source = SourceMap(str(path), tree)
        raise DiagnosticError([d.located(source.locate(d.path, at_key=True)) for d in errors])
    changes = []
    for old, new in upgraded.moves:
        value = _pop(tree, old)
        _put(tree, new, value)
        changes.append(f"{format_yaml_path(old)} -> {format_yaml_path(new)}: {value}")
    text = raw.decode("utf-8") if not changes else _dump(tree)
    loaded = load_spec_text(text, str(path), base_dir=path.parent)  # the result must load
    return Migration(text, tuple(changes), loaded.notices)


def _pop(tree: CommentedMap, path: YamlPath) -> Any:
    section = tree[path[0]]
    value = section.pop(path[-1])
    if not section:
        del tree[path[0]]
    return value


def _put(tree: CommentedMap, path: YamlPath, value: Any) -> None:
    node = tree
    for part in path[:-1]:
        node = node.setdefault(part, CommentedMap())
    node[path[-1]] = value


def _dump(tree: CommentedMap) -> str:
    yaml = YAML(typ="rt")
    yaml.width = 120
    stream = io.StringIO()
    yaml.dump(tree, stream)
    return stream.getvalue()
