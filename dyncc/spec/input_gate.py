"""The one gate every file dyncc reads goes through: a spec, the manifests and engine configs `dyncc import`
reads, a model's config.json, a mock-engine timing file.

Reading: regular files only (a FIFO, a device or a directory is refused at once, never opened for a read
that could block or never end), a size cap checked before reading and again while reading. Parsing YAML:
ruamel's round-trip parser with bounds on bytes, tokens, nodes, nesting and alias expansion, tags and
directives checked; every refusal is a :class:`DiagnosticError` with a stable code and the file's path
(file:line:col where there is a position). Each kind of input (:class:`InputKind`) names the code its
read failures take; YAML content problems take the loading codes (DYN001, DYN012, DYN016-DYN018) whatever
the file.

:class:`SourceMap` keeps ruamel's position marks, so any later step can point at the exact value it
complains about.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scanner import RoundTripScanner
from ruamel.yaml.tokens import DirectiveToken, DocumentEndToken, StreamStartToken

from dyncc.diagnostics import Diagnostic, DiagnosticError, Location, YamlPath

# Limits that bound the time and memory of loading whatever the input. ruamel's pure-Python round-trip
# parser is the cost: ~1-3 us per character and ~70-150 us per value (measured), so the byte cap bounds
# scanning to a few seconds and the node cap bounds everything after it; real specs are 1-2 KB with a few
# hundred values, a DynamoGraphDeployment with its ConfigMaps a few KB. Past any limit the file is refused
# with a coded error, not parsed further.
MAX_SPEC_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 10_000  # YAML nodes as written (scalars, collections, keys, alias uses)
MAX_VALUES = 20_000  # values after aliases are expanded (an alias to a list of 1000 counts 1000)
MAX_TOKENS = 8 * MAX_NODES  # scanner tokens: a backstop for input that makes tokens but no nodes

# Explicit tags that only restate what YAML already resolves (`!!str 5` is the string "5"). Any other
# tag (`!!set`, `!!binary`, `!!timestamp`, `!!python/...`, `!custom`) would be dropped or turned into a
# value the deployment cannot carry, so it is refused instead.
_PLAIN_TAGS = frozenset({"!"} | {f"tag:yaml.org,2002:{kind}" for kind in ("str", "int", "float", "bool", "map", "seq")})
_YAML_VERSIONS = frozenset({(1, 1), (1, 2)})
_FILE_TYPES = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


@dataclasses.dataclass(frozen=True)
class InputKind:
    """A kind of file dyncc reads: what messages call it, its size cap, and the codes of its refusals."""

    noun: str  # "spec", "manifest": "cannot read spec file", "the manifest has more than ..."
    read_code: str  # missing, not a regular file, no permission
    read_hint: str
    max_bytes: int = MAX_SPEC_BYTES
    size_code: str = "DYN001"  # over max_bytes
    size_hint: str = "a spec is a few KB; point at the spec file, not a checkpoint or a device"
    count_hint: str = "a spec has hundreds of values, not tens of thousands; split or shorten it"
    # The YAML version a document without a %YAML directive is read as: 1.2 for a spec; 1.1 for what
    # Kubernetes and the engines (PyYAML) read, where `on`, `yes` and `0777` mean what they meant there.
    yaml_version: tuple[int, int] | None = None


SPEC = InputKind("spec", "DYN002", "pass the path of a spec YAML file")


class UnreadableFile(Exception):
    """A file :func:`read_regular` refuses: ``reason`` says why; ``too_large`` when only its size is wrong."""

    def __init__(self, reason: str, too_large: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.too_large = too_large


def read_regular(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; :class:`UnreadableFile` for anything else.

    The type is checked before opening and again on the open descriptor (the name may be swapped between
    the two), and the open is non-blocking, so a FIFO never waits for a writer; the read stops one byte
    past the cap, so a file that grows while read cannot fill memory."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise UnreadableFile(_not_regular(mode))
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise UnreadableFile(_reason(exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile(_not_regular(info.st_mode))
        if info.st_size > max_bytes:
            raise UnreadableFile(f"larger than {max_bytes} bytes ({info.st_size})", too_large=True)
        chunks: list[bytes] = []
        left = max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        if left <= 0:
            raise UnreadableFile(f"larger than {max_bytes} bytes", too_large=True)
        return b"".join(chunks)
    except OSError as exc:
        raise UnreadableFile(_reason(exc)) from None
    finally:
        os.close(fd)


def _not_regular(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return os.strerror(errno.EISDIR)
    return f"not a regular file ({_FILE_TYPES.get(stat.S_IFMT(mode), 'a special file')})"


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def read_input(path: str | Path, kind: InputKind = SPEC) -> bytes:
    """:func:`read_regular` with ``kind``'s cap, its refusals as coded errors located at the file."""
    name = str(path)
    try:
        return read_regular(path, kind.max_bytes)
    except UnreadableFile as exc:
        if exc.too_large:
            diagnostic = Diagnostic(
                kind.size_code, f"{kind.noun} is {exc.reason}", hint=kind.size_hint, location=Location(name, 1, 1)
            )
        else:
            diagnostic = Diagnostic(
                kind.read_code,
                f"cannot read {kind.noun} file: {exc.reason}",
                hint=kind.read_hint,
                location=Location(name, 1, 1),
            )
        raise DiagnosticError([diagnostic]) from None


def load_yaml_data(raw: bytes | str, file: str = "<string>", kind: InputKind = SPEC) -> tuple[Any, SourceMap]:
    """The document as plain Python data, with the SourceMap that locates its values."""
    tree = parse_yaml(raw, file, kind)
    source = SourceMap(file, tree)
    return _to_plain(tree, file, source, _Expansion(kind)), source


def load_yaml_documents(raw: bytes | str, file: str, kind: InputKind) -> list[tuple[Any, SourceMap]]:
    """Every document of a YAML stream (``---``-separated), each as plain data with its SourceMap. The
    bounds hold for the whole stream, not per document."""
    expansion = _Expansion(kind)
    out = []
    for tree in parse_yaml_documents(raw, file, kind):
        source = SourceMap(file, tree)
        out.append((_to_plain(tree, file, source, expansion), source))
    return out


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


# --- YAML text -> ruamel tree, bounded ---------------------------------------------------------


@dataclasses.dataclass
class _Budget:
    """What one parse has used so far, and the last position reached (for errors that carry none)."""

    file: str
    kind: InputKind
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
    text = _text(raw, file, kind)
    yaml = _new_yaml(file, kind)
    with _located_errors(yaml, text, file):
        return yaml.load(io.StringIO(text))


def parse_yaml_documents(raw: bytes | str, file: str, kind: InputKind) -> list[Any]:
    """The ruamel trees of every document of a YAML stream, bounded as :func:`parse_yaml` is (for the whole
    stream)."""
    text = _text(raw, file, kind)
    yaml = _new_yaml(file, kind)
    with _located_errors(yaml, text, file):
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


# --- ruamel tree -> plain data, bounded --------------------------------------------------------


@dataclasses.dataclass
class _Expansion:
    """Values produced so far, and the collections already converted (seeing one again is an alias use)."""

    kind: InputKind = SPEC
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
