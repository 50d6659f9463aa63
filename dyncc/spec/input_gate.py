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

The gate is four modules: this one (reading files, and the entry points), ``input_kind`` (the limits and
the kinds of input), ``bounded_yaml`` (YAML text to ruamel's tree) and ``yaml_tree`` (the tree's positions
and its plain data). Every name stays importable from here.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

from dyncc.diagnostics import Diagnostic, DiagnosticError, Location
from dyncc.spec.bounded_yaml import parse_yaml, parse_yaml_documents, parse_yaml_noted
from dyncc.spec.input_kind import MAX_DEPTH, MAX_NODES, MAX_SPEC_BYTES, MAX_TOKENS, MAX_VALUES, SPEC, InputKind
from dyncc.spec.yaml_tree import Expansion, SourceMap, to_plain

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_SPEC_BYTES",
    "MAX_TOKENS",
    "MAX_VALUES",
    "SPEC",
    "InputKind",
    "SourceMap",
    "UnreadableFile",
    "load_yaml_data",
    "load_yaml_documents",
    "parse_yaml",
    "parse_yaml_documents",
    "read_input",
    "read_regular",
]

_FILE_TYPES = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


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
    tree, notes = parse_yaml_noted(raw, file, kind)
    source = SourceMap(file, tree, notes)
    return to_plain(tree, file, source, Expansion(kind)), source


def load_yaml_documents(raw: bytes | str, file: str, kind: InputKind) -> list[tuple[Any, SourceMap]]:
    """Every document of a YAML stream (``---``-separated), each as plain data with its SourceMap. The
    bounds hold for the whole stream, not per document."""
    expansion = Expansion(kind)
    out = []
    for tree in parse_yaml_documents(raw, file, kind):
        source = SourceMap(file, tree)
        out.append((to_plain(tree, file, source, expansion), source))
    return out
