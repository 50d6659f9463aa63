"""The output directory as it is on disk: its names, its lock, reading it without blocking or following links,
and the coded errors for what cannot be read or written."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dyncc.diagnostics import Diagnostic, DiagnosticError

MANIFEST = ".dyncc-manifest.json"
LOCK = ".dyncc.lock"
RUNTIME_DIRS = ("run",)
TMP_PREFIX = ".dyncc-tmp-"
STAGING_MARKER = ".dyncc-staging"
LOCK_TIMEOUT_S = 30.0
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


# --- the lock ----------------------------------------------------------------------------------------


@contextmanager
def output_lock(out: Path, exclusive: bool, timeout: float) -> Iterator[None]:
    """Hold ``out/.dyncc.lock``: exclusive to write, shared to read. Waits at most ``timeout`` seconds.

    A reader creates nothing: with no lock file (no build ever wrote here) it goes on unlocked."""
    fd = _open_lock(out / LOCK, create=exclusive)
    if fd is None:
        yield
        return
    try:
        _acquire(fd, out, exclusive, timeout)
        yield
    finally:
        os.close(fd)  # releases the lock


def _open_lock(path: Path, create: bool) -> int | None:
    # O_NONBLOCK: a FIFO planted as the lock file must not block the open; O_NOFOLLOW: nor a symlink redirect it.
    access = os.O_RDWR | os.O_CREAT if create else os.O_RDONLY
    flags = access | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            raise _not_a_lock_file(path) from None
        if create:
            raise write_error(exc, path) from None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EROFS):
            return None  # nothing built here yet, or a tree no build can change under us either
        raise read_error(exc, path) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _not_a_lock_file(path)
    return fd


def _acquire(fd: int, out: Path, exclusive: bool, timeout: float) -> None:
    operation = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, operation)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise error(
                    "DYN506",
                    f"another dyncc build is writing {out} (it holds {out / LOCK}); gave up after {timeout:g} s",
                    "wait for that build to finish, or build into another -o directory",
                ) from None
            time.sleep(0.02)


def _not_a_lock_file(path: Path) -> DiagnosticError:
    return error(
        "DYN507",
        f"{path} is not dyncc's lock file (a symbolic link, directory or special file)",
        "remove it; dyncc recreates it as an empty regular file",
    )


# --- reading what is on disk, without blocking or following links -----------------------------------


def read_regular(path: Path, limit: int = MAX_MANIFEST_BYTES) -> bytes | None:
    """The bytes of a regular file; None for anything else (missing, a link, a FIFO, a device, too big)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.ENOTDIR):
            return None
        raise read_error(exc, path) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(limit + 1)
    except OSError as exc:
        raise read_error(exc, path) from None
    finally:
        os.close(fd)


def read_manifest(dest: Path) -> list[str] | str:
    """The files the manifest lists, or why it cannot be trusted."""
    data = read_regular(dest / MANIFEST)
    if data is None:
        return "is missing, not a regular file, or larger than 16 MiB"
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "is not valid JSON"
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, str) and _is_plain_relpath(f) for f in files):
        return "is corrupt: expected a `files` list of relative paths"
    return files


def _is_plain_relpath(rel: str) -> bool:
    return bool(rel) and not rel.startswith("/") and all(part not in ("", ".", "..") for part in rel.split("/"))


def foreign_entries(dest: Path, manifest: list[str], limit: int = 5) -> list[str]:
    """Up to ``limit`` paths under ``dest`` the manifest does not account for: a file it does not list, a
    directory no listed file is in, or anything that is not a plain file or directory."""
    files = set(manifest)
    dirs = {"/".join(rel.split("/")[:i]) for rel in manifest for i in range(1, rel.count("/") + 1)}
    foreign: list[str] = []
    pending = [""]
    while pending and len(foreign) < limit:
        prefix = pending.pop()
        for name in sorted(list_dir(dest / prefix if prefix else dest)):
            rel = f"{prefix}/{name}" if prefix else name
            if not prefix and name in (MANIFEST, *RUNTIME_DIRS):
                continue
            mode = _lstat_mode(dest / rel)
            if stat.S_ISREG(mode) and rel in files:
                continue
            if stat.S_ISDIR(mode) and rel in dirs:
                pending.append(rel)
                continue
            foreign.append(rel)
    return foreign[:limit]


def list_dir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except OSError as exc:
        raise read_error(exc, path) from None


def _lstat_mode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except OSError as exc:
        raise read_error(exc, path) from None


def is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def make_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, Path(exc.filename) if exc.filename else out) from None


# --- diagnostics ------------------------------------------------------------------------------------


def error(code: str, message: str, hint: str) -> DiagnosticError:
    # No file:line location: the path (named in the message) may be a directory or a FIFO, which a
    # diagnostic printer must not try to open for the source line.
    return DiagnosticError([Diagnostic(code, message, hint=hint)])


def refuse(dest: Path, why: str) -> None:
    raise error(
        "DYN502",
        f"will not replace output directory {dest}: {why}",
        "choose another -o directory, or move those files away",
    )


def write_error(exc: OSError, path: Path) -> DiagnosticError:
    return error(
        "DYN505",
        f"cannot write {path}: {exc.strerror or type(exc).__name__}",
        "choose an output path in a writable, existing directory with free space",
    )


def read_error(exc: OSError, path: Path) -> DiagnosticError:
    return error(
        "DYN509",
        f"cannot read {path} (existing output): {exc.strerror or type(exc).__name__}",
        "make the output directory readable, or build into another -o directory",
    )
