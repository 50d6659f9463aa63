"""``dyncc lsp``: a language server (pygls, stdio) for spec files.

Diagnostics come from dyncc's own pipeline (the loader, then every graph rule and the placement), so the
editor shows each DYN code at its range as the user types, not only what the JSON Schema catches. Hover
gives a key's description from the spec's JSON Schema and, for values that reach an engine config,
which engine keys they set and where each of those keys comes from. Completion offers the keys of the
mapping under the cursor and the accepted values of an enum.

pygls is an optional dependency (``pip install dyncc[lsp]``); the pure functions here (:func:`lint`,
:func:`path_at`, :func:`hover_text`, :func:`completions`) do not need it.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from dyncc import __version__
from dyncc.diagnostics import Diagnostic, DiagnosticError, YamlPath, format_yaml_path
from dyncc.spec.loader import MAX_SPEC_BYTES

_KEY = re.compile(r"(?P<indent>\s*)(?P<dash>-\s+)?(?P<key>[A-Za-z_][\w.-]*)\s*:(?:\s|$)")
_FLOW_KEY = re.compile(r"([A-Za-z_][\w.-]*)\s*:")


# --- diagnostics ------------------------------------------------------------------------------------


def lint(text: str, file: str, base_dir: Path | None = None) -> list[Diagnostic]:
    """Every diagnostic `dyncc validate FILE` reports for the spec ``text`` (located in ``file``): loading,
    rules, placement, the checks of every target that can run it (validate's default, ``-t all``) and its
    sweep points. The same function as validate's, so the editor never says clean where CI fails."""
    from dyncc.api import validate_text

    return list(validate_text(text, file, base_dir or Path(file).parent).diagnostics)


def token_range(lines: list[str], line: int, column: int) -> tuple[int, int, int]:
    """(0-based line, start, end) of the YAML token a diagnostic's 1-based line:column points at."""
    row = max(line - 1, 0)
    text = lines[row] if row < len(lines) else ""
    start = min(max(column - 1, 0), len(text))
    rest = text[start:]
    if rest[:1] in ("'", '"'):
        close = rest.find(rest[0], 1)
        width = close + 1 if close > 0 else len(rest)
    else:
        match = re.match(r"[^\s:,#\]}]+", rest)
        width = len(match.group()) if match else 0
    return row, start, start + max(width, 1)


# --- where the cursor is ----------------------------------------------------------------------------


def path_at(text: str, line: int, character: int) -> tuple[YamlPath, bool]:
    """The YAML path of the key (or value) at a 0-based position, and whether the cursor is on a value.

    Read from indentation and flow braces rather than a parse, so it works while the file is half typed.
    """
    lines = text.splitlines()
    if line >= len(lines):
        return (), False
    current = lines[line]
    parents = _parents(lines, line, _indent_of(current))
    return _within_line(current, character, parents)


def _indent_of(text: str) -> int:
    match = _KEY.match(text)
    if match:
        return len(match["indent"]) + (len(match["dash"]) if match["dash"] else 0)
    return len(text) - len(text.lstrip(" "))


def _parents(lines: list[str], line: int, indent: int) -> YamlPath:
    """The keys of the block mappings enclosing ``line`` (each less indented than the last)."""
    found: list[str] = []
    for row in range(line - 1, -1, -1):
        match = _KEY.match(lines[row])
        if not match or lines[row].lstrip().startswith("#"):
            continue
        key_indent = len(match["indent"]) + (len(match["dash"]) if match["dash"] else 0)
        if key_indent < indent:
            found.append(match["key"])
            indent = key_indent
            if indent == 0:
                break
    return tuple(reversed(found))


def _within_line(current: str, character: int, parents: YamlPath) -> tuple[YamlPath, bool]:
    """Follow the keys and flow braces of the line up to the cursor."""
    path = list(parents)
    stack: list[int] = []  # len(path) at each open brace
    last_key: str | None = None
    on_value = False
    i = 0
    prefix = current[: max(character, 0)]
    while i < len(prefix):
        ch = prefix[i]
        if ch == "#":
            break
        if ch == "{":
            stack.append(len(path))  # what to cut back to at the matching `}`
            if last_key is not None:
                path.append(last_key)
            last_key, on_value = None, False
        elif ch == "}":
            if stack:
                del path[stack.pop() :]
            last_key, on_value = None, False
        elif ch == ",":
            last_key, on_value = None, False
        else:
            at_word_start = i == 0 or not (prefix[i - 1].isalnum() or prefix[i - 1] in "_.-")
            match = _FLOW_KEY.match(prefix, i) if at_word_start else None
            if match and not on_value:
                last_key, on_value = match.group(1), True
                i = match.end()
                continue
        i += 1
    word = _word_at(current, character)
    if last_key is None and word is not None:
        return (*path, word), False
    if last_key is not None:
        key_start = current.find(last_key + ":")
        cursor_on_key = key_start <= character <= key_start + len(last_key) and word == last_key
        return (*path, last_key), not cursor_on_key and on_value
    return tuple(path), False


def _word_at(text: str, character: int) -> str | None:
    for match in re.finditer(r"[A-Za-z_][\w.-]*", text):
        if match.start() <= character <= match.end():
            return match.group()
    return None


# --- the schema -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def spec_schema() -> dict:
    text = resources.files("dyncc.spec").joinpath("dyncc-v1.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def _resolve(node: dict) -> dict:
    """A schema node with its $ref followed and an Optional's null branch dropped."""
    defs = spec_schema().get("$defs", {})
    for _ in range(10):
        if "$ref" in node:
            merged = {k: v for k, v in node.items() if k != "$ref"}
            node = {**defs[node["$ref"].split("/")[-1]], **merged}
        elif "anyOf" in node:
            branches = [b for b in node["anyOf"] if b.get("type") != "null"]
            if len(branches) != 1:
                return node
            node = {**{k: v for k, v in node.items() if k != "anyOf"}, **branches[0]}
        else:
            return node
    return node


def schema_at(path: YamlPath) -> dict | None:
    """The schema of the value at ``path`` (keys of maps such as `env` match their pattern), or None."""
    node = _resolve(spec_schema())
    for part in path:
        props = node.get("properties") or {}
        if isinstance(part, str) and part in props:
            node = _resolve(props[part])
        elif isinstance(node.get("additionalProperties"), dict):
            node = _resolve(node["additionalProperties"])
        elif node.get("patternProperties"):
            node = _resolve(next(iter(node["patternProperties"].values())))
        elif node.get("type") == "object" and not props:
            return {}  # a free-form mapping (engine.extra): any key
        else:
            return None
    return node


def _type_text(node: dict) -> str:
    if "enum" in node:
        return " | ".join(f"`{v}`" for v in node["enum"])
    if "anyOf" in node:
        return " or ".join(b.get("type", "?") for b in node["anyOf"])
    return str(node.get("type", "object" if "properties" in node else "any"))


# --- hover ------------------------------------------------------------------------------------------


def hover_text(text: str, file: str, line: int, character: int) -> str | None:
    path, _ = path_at(text, line, character)
    if not path:
        return None
    node = schema_at(path)
    parts = [f"**{format_yaml_path(path)}**"]
    if node is None:
        parts.append("not a key of the spec here (dyncc reports DYN010)")
    else:
        if node.get("description"):
            parts.append(node["description"])
        facts = [f"type: {_type_text(node)}"]
        if "default" in node and node["default"] is not None:
            facts.append(f"default: `{json.dumps(node['default'])}`")
        parts.append(", ".join(facts))
    origins = engine_origins(text, file, path)
    if origins:
        parts.append("Engine config:\n" + "\n".join(origins))
    return "\n\n".join(parts)


def engine_origins(text: str, file: str, path: YamlPath) -> list[str]:
    """For a spec value that reaches engine configs: each engine key it sets, its value and origin.
    On a pool's `engine` key: the pool's whole resolved engine config. Empty when the spec does not compile."""
    compiled = _pool_infos(text, file)
    if compiled is None:
        return []
    loaded, infos = compiled
    whole_pool = len(path) == 3 and path[0] == "pools" and path[2] == "engine"
    lines = []
    for info in infos:
        for key, source in sorted(info.engine.sources.items()):
            mine = tuple(source.path) == tuple(path) or (whole_pool and info.role == path[1])
            if mine:
                value = info.engine.get(key)
                where = source.describe()
                if source.kind == "user" and source.path and loaded.source.has(source.path):
                    where += f" (line {loaded.source.locate(source.path).line})"
                elif source.kind == "user":
                    where = f"the spec's default for {source.detail}"  # a field the file leaves out
                lines.append(f"- {info.role}: `{key}: {json.dumps(value)}` — {where}")
    return lines


@functools.lru_cache(maxsize=4)
def _pool_infos(text: str, file: str) -> tuple[Any, list[Any]] | None:
    """The loaded spec and its pools' resolved engine configs, or None when the text does not compile.
    Cached per text: hovering key after key of an unchanged file compiles it once."""
    from dyncc.compiler import check_spec
    from dyncc.compiler.graph import pools
    from dyncc.deployment import load_spec_text

    try:
        loaded = load_spec_text(text, file, Path(file).parent)
        graph, _, _ = check_spec(loaded)
        return loaded, pools(graph)
    except DiagnosticError:
        return None
    except Exception:  # noqa: BLE001 - a half-typed spec may trip a rule; hover then just has no origins
        return None


# --- completion -------------------------------------------------------------------------------------


def completions(text: str, line: int, character: int) -> list[tuple[str, str, str]]:
    """(label, kind "key"/"value", documentation) of what may be typed at the position."""
    lines = text.splitlines() or [""]
    current = lines[line] if line < len(lines) else ""
    before = current[:character]
    value_match = re.match(r"^(\s*)(?:-\s+)?([A-Za-z_][\w.-]*)\s*:\s*(\S*)$", before)
    if value_match:
        path, _ = path_at(text, line, len(value_match.group(1)) + 1)
        node = schema_at(path)
        return [(v, "value", "") for v in _values(node)] if node is not None else []
    indent = len(before) - len(before.lstrip(" "))
    if before.strip() and not re.fullmatch(r"\s*(?:-\s+)?[A-Za-z_][\w.-]*", before):
        return []
    parents = _parents(lines, line, indent)
    node = schema_at(parents)
    if node is None:
        return []
    present = _siblings(lines, line, indent)
    props = node.get("properties") or {}
    return [
        (key, "key", _resolve(prop).get("description", "") or "") for key, prop in props.items() if key not in present
    ]


def _values(node: dict | None) -> list[str]:
    if not node:
        return []
    if "enum" in node:
        return [str(v) for v in node["enum"]]
    if "const" in node:
        return [str(node["const"])]
    if node.get("type") == "boolean":
        return ["true", "false"]
    return []


def _siblings(lines: list[str], line: int, indent: int) -> set[str]:
    """Keys already written at this indentation in the same mapping."""
    found: set[str] = set()
    for step in (-1, 1):
        row = line + step
        while 0 <= row < len(lines):
            match = _KEY.match(lines[row])
            stripped = lines[row].strip()
            if stripped and not stripped.startswith("#"):
                row_indent = len(lines[row]) - len(lines[row].lstrip(" "))
                if row_indent < indent:
                    break
                if match and row_indent == indent:
                    found.add(match["key"])
            row += step
    return found


# --- the server -------------------------------------------------------------------------------------


def uri_to_path(uri: str) -> str:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


# Lint after the edits pause this long: a burst of keystrokes is linted once, at its last version.
QUIET_S = 0.25
# The largest message read: a spec at the loader's size cap, JSON-escaped (at most 6 bytes per byte in the
# worst case), and the request around it. Bigger ones are skipped with DYN030, not read into memory.
MAX_MESSAGE_BYTES = 6 * MAX_SPEC_BYTES + 64 * 1024
# Header lines are short (`Content-Length: N`); reading one is bounded too.
MAX_HEADER_LINE = 4096
TOO_LARGE = "dyncc/messageTooLarge"  # what the reader hands on in place of a skipped body


class BoundedInput:
    """stdin for pygls's reader, bounded: a header line is read at most MAX_HEADER_LINE bytes at a time,
    and a body whose Content-Length is over MAX_MESSAGE_BYTES is not read (pygls would allocate it whole:
    10**12 ends the server with a MemoryError). In its place the reader gets a `dyncc/messageTooLarge`
    notification, and the bytes up to the next `Content-Length:` header are dropped, so a client that sent
    the message (or only claimed to) can go on."""

    HEADER = b"Content-Length:"

    def __init__(self, stream: Any):
        self.stream = stream
        self.resync = False

    def readline(self) -> bytes:
        line = self.stream.readline(MAX_HEADER_LINE)
        while self.resync and line:
            at = line.find(self.HEADER)
            if at >= 0:
                self.resync = False
                return line[at:]
            line = self.stream.readline(MAX_HEADER_LINE)
        return line

    def read(self, size: int) -> bytes:
        if size <= MAX_MESSAGE_BYTES:
            return self.stream.read(size)
        self.resync = True
        return json.dumps({"jsonrpc": "2.0", "method": TOO_LARGE, "params": {"bytes": size}}).encode()


def build_server() -> Any:
    """The pygls server (imported here: pygls is the optional `lsp` extra)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from lsprotocol import types as lsp
    from pygls.lsp.server import LanguageServer

    server = LanguageServer("dyncc", __version__)
    severity = {
        "error": lsp.DiagnosticSeverity.Error,
        "warning": lsp.DiagnosticSeverity.Warning,
        "info": lsp.DiagnosticSeverity.Information,
    }
    # One worker: lints and hovers compile off the event loop (which keeps reading the client's messages),
    # one at a time; a run queued behind it is dropped when a newer edit cancels it.
    compile_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dyncc-lint")
    pending: dict[str, asyncio.Task] = {}  # uri -> its scheduled lint

    def to_lsp(d: Diagnostic, lines: list[str]) -> lsp.Diagnostic:
        row, start, end = token_range(lines, d.location.line, d.location.column) if d.location else (0, 0, 1)
        message = f"{d.message}\nat {format_yaml_path(d.path)}" + (f"\nhint: {d.hint}" if d.hint else "")
        return lsp.Diagnostic(
            range=lsp.Range(start=lsp.Position(row, start), end=lsp.Position(row, end)),
            message=message,
            severity=severity[d.severity],
            code=d.code,
            source="dyncc",
        )

    def schedule(ls: LanguageServer, uri: str, delay: float) -> None:
        """Lint ``uri`` after ``delay`` s, replacing (cancelling) a lint scheduled or running for it."""
        previous = pending.pop(uri, None)
        if previous is not None:
            previous.cancel()
        pending[uri] = asyncio.get_running_loop().create_task(lint_later(ls, uri, delay))

    def open_document(ls: LanguageServer, uri: str) -> Any:
        return ls.workspace.text_documents.get(unquote(uri))  # pygls keys open documents by unquoted uri

    async def lint_later(ls: LanguageServer, uri: str, delay: float) -> None:
        await asyncio.sleep(delay)
        doc = open_document(ls, uri)
        if doc is None:  # closed meanwhile
            return
        version, text, path = doc.version, doc.source, uri_to_path(uri)
        found = await asyncio.get_running_loop().run_in_executor(compile_pool, lint, text, path)
        if pending.get(uri) is not asyncio.current_task():  # stale: a newer edit scheduled another lint
            return
        del pending[uri]
        lines = text.splitlines()
        shown = [to_lsp(d, lines) for d in found if d.location is None or d.location.file == path]
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, version=version, diagnostics=shown))

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: LanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
        schedule(ls, params.text_document.uri, 0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
        schedule(ls, params.text_document.uri, QUIET_S)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
        task = pending.pop(params.text_document.uri, None)
        if task is not None:
            task.cancel()
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))

    @server.feature(TOO_LARGE)
    def too_large(ls: LanguageServer, params: Any) -> None:
        size = getattr(params, "bytes", None)
        ls.window_show_message(
            lsp.ShowMessageParams(
                type=lsp.MessageType.Error,
                message=f"dyncc lsp: error DYN030: a message of {size} bytes is over the {MAX_MESSAGE_BYTES} "
                "bytes the server reads; it was skipped (a spec is at most 1 MiB)",
            )
        )

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    async def hover(ls: LanguageServer, params: lsp.HoverParams) -> lsp.Hover | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        pos = params.position
        text = await asyncio.get_running_loop().run_in_executor(
            compile_pool, hover_text, doc.source, uri_to_path(doc.uri), pos.line, pos.character
        )
        if text is None:
            return None
        return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text))

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[":", " "]))
    def complete(ls: LanguageServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        pos = params.position
        items = [
            lsp.CompletionItem(
                label=label,
                kind=lsp.CompletionItemKind.Property if kind == "key" else lsp.CompletionItemKind.EnumMember,
                insert_text=f"{label}: " if kind == "key" else label,
                documentation=doc_text or None,
            )
            for label, kind, doc_text in completions(doc.source, pos.line, pos.character)
        ]
        return lsp.CompletionList(is_incomplete=False, items=items)

    return server


def main() -> None:
    """`dyncc lsp`: serve on stdin/stdout."""
    import sys

    build_server().start_io(stdin=BoundedInput(sys.stdin.buffer))


if __name__ == "__main__":
    main()
