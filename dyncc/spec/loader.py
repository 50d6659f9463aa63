"""Load a spec from YAML, keeping every value's file:line:col.

ruamel.yaml's round-trip loader records where each key and value sits; :class:`SourceMap` keeps that
tree so any later step (pydantic here, graph rules in the compiler) can point at the exact value it
complains about. The tree is converted to plain Python before validation so pydantic's strict mode
sees ordinary ``int``/``str``/``dict`` values.
"""

from __future__ import annotations

import dataclasses
import difflib
import errno
import io
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, Union

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scanner import RoundTripScanner
from ruamel.yaml.tokens import DirectiveToken, DocumentEndToken, StreamStartToken

from dyncc.diagnostics import Diagnostic, DiagnosticError, Location, YamlPath, format_yaml_path
from dyncc.spec.deprecations import upgrade
from dyncc.spec.model import API_VERSION, CoreSpec

# Limits that bound the time and memory of loading whatever the input. ruamel's pure-Python round-trip
# parser is the cost: ~1-3 us per character and ~70-150 us per value (measured), so the byte cap bounds
# scanning to a few seconds and the node cap bounds everything after it; real specs are 1-2 KB with a few
# hundred values. Past any limit the spec is refused with a coded error, not parsed further.
MAX_SPEC_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 10_000  # YAML nodes as written (scalars, collections, keys, alias uses)
MAX_VALUES = 20_000  # values after aliases are expanded (an alias to a list of 1000 counts 1000)
MAX_TOKENS = 8 * MAX_NODES  # scanner tokens: a backstop for input that makes tokens but no nodes
MAX_CONFIG_JSON_BYTES = 16 * 1024 * 1024  # a checkpoint's config.json is a few KB

# Explicit tags that only restate what YAML already resolves (`!!str 5` is the string "5"). Any other
# tag (`!!set`, `!!binary`, `!!timestamp`, `!!python/...`, `!custom`) would be dropped or turned into a
# value the deployment cannot carry, so it is refused instead.
_PLAIN_TAGS = frozenset({"!"} | {f"tag:yaml.org,2002:{kind}" for kind in ("str", "int", "float", "bool", "map", "seq")})
_YAML_VERSIONS = frozenset({(1, 1), (1, 2)})

# Keys people bring from other tools; mapped to ours in did-you-mean hints.
KEY_SYNONYMS = {
    "tp": "tensor_parallel",
    "tensor_parallel_size": "tensor_parallel",
    "pp": "pipeline_parallel",
    "pipeline_parallel_size": "pipeline_parallel",
    "ep": "expert_parallel",
    "moe_expert_parallel_size": "expert_parallel",
    "enable_attention_dp": "attention_dp",
    "dp": "attention_dp",
    "served_model_name": "served_name",
    "model_path": "path",
    "num_replicas": "replicas",
    "router_mode": "mode",
    "migration_limit": "limit",
    "cache_transceiver_config": "kv_transfer",
    "disable_overlap_scheduler": "overlap_scheduler",
    "cuda_graph_config": "cuda_graphs",
    "api_version": "apiVersion",
}


class SourceMap:
    """Answers "where in the file is the value at this YAML path?" from ruamel's position marks."""

    def __init__(self, file: str, root: Any):
        self.file = file
        self.root = root

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


@dataclasses.dataclass(frozen=True)
class ModelFacts:
    """What rules know of the checkpoint, and where each fact came from (``spec``, ``config.json``)."""

    moe: bool | None = None
    num_experts: int | None = None
    mtp_layers: int | None = None
    attention_heads: int | None = None
    local_dir: str | None = None  # the checkpoint directory, when model.path names one on this machine
    source: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class LoadedSpec:
    spec: Any  # an instance of the composed model: CoreSpec plus each target's section
    source: SourceMap
    facts: ModelFacts
    base_dir: Path
    # Warnings from reading the file itself, before any rule: old spec forms read as their new form (DYN021).
    notices: tuple[Diagnostic, ...] = ()

    @property
    def file(self) -> str:
        return self.source.file


def load_spec(path: str | Path, model: type[CoreSpec] | None = None) -> LoadedSpec:
    """Read and validate one spec file against ``model``; raises :class:`DiagnosticError` with located
    diagnostics."""
    path = Path(path)
    return load_spec_text(read_spec_bytes(path), str(path), base_dir=path.parent, model=model)


def default_model() -> type[CoreSpec]:
    """The model specs are validated against when the caller names none: the core spec composed with the
    registered targets' sections. It is built outside this package (``dyncc.deployment``), which knows the
    targets; this package only knows what a deployment is."""
    import importlib

    composed: type[CoreSpec] = importlib.import_module("dyncc.deployment").deployment_model()
    return composed


def read_spec_bytes(path: Path) -> bytes:
    """The file's bytes, at most ``MAX_SPEC_BYTES + 1`` of them: ``/dev/zero`` or a huge file can't fill memory."""
    name = str(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "Is a directory", name)
        with path.open("rb") as stream:
            return stream.read(MAX_SPEC_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN002",
                    f"cannot read spec file: {reason}",
                    hint="pass the path of a spec YAML file",
                    location=Location(name, 1, 1),
                )
            ]
        ) from None


def load_yaml_data(raw: bytes | str, file: str = "<string>") -> tuple[Any, SourceMap]:
    """The document as plain Python data, with the SourceMap that locates its values."""
    tree = parse_yaml(raw, file)
    source = SourceMap(file, tree)
    return _to_plain(tree, file, source, _Expansion()), source


def load_spec_text(
    raw: bytes | str, file: str = "<string>", base_dir: Path | None = None, model: type[CoreSpec] | None = None
) -> LoadedSpec:
    model = model or default_model()
    data, source = load_yaml_data(raw, file)
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN003",
                    f"a spec is a YAML mapping; this document is {kind}",
                    hint=f"start from a file in examples/ (first key: `apiVersion: {API_VERSION}`)",
                    location=source.locate(()),
                )
            ]
        )
    upgraded = upgrade(data)
    notices = [d.located(source.locate(d.path, at_key=True)) for d in upgraded.diagnostics]
    if any(d.is_error for d in notices):
        raise DiagnosticError(notices)
    try:
        spec = model.model_validate(upgraded.data)
    except ValidationError as exc:
        found = _diagnostics_from_validation(exc, source, model)
        raise DiagnosticError(notices + [_at_old_form(d, upgraded.moves, source) for d in found]) from None
    base = base_dir if base_dir is not None else Path.cwd()
    facts = read_model_facts(spec, base, source)
    return LoadedSpec(spec=spec, source=source, facts=facts, base_dir=base, notices=tuple(notices))


def _at_old_form(diagnostic: Diagnostic, moves: tuple[tuple[YamlPath, YamlPath], ...], source: SourceMap) -> Diagnostic:
    """A problem with a value that an old form supplied, located where the file wrote it."""
    for old, new in moves:
        if diagnostic.path[: len(new)] == new:
            return diagnostic.located(source.locate(old + diagnostic.path[len(new) :]))
    return diagnostic


# --- YAML text -> ruamel tree, bounded ---------------------------------------------------------


@dataclasses.dataclass
class _Budget:
    """What one parse has used so far, and the last position reached (for errors that carry none)."""

    file: str
    tokens: int = 0
    nodes: int = 0
    depth: int = 0
    line: int = 0  # 0-based, as ruamel's marks
    column: int = 0
    open_anchors: set[str] = dataclasses.field(default_factory=set)  # anchored collections being composed
    in_document: bool = False  # the scanner has passed content since the last document end

    def at(self, mark: Any) -> None:
        if mark is not None:
            self.line, self.column = mark.line, mark.column

    def location(self) -> Location:
        return Location(self.file, self.line + 1, self.column + 1)


def _budget(loader: Any) -> _Budget:
    budget = getattr(loader, "dyncc_budget", None)
    assert isinstance(budget, _Budget), "the bounded YAML classes run only inside parse_yaml"
    return budget


def _refuse(code: str, message: str, hint: str, location: Location) -> DiagnosticError:
    return DiagnosticError([Diagnostic(code, message, hint=hint, location=location)])


class _BoundedScanner(RoundTripScanner):
    """Counts tokens and flow nesting while scanning, and checks ``%YAML`` directives.

    Flow nesting must be stopped here: every open ``[``/``{`` is a pending simple key the scanner
    re-checks on each token, so 100k of them take minutes before the first node exists.
    """

    def fetch_more_tokens(self) -> None:
        budget = _budget(self.loader)
        budget.at(self.reader.get_mark())
        budget.tokens += 1
        if budget.tokens > MAX_TOKENS:
            raise _refuse(
                "DYN018",
                f"the spec has more than {MAX_TOKENS} YAML tokens",
                "a spec has hundreds of values, not tens of thousands; split or shorten it",
                budget.location(),
            )
        before = len(self.tokens)
        super().fetch_more_tokens()
        if self.flow_level > MAX_DEPTH:
            raise _refuse(
                "DYN012",
                f"nesting deeper than {MAX_DEPTH} levels",
                "flatten the structure",
                budget.location(),
            )
        for token in self.tokens[before:]:
            if isinstance(token, DirectiveToken):
                _check_directive(token, budget.file, budget.in_document)
            elif isinstance(token, (DocumentEndToken, StreamStartToken)):
                budget.in_document = False
            else:
                budget.in_document = True


def _check_directive(token: DirectiveToken, file: str, in_document: bool) -> None:
    mark = token.start_mark
    where = Location(file, mark.line + 1, mark.column + 1)
    if in_document:
        # ruamel would end the document here silently and fail later, at the end of the file.
        raise _refuse(
            "DYN001",
            f"a %{token.name} directive inside a document",
            "directives go before the document's `---`; a value starting with `%` must be quoted",
            where,
        )
    if token.name == "YAML" and tuple(token.value or ()) not in _YAML_VERSIONS:
        version = ".".join(str(v) for v in token.value or ())
        raise _refuse(
            "DYN001",
            f"unsupported YAML version %YAML {version}",
            "use `%YAML 1.2` (or no directive), and put directives before the document's first line",
            where,
        )


class _BoundedComposer(Composer):
    """Counts nodes and nesting while composing, and refuses tags that would change or drop a value."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        budget = _budget(self.loader)
        event = self.parser.peek_event()
        budget.at(event.start_mark)
        where = budget.location()
        budget.nodes += 1
        if budget.nodes > MAX_NODES:
            raise _refuse(
                "DYN018",
                f"the spec has more than {MAX_NODES} YAML values",
                "a spec has hundreds of values, not tens of thousands; split or shorten it",
                where,
            )
        if isinstance(event, AliasEvent) and event.anchor in budget.open_anchors:
            # ruamel would build the inner use as null, silently dropping the value.
            raise _refuse(
                "DYN017",
                f"alias *{event.anchor} is used inside the collection it names (a recursive alias)",
                "replace the alias with the values it should have",
                where,
            )
        tag = getattr(event, "ctag", None)
        if tag is not None and str(tag) not in _PLAIN_TAGS:
            raise _refuse(
                "DYN016",
                f"YAML tag `{_short_tag(str(tag))}` is not supported",
                "remove the tag: a spec holds plain strings, numbers, booleans, lists and mappings",
                where,
            )
        anchor = event.anchor if isinstance(event, (SequenceStartEvent, MappingStartEvent)) else None
        if anchor is not None:
            budget.open_anchors.add(anchor)
        budget.depth += 1
        try:
            if budget.depth > MAX_DEPTH + 1:
                raise _refuse("DYN012", f"nesting deeper than {MAX_DEPTH} levels", "flatten the structure", where)
            return super().compose_node(parent, index)
        finally:
            budget.depth -= 1
            budget.open_anchors.discard(anchor)


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag[:80]


class _MarkingConstructor(RoundTripConstructor):
    """Remembers the node being built, so a plain error from a constructor still has a position."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        _budget(self.loader).at(getattr(node, "start_mark", None))
        return super().construct_object(node, deep=deep)


def _new_yaml(file: str) -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    yaml.Scanner = _BoundedScanner
    yaml.Composer = _BoundedComposer
    yaml.Constructor = _MarkingConstructor
    yaml.dyncc_budget = _Budget(file)  # type: ignore[attr-defined]  # read back by the classes above
    return yaml


def parse_yaml(raw: bytes | str, file: str) -> Any:
    """The ruamel tree of one YAML document; every failure is a :class:`DiagnosticError` with a location."""
    if len(raw) > MAX_SPEC_BYTES:
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN001",
                    f"spec is larger than {MAX_SPEC_BYTES} bytes",
                    hint="a spec is a few KB; point at the spec file, not a checkpoint or a device",
                    location=Location(file, 1, 1),
                )
            ]
        )
    if isinstance(raw, bytes):
        data = raw
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DiagnosticError(
                [
                    Diagnostic(
                        "DYN001",
                        f"spec is not UTF-8 text (bad byte at offset {exc.start})",
                        hint="save the file as UTF-8",
                        location=_byte_location(data, exc.start, file),
                    )
                ]
            ) from None
    yaml = _new_yaml(file)
    try:
        return yaml.load(io.StringIO(raw))
    except DiagnosticError:
        raise
    except MarkedYAMLError as exc:
        raise DiagnosticError([_syntax_diagnostic(exc, file)]) from None
    except ReaderError as exc:
        raise DiagnosticError([_unreadable_diagnostic(exc, _offset_location(raw, exc.position, file))]) from None
    except Exception as exc:  # noqa: BLE001 - ruamel raises plain KeyError/ValueError/RecursionError on odd input
        raise DiagnosticError([_unreadable_diagnostic(exc, _budget(yaml).location())]) from None


def _syntax_diagnostic(exc: MarkedYAMLError, file: str) -> Diagnostic:
    # An unclosed bracket or quote is found at the end of the stream; where it opened is more useful.
    at_end = any(end in str(exc.problem) for end in ("end of the stream", "end of stream", "<stream end>"))
    mark = (exc.context_mark if at_end and exc.context_mark else None) or exc.problem_mark or exc.context_mark
    loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
    problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
    return Diagnostic(
        "DYN001",
        f"YAML syntax error: {problem or 'malformed YAML'}",
        hint="fix the YAML at this position",
        location=loc,
    )


def _byte_location(data: bytes, offset: int, file: str) -> Location:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return Location(file, data.count(b"\n", 0, offset) + 1, offset - line_start + 1)


def _offset_location(text: str, offset: int, file: str) -> Location:
    line_start = text.rfind("\n", 0, offset) + 1
    return Location(file, text.count("\n", 0, offset) + 1, offset - line_start + 1)


def _unreadable_diagnostic(exc: Exception, where: Location) -> Diagnostic:
    if isinstance(exc, RecursionError):
        message = "nesting too deep"
    else:
        first = (str(exc).splitlines() or [""])[0][:200]
        message = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return Diagnostic(
        "DYN001",
        f"YAML could not be read: {message}",
        hint="fix the YAML at this position; quote values that are meant as text",
        location=where,
    )


# --- ruamel tree -> plain data, bounded --------------------------------------------------------


@dataclasses.dataclass
class _Expansion:
    """Values produced so far, and the collections already converted (seeing one again is an alias use)."""

    values: int = 0
    first_path: dict[int, YamlPath] = dataclasses.field(default_factory=dict)  # id -> where it was written
    aliased: bool = False


def _to_plain(
    node: Any, file: str, source: SourceMap, seen: _Expansion, path: YamlPath = (), open_: tuple[int, ...] = ()
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
    node: dict | list, file: str, source: SourceMap, seen: _Expansion, path: YamlPath, open_: tuple[int, ...]
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
        return [_to_plain(v, file, source, seen, path + (i,), inner) for i, v in enumerate(node)]
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
        out[key] = _to_plain(value, file, source, seen, path + (key,), inner)
    return out


def _first_alias_use(seen: _Expansion, path: YamlPath, source: SourceMap) -> YamlPath:
    """The shortest prefix of ``path`` that reaches a collection through an alias: where the expansion starts."""
    node = source.root
    for depth, part in enumerate(path, 1):
        node = node[part]
        if isinstance(node, (dict, list)) and seen.first_path.get(id(node), path[:depth]) != path[:depth]:
            return path[:depth]
    return path


def _too_many_values(seen: _Expansion, path: YamlPath, source: SourceMap) -> Diagnostic:
    if seen.aliased:
        use = _first_alias_use(seen, path, source)
        return Diagnostic(
            "DYN017",
            f"aliases expand the spec to more than {MAX_VALUES} values",
            path=use,
            hint="write the values out instead of nesting aliases of aliases",
            location=source.locate(use),
        )
    return Diagnostic(
        "DYN018",
        f"the spec has more than {MAX_VALUES} values",
        path=path[:8],
        hint="a spec has hundreds of values, not tens of thousands; split or shorten it",
        location=source.locate(path),
    )


# --- pydantic errors -> diagnostics ------------------------------------------------------------

_RANGE_ERRORS = {
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
    "string_too_short",
    "string_too_long",
    "string_pattern_mismatch",
    "too_short",
    "too_long",
    "value_error",
    "finite_number",
    "multiple_of",
}


def _diagnostics_from_validation(exc: ValidationError, source: SourceMap, model: type[CoreSpec]) -> list[Diagnostic]:
    diagnostics = []
    for error in exc.errors(include_url=False):
        loc = tuple(part for part in error["loc"] if part != "[key]")
        key_error = "[key]" in error["loc"]
        diagnostics.append(_diagnostic_for(error, loc, key_error, source, model))
    return sorted(
        set(diagnostics), key=lambda d: (d.location.line, d.location.column, d.code) if d.location else (0, 0, d.code)
    )


def _diagnostic_for(
    error: ErrorDetails, loc: YamlPath, key_error: bool, source: SourceMap, model: type[CoreSpec]
) -> Diagnostic:
    kind = error["type"]
    msg = error["msg"]
    where = format_yaml_path(loc)
    if kind == "extra_forbidden":
        key = str(loc[-1])
        valid = _valid_keys(model, loc[:-1])
        suggestion = _did_you_mean(key, valid)
        hint = f"did you mean `{suggestion}`?" if suggestion else None
        if valid:
            hint = (hint + " " if hint else "") + "allowed here: " + ", ".join(sorted(valid))
        return Diagnostic(
            "DYN010", f"unknown key `{key}`", path=loc, hint=hint, location=source.locate(loc, at_key=True)
        )
    if kind == "missing":
        parent = loc[:-1]
        return Diagnostic(
            "DYN011",
            f"missing required key `{loc[-1]}`",
            path=loc,
            hint=f"add `{loc[-1]}:` " + (f"under {format_yaml_path(parent)}" if parent else "at the top level"),
            location=source.locate(parent),
        )
    if loc == ("apiVersion",) and kind == "literal_error":
        return Diagnostic(
            "DYN004",
            f"unsupported apiVersion {error.get('input')!r}",
            path=loc,
            hint=f"this dyncc reads `apiVersion: {API_VERSION}`",
            location=source.locate(loc),
        )
    if kind in ("literal_error", "enum"):
        allowed = _literal_values(model, loc)
        value = error.get("input")
        suggestion = _did_you_mean(str(value), [str(a) for a in allowed]) if isinstance(value, str) else None
        hint = f"did you mean `{suggestion}`? " if suggestion else ""
        hint += "one of: " + ", ".join(str(a) for a in allowed) if allowed else msg
        return Diagnostic(
            "DYN014",
            f"{where}: {value!r:.80} is not an accepted value",
            path=loc,
            hint=hint,
            location=source.locate(loc),
        )
    if kind in _RANGE_ERRORS:
        text = msg.removeprefix("Value error, ")
        if key_error:
            text = f"key {loc[-1]!r:.80} is invalid: {text}"
        return Diagnostic(
            "DYN013",
            f"{where}: {text}",
            path=loc,
            hint=_range_hint(kind, error),
            location=source.locate(loc, at_key=key_error),
        )
    value = error.get("input")
    got = type(value).__name__ if value is not None else "null"
    return Diagnostic(
        "DYN012",
        f"{where}: {msg.lower()} (got {got})",
        path=loc,
        hint="check the value's type; quote strings that look like numbers",
        location=source.locate(loc),
    )


def _range_hint(kind: str, error: ErrorDetails) -> str:
    ctx = error.get("ctx", {})
    bounds = {
        "greater_than": "above {gt}",
        "greater_than_equal": "of at least {ge}",
        "less_than": "below {lt}",
        "less_than_equal": "of at most {le}",
        "string_too_short": "of at least {min_length} character(s)",
        "string_too_long": "of at most {max_length} characters",
        "too_short": "with at least {min_length} item(s)",
        "too_long": "with at most {max_length} items",
        "multiple_of": "that is a multiple of {multiple_of}",
    }
    if kind in bounds:
        return "use a value " + bounds[kind].format(**ctx)
    if kind == "string_pattern_mismatch":
        return f"the value must match the pattern {ctx.get('pattern')}"
    if kind == "finite_number":
        return "use a finite number"
    return "change the value as the message says"


def _did_you_mean(word: str, candidates: list[str] | set[str]) -> str | None:
    if word in KEY_SYNONYMS and KEY_SYNONYMS[word] in candidates:
        return KEY_SYNONYMS[word]
    matches = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    if matches:
        return matches[0]
    # `kv-aware` -> `kv`, `tensor` -> `tensor_parallel`: one is the start of the other.
    prefixed = sorted(
        c for c in candidates if len(c) >= 2 and (word.startswith(c) or c.startswith(word)) and len(word) >= 2
    )
    return max(prefixed, key=len) if prefixed else None


def _field_annotation(model: type[CoreSpec], loc: YamlPath) -> Any:
    """The type annotation reached by following ``loc`` down from the spec ``model``."""
    current: Any = model
    for part in loc:
        current = _unwrap_optional(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) in (dict, list):
            current = typing.get_args(current)[-1]
        else:
            return None
    return _unwrap_optional(current)


def _unwrap_optional(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _valid_keys(spec_model: type[CoreSpec], loc: YamlPath) -> set[str]:
    model = _field_annotation(spec_model, loc)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return {f.alias or n for n, f in model.model_fields.items()}
    return set()


def _literal_values(model: type[CoreSpec], loc: YamlPath) -> list[Any]:
    annotation = _field_annotation(model, loc)
    return list(typing.get_args(annotation)) if typing.get_origin(annotation) is typing.Literal else []


# --- model facts ---------------------------------------------------------------------------------

# config.json keys that different model families use for the same facts.
_EXPERT_KEYS = ("n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts")
_MTP_KEYS = ("num_nextn_predict_layers",)


def read_model_facts(spec: CoreSpec, base_dir: Path, source: SourceMap) -> ModelFacts:
    """Facts from the spec, filled in from ``config.json`` when the model path is a local directory."""
    model = spec.model
    moe, num_experts, mtp_layers = model.moe, model.num_experts, model.mtp_layers
    origin = {
        k: "spec" for k, v in (("moe", moe), ("num_experts", num_experts), ("mtp_layers", mtp_layers)) if v is not None
    }
    model_dir = Path(model.path) if Path(model.path).is_absolute() else base_dir / model.path
    is_dir, has_config = _probe_model_dir(model_dir, source)
    local_dir = str(model_dir.resolve()) if is_dir else None
    config_path = model_dir / "config.json"
    config: dict[str, Any] = {}
    if has_config:
        config = _read_model_config(config_path, source)
        experts = next((config[k] for k in _EXPERT_KEYS if isinstance(config.get(k), int)), None)
        mtp = next((config[k] for k in _MTP_KEYS if isinstance(config.get(k), int)), None)
        if num_experts is None and experts is not None:
            num_experts, origin["num_experts"] = experts, str(config_path)
        if moe is None:
            moe, origin["moe"] = (experts or 0) > 1 if experts is not None else False, str(config_path)
        if mtp_layers is None:
            mtp_layers, origin["mtp_layers"] = mtp if mtp is not None else 0, str(config_path)
    if moe is None and num_experts is not None:
        moe = num_experts > 1
        origin["moe"] = origin["num_experts"]
    heads = model.attention_heads
    if heads is not None:
        origin["attention_heads"] = "spec"
    elif has_config and isinstance(config.get("num_attention_heads"), int) and config["num_attention_heads"] > 0:
        heads, origin["attention_heads"] = config["num_attention_heads"], str(config_path)
    return ModelFacts(
        moe=moe,
        num_experts=num_experts,
        mtp_layers=mtp_layers,
        attention_heads=heads,
        local_dir=local_dir,
        source=origin,
    )


def _probe_model_dir(model_dir: Path, source: SourceMap) -> tuple[bool, bool]:
    """(is a local directory, has a config.json file). A path no file system can hold is an error; one this
    machine may not see (no permission, not mounted here) is a model found elsewhere, as a missing one is."""
    try:
        if _too_long(model_dir):  # checked first: a missing parent directory would hide it (ENOENT)
            raise OSError(errno.ENAMETOOLONG, "File name too long", str(model_dir))
        return model_dir.is_dir(), (model_dir / "config.json").is_file()
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            return False, False
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN019",
                    f"model.path cannot be read: {exc.strerror} ({len(str(model_dir))} characters)",
                    path=("model", "path"),
                    hint="a file name has at most 255 bytes and a path 4096; use the checkpoint's real "
                    "directory or a Hugging Face id",
                    location=source.locate(("model", "path")),
                )
            ]
        ) from None


def _too_long(path: Path) -> bool:
    """Longer than Linux allows anywhere: a name over NAME_MAX bytes, or the path over PATH_MAX."""
    encoded = [os.fsencode(part) for part in path.parts]
    return len(os.fsencode(str(path))) >= 4096 or any(len(part) > 255 for part in encoded)


def _read_model_config(config_path: Path, source: SourceMap) -> dict:
    try:
        with config_path.open("rb") as stream:
            text = stream.read(MAX_CONFIG_JSON_BYTES + 1)
        if len(text) > MAX_CONFIG_JSON_BYTES:
            raise ValueError(f"larger than {MAX_CONFIG_JSON_BYTES} bytes")
        config = json.loads(text.decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: deeply nested JSON
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN015",
                    f"model config {config_path} is unreadable: {reason}",
                    path=("model", "path"),
                    hint="fix the checkpoint's config.json, or state the model facts in the spec",
                    location=source.locate(("model", "path")),
                )
            ]
        ) from None
    return config if isinstance(config, dict) else {}
