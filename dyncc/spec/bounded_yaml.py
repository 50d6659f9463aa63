"""YAML text to ruamel's round-trip tree, bounded: tokens, nodes, nesting and anchors counted while ruamel scans
and composes, tags and directives checked; every failure a located, coded :class:`DiagnosticError`."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from typing import Any

import msgspec
from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer, ReusedAnchorWarning
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent, MappingStartEvent, ScalarEvent, SequenceStartEvent
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scanner import RoundTripScanner
from ruamel.yaml.tokens import DirectiveToken, DocumentEndToken, StreamStartToken

from dyncc.diagnostics import Diagnostic, DiagnosticError, Location
from dyncc.spec.input_kind import MAX_DEPTH, MAX_NODES, MAX_TOKENS, SPEC, InputKind

# Explicit tags that only restate what YAML already resolves (`!!str 5` is the string "5"). Any other
# tag (`!!set`, `!!binary`, `!!timestamp`, `!!python/...`, `!custom`) would be dropped or turned into a
# value the deployment cannot carry, so it is refused instead.
_PLAIN_TAGS = frozenset({"!"} | {f"tag:yaml.org,2002:{kind}" for kind in ("str", "int", "float", "bool", "map", "seq")})
_YAML_VERSIONS = frozenset({(1, 1), (1, 2)})


class _Budget(msgspec.Struct):
    """What one parse has used so far, and the last position reached (for errors that carry none)."""

    file: str
    kind: InputKind
    tokens: int = 0
    nodes: int = 0
    depth: int = 0
    line: int = 0  # 0-based, as ruamel's marks
    column: int = 0
    open_anchors: set[str] = msgspec.field(default_factory=set)  # anchored collections being composed
    anchors: dict[str, Location] = msgspec.field(default_factory=dict)  # where each anchor was defined
    notes: list[Diagnostic] = msgspec.field(default_factory=list)  # warnings about valid but doubtful YAML
    in_document: bool = False  # the scanner has passed content since the last document end

    def at(self, mark: Any) -> None:
        if mark is not None:
            self.line, self.column = mark.line, mark.column

    def location(self) -> Location:
        return Location(self.file, self.line + 1, self.column + 1)


def _budget(loader: Any) -> _Budget:
    budget = getattr(loader, "dyncc_budget", None)
    assert isinstance(budget, _Budget), "the bounded YAML classes run only inside _new_yaml's parser"
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
                f"the {budget.kind.noun} has more than {MAX_TOKENS} YAML tokens",
                budget.kind.count_hint,
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
                f"the {budget.kind.noun} has more than {MAX_NODES} YAML values",
                budget.kind.count_hint,
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
                f"remove the tag: a {budget.kind.noun} holds plain strings, numbers, booleans, lists and mappings",
                where,
            )
        defined = event.anchor if isinstance(event, (ScalarEvent, SequenceStartEvent, MappingStartEvent)) else None
        if defined is not None:
            _note_redefinition(budget, defined, where)
        anchor = defined if isinstance(event, (SequenceStartEvent, MappingStartEvent)) else None
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


def _note_redefinition(budget: _Budget, anchor: str, where: Location) -> None:
    """DYN023: an anchor name defined again. YAML allows it (later aliases mean the newer value), but an alias
    written for the first one silently changes meaning; ruamel's own Python warning is not shown."""
    first = budget.anchors.get(anchor)
    budget.anchors[anchor] = where
    if first is None:
        return
    budget.notes.append(
        Diagnostic(
            "DYN023",
            f"anchor &{anchor} is defined again (first at line {first.line}): every *{anchor} after this line "
            "means this value",
            hint="give each anchor its own name",
            severity="warning",
            location=where,
        )
    )


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag[:80]


class _MarkingConstructor(RoundTripConstructor):
    """Remembers the node being built, so a plain error from a constructor still has a position."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        _budget(self.loader).at(getattr(node, "start_mark", None))
        return super().construct_object(node, deep=deep)


def _new_yaml(file: str, kind: InputKind) -> YAML:
    yaml = YAML(typ="rt", pure=True)
    if kind.yaml_version is not None:
        yaml.version = kind.yaml_version
    yaml.allow_duplicate_keys = False
    yaml.Scanner = _BoundedScanner
    yaml.Composer = _BoundedComposer
    yaml.Constructor = _MarkingConstructor
    yaml.dyncc_budget = _Budget(file, kind)  # type: ignore[attr-defined]  # read back by the classes above
    return yaml


def parse_yaml(raw: bytes | str, file: str, kind: InputKind = SPEC) -> Any:
    """The ruamel tree of one YAML document; every failure is a :class:`DiagnosticError` with a location."""
    return parse_yaml_noted(raw, file, kind)[0]


def parse_yaml_noted(raw: bytes | str, file: str, kind: InputKind = SPEC) -> tuple[Any, list[Diagnostic]]:
    """:func:`parse_yaml`, and the warnings about what the document does that YAML allows but that is likely
    a mistake (an anchor defined twice: DYN023)."""
    text = _text(raw, file, kind)
    yaml = _new_yaml(file, kind)
    with _parsing(yaml, text, file):
        tree = yaml.load(io.StringIO(text))
    return tree, list(_budget(yaml).notes)


def parse_yaml_documents(raw: bytes | str, file: str, kind: InputKind) -> list[Any]:
    """The ruamel trees of every document of a YAML stream, bounded as :func:`parse_yaml` is (for the whole
    stream)."""
    text = _text(raw, file, kind)
    yaml = _new_yaml(file, kind)
    with _parsing(yaml, text, file):
        return list(yaml.load_all(io.StringIO(text)))


def _text(raw: bytes | str, file: str, kind: InputKind) -> str:
    """``raw`` as text, refused (coded) when over ``kind``'s size cap or not UTF-8."""
    if len(raw) > kind.max_bytes:
        raise DiagnosticError(
            [
                Diagnostic(
                    kind.size_code,
                    f"{kind.noun} is larger than {kind.max_bytes} bytes",
                    hint=kind.size_hint,
                    location=Location(file, 1, 1),
                )
            ]
        )
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN001",
                    f"{kind.noun} is not UTF-8 text (bad byte at offset {exc.start})",
                    hint="save the file as UTF-8",
                    location=_byte_location(raw, exc.start, file),
                )
            ]
        ) from None


@contextlib.contextmanager
def _parsing(yaml: YAML, text: str, file: str) -> Iterator[None]:
    """Around one parse: ruamel's errors located and coded, and its ReusedAnchorWarning not printed (the
    composer notes a redefined anchor as DYN023 with its position)."""
    with _located_errors(yaml, text, file), warnings.catch_warnings():
        warnings.simplefilter("ignore", ReusedAnchorWarning)
        yield


@contextlib.contextmanager
def _located_errors(yaml: YAML, text: str, file: str) -> Iterator[None]:
    """Whatever ruamel raises while parsing ``text``, as a located DYN001 (the bounds raise their own codes)."""
    try:
        yield
    except DiagnosticError:
        raise
    except MarkedYAMLError as exc:
        raise DiagnosticError([_syntax_diagnostic(exc, file)]) from None
    except ReaderError as exc:
        raise DiagnosticError([_unreadable_diagnostic(exc, _offset_location(text, exc.position, file))]) from None
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
