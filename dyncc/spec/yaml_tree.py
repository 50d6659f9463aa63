"""ruamel's tree: where its values are in the file (:class:`SourceMap`), and the plain data it holds, bounded
(non-string keys, nesting, recursive aliases and alias expansion refused with coded errors)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from dyncc.diagnostics import Diagnostic, DiagnosticError, Location, YamlPath
from dyncc.spec.input_kind import MAX_DEPTH, MAX_VALUES, SPEC, InputKind


class SourceMap:
    """Answers "where in the file is the value at this YAML path?" from ruamel's position marks."""

    def __init__(self, file: str, root: Any, notes: Sequence[Diagnostic] = ()):
        self.file = file
        self.root = root
        self.notes = tuple(notes)  # warnings the parse found (DYN023), located

    def locate(self, path: YamlPath, at_key: bool = False) -> Location:
        """The deepest position along ``path`` that exists; the key itself when ``at_key``."""
        node = self.root
        line, col = _node_position(node)
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if isinstance(node, CommentedMap) and part in node:
                child = node[part]
                # A block value starts on the next line; the key is where a reader looks.
                on_key = (last and at_key) or isinstance(child, (CommentedMap, CommentedSeq))
                position = _position_in(node, part, on_key)
                if position is None:  # a key merged in from an anchor (`<<: *x`) has no position here
                    break
                line, col = position
                node = child
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                position = node.lc.item(part)
                if position is None:
                    break
                line, col = position
                node = node[part]
            else:
                break
        return Location(self.file, line + 1, col + 1)

    def has(self, path: YamlPath) -> bool:
        node = self.root
        for part in path:
            if isinstance(node, (CommentedMap, dict)) and part in node:
                node = node[part]
            elif isinstance(node, (CommentedSeq, list)) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                return False
        return True


def _position_in(mapping: CommentedMap, key: Any, on_key: bool) -> tuple[int, int] | None:
    try:
        position = mapping.lc.key(key) if on_key else mapping.lc.value(key)
    except KeyError:  # ruamel keeps no position for merged keys
        return None
    return (position[0], position[1]) if position is not None else None


def _node_position(node: Any) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    if lc is not None and lc.line is not None:
        return lc.line, lc.col
    return 0, 0


class Expansion(msgspec.Struct):
    """Values produced so far, and the collections already converted (seeing one again is an alias use)."""

    kind: InputKind = SPEC
    values: int = 0
    first_path: dict[int, YamlPath] = msgspec.field(default_factory=dict)  # id -> where it was written
    aliased: bool = False


def to_plain(
    node: Any, file: str, source: SourceMap, seen: Expansion, path: YamlPath = (), open_: tuple[int, ...] = ()
) -> Any:
    """ruamel's tree as plain dict/list/scalars; non-string keys, runaway nesting, recursive aliases and
    alias expansion past ``MAX_VALUES`` are errors here."""
    seen.values += 1
    if seen.values > MAX_VALUES:
        raise DiagnosticError([_too_many_values(seen, path, source)])
    if len(path) > MAX_DEPTH:
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN012",
                    f"nesting deeper than {MAX_DEPTH} levels",
                    path=path[:8],
                    hint="flatten the structure",
                    location=source.locate(path),
                )
            ]
        )
    if isinstance(node, (dict, list)):
        return _container_to_plain(node, file, source, seen, path, open_)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    # Implicit timestamps (`2024-01-01`): kept, so pydantic reports the wrong type where a string is due.
    return node


def _container_to_plain(
    node: dict | list, file: str, source: SourceMap, seen: Expansion, path: YamlPath, open_: tuple[int, ...]
) -> Any:
    ident = id(node)
    if ident in open_:
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN017",
                    "an alias refers to a collection that contains it (a recursive alias)",
                    path=path[:8],
                    hint="replace the alias with the values it should have",
                    location=source.locate(path),
                )
            ]
        )
    if seen.first_path.setdefault(ident, path) != path:
        seen.aliased = True
    inner = (*open_, ident)
    if isinstance(node, list):
        return [to_plain(v, file, source, seen, path + (i,), inner) for i, v in enumerate(node)]
    out = {}
    for key, value in node.items():
        if not isinstance(key, str):
            raise DiagnosticError(
                [
                    Diagnostic(
                        "DYN012",
                        f"mapping keys are strings; got {type(key).__name__} {key!r:.40}",
                        path=path,
                        hint="quote the key",
                        location=source.locate(path),
                    )
                ]
            )
        out[key] = to_plain(value, file, source, seen, path + (key,), inner)
    return out


def _first_alias_use(seen: Expansion, path: YamlPath, source: SourceMap) -> YamlPath:
    """The shortest prefix of ``path`` that reaches a collection through an alias: where the expansion starts."""
    node = source.root
    for depth, part in enumerate(path, 1):
        node = node[part]
        if isinstance(node, (dict, list)) and seen.first_path.get(id(node), path[:depth]) != path[:depth]:
            return path[:depth]
    return path


def _too_many_values(seen: Expansion, path: YamlPath, source: SourceMap) -> Diagnostic:
    if seen.aliased:
        use = _first_alias_use(seen, path, source)
        return Diagnostic(
            "DYN017",
            f"aliases expand the {seen.kind.noun} to more than {MAX_VALUES} values",
            path=use,
            hint="write the values out instead of nesting aliases of aliases",
            location=source.locate(use),
        )
    return Diagnostic(
        "DYN018",
        f"the {seen.kind.noun} has more than {MAX_VALUES} values",
        path=path[:8],
        hint=seen.kind.count_hint,
        location=source.locate(path),
    )
