"""``dyncc lsp``: a language server (pygls, stdio) for spec files.

Diagnostics come from dyncc's own pipeline (the loader, then every graph rule and the placement), so the
editor shows each DYN code at its range as the user types, not only what the JSON Schema catches. Hover
gives a key's description from the spec's JSON Schema and, for values that reach a TRT-LLM engine config,
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

_KEY = re.compile(r"(?P<indent>\s*)(?P<dash>-\s+)?(?P<key>[A-Za-z_][\w.-]*)\s*:(?:\s|$)")
_FLOW_KEY = re.compile(r"([A-Za-z_][\w.-]*)\s*:")


# --- diagnostics ------------------------------------------------------------------------------------


def lint(text: str, file: str, base_dir: Path | None = None) -> list[Diagnostic]:
    """Every diagnostic dyncc reports for the spec ``text`` (located in ``file``): loading, rules, placement."""
    from dyncc.compiler import check_spec
    from dyncc.spec import load_spec_text

    try:
        loaded = load_spec_text(text, file, base_dir or Path(file).parent)
    except DiagnosticError as exc:
        return list(exc.diagnostics)
    _, _, diagnostics = check_spec(loaded)
    return diagnostics


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
    """For a spec value that reaches TRT-LLM engine configs: each engine key it sets, its value and origin.
    On a pool's `engine` key: the pool's whole resolved engine config. Empty when the spec does not compile."""
    from dyncc.compiler import check_spec
    from dyncc.compiler.graph import pools
    from dyncc.spec import load_spec_text

    try:
        loaded = load_spec_text(text, file, Path(file).parent)
        graph, _, _ = check_spec(loaded)
        infos = pools(graph)
    except DiagnosticError:
        return []
    except Exception:  # noqa: BLE001 - a half-typed spec may trip a rule; hover then just has no origins
        return []
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


def build_server() -> Any:
    """The pygls server (imported here: pygls is the optional `lsp` extra)."""
    from lsprotocol import types as lsp
    from pygls.lsp.server import LanguageServer

    server = LanguageServer("dyncc", __version__)
    severity = {
        "error": lsp.DiagnosticSeverity.Error,
        "warning": lsp.DiagnosticSeverity.Warning,
        "info": lsp.DiagnosticSeverity.Information,
    }

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

    def publish(ls: LanguageServer, uri: str) -> None:
        doc = ls.workspace.get_text_document(uri)
        path = uri_to_path(uri)
        found = [d for d in lint(doc.source, path) if d.location is None or d.location.file == path]
        lines = doc.source.splitlines()
        ls.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, version=doc.version, diagnostics=[to_lsp(d, lines) for d in found])
        )

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: LanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
        publish(ls, params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
        publish(ls, params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: LanguageServer, params: lsp.HoverParams) -> lsp.Hover | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        pos = params.position
        text = hover_text(doc.source, uri_to_path(doc.uri), pos.line, pos.character)
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
    build_server().start_io()


if __name__ == "__main__":
    main()
