"""Staging every target's files beside its destination, and swapping them all in (or none): one
``renameat2(RENAME_EXCHANGE)`` each, with catchable signals held off; the clean-up after a killed build."""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import re
import secrets
import shutil
import signal
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import msgspec

from dyncc.compiler.plan import FileContent, encoded
from dyncc.diagnostics import DiagnosticError
from dyncc.output.disk import (
    MANIFEST,
    RUNTIME_DIRS,
    STAGING_MARKER,
    TMP_PREFIX,
    is_real_dir,
    list_dir,
    read_regular,
    write_error,
)

_STAGING_NAME = re.compile(r"\.dyncc-tmp-(?P<target>[A-Za-z0-9_.-]+)-(?P<token>[0-9a-f]{32})")
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
# Signals a user or a job scheduler sends to stop a build; held off while targets are swapped.
_DEFERRED_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT}
Tree = Mapping[str, FileContent]


def file_mode(relpath: str) -> int:
    return 0o755 if relpath.endswith(".sh") else 0o644


# --- staging and swapping ----------------------------------------------------------------------------


class Staged(msgspec.Struct):
    """One target's staging directory ``root``: ``root/tree`` is the new output until the swap, the old
    one after it; ``root/old`` is where the two-rename fallback parks the old output."""

    root: Path
    dest: Path
    existed: bool = False
    swapped: bool = False
    carried: list[str] = msgspec.field(default_factory=list)

    @property
    def tree(self) -> Path:
        return self.root / "tree"


def stage(out: Path, name: str, files: Tree) -> Staged:
    token = secrets.token_hex(16)
    root = out / f"{TMP_PREFIX}{name}-{token}"
    try:
        os.mkdir(root, 0o700)
    except OSError as exc:
        raise write_error(exc, root) from None
    item = Staged(root, out / name)
    try:
        (root / STAGING_MARKER).write_text(json.dumps({"token": token, "target": name}) + "\n", encoding="utf-8")
        tree = item.tree
        tree.mkdir()
        for rel, content in sorted(files.items()):
            path = tree / _safe_relpath(rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encoded(content))
            path.chmod(file_mode(rel))
        manifest = json.dumps({"generator": "dyncc", "files": sorted(files)}, indent=1) + "\n"
        (tree / MANIFEST).write_text(manifest, encoding="utf-8")
        tree.chmod(0o755)
    except OSError as exc:
        remove_staging(root)
        raise write_error(exc, Path(exc.filename) if exc.filename else root) from None
    except BaseException:
        remove_staging(root)
        raise
    return item


def _safe_relpath(rel: str) -> str:
    parts = rel.split("/")
    if rel.startswith("/") or any(part in ("", ".", "..") for part in parts) or parts[0] in (MANIFEST, *RUNTIME_DIRS):
        raise ValueError(f"a target rendered an unsafe output path: {rel!r}")  # a bug in a target, not user input
    return rel


def swap_all(staged: list[Staged]) -> None:
    """Swap every staged tree in, or (on an error) none: the ones already in are swapped back."""
    with _signals_deferred():
        try:
            for item in staged:
                _swap_in(item)
        except OSError as exc:
            for item in reversed(staged):
                if item.swapped:
                    _swap_back(item)
            raise write_error(exc, Path(exc.filename) if exc.filename else staged[0].dest) from None


@contextmanager
def _signals_deferred() -> Iterator[None]:
    # A Ctrl-C or SIGTERM arriving mid-swap would leave some targets new and some old; held off for the
    # few renames, it lands right after, when every target is new.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _swap_in(item: Staged) -> None:
    item.existed = os.path.lexists(item.dest)
    if not item.existed:
        _rename_noreplace(item.tree, item.dest)
        item.swapped = True
        return
    for name in RUNTIME_DIRS:
        if os.path.lexists(item.dest / name):
            os.rename(item.dest / name, item.tree / name)
            item.carried.append(name)
    try:
        _exchange(item.tree, item.dest, item.root / "old")
    except OSError:
        _return_runtime(item)
        raise
    item.swapped = True


def _swap_back(item: Staged) -> None:
    # Best effort: the rollback of one target must not stop the others' rollback.
    try:
        if item.existed:
            _exchange(item.tree, item.dest, item.root / "old")
            _return_runtime(item)
        else:
            os.rename(item.dest, item.tree)
        item.swapped = False
    except OSError:
        pass


def _return_runtime(item: Staged) -> None:
    for name in item.carried:
        if os.path.lexists(item.tree / name) and not os.path.lexists(item.dest / name):
            os.rename(item.tree / name, item.dest / name)
    item.carried.clear()


def unpark(item: Staged) -> None:
    # The two-rename fallback was stopped between its renames: the old output goes back before cleanup.
    old = item.root / "old"
    if is_real_dir(old) and not os.path.lexists(item.dest):
        os.rename(old, item.dest)


def remove_staging(root: Path) -> None:
    if is_real_dir(root):
        shutil.rmtree(root, ignore_errors=True)


def recover_stale_staging(out: Path) -> None:
    """Clean up after builds that were killed (we hold the lock, so none of them is still running).

    Only directories this code made are touched: the name carries a 32-hex token and the marker inside
    must repeat it. A killed two-rename swap parked the old output in ``old/``: it goes back in place."""
    for entry in list_dir(out):
        match = _STAGING_NAME.fullmatch(entry)
        root = out / entry
        if match is None or not is_real_dir(root):
            continue
        try:
            _recover_one(root, out / match["target"], match["token"])
        except (OSError, DiagnosticError):
            continue  # not provably ours, or not removable: leave it


def _recover_one(root: Path, dest: Path, token: str) -> None:
    marker = read_regular(root / STAGING_MARKER, limit=4096)
    if marker is None:
        _rmdir_if_empty(root)  # killed between mkdir and the marker: nothing in it to lose
        return
    recorded = json.loads(marker)
    if not isinstance(recorded, dict) or recorded.get("token") != token:
        return
    old = root / "old"
    if is_real_dir(old) and not os.path.lexists(dest):
        os.rename(old, dest)
    shutil.rmtree(root, ignore_errors=True)


def _rmdir_if_empty(path: Path) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


# --- renames ----------------------------------------------------------------------------------------


def _renameat2(a: Path, b: Path, flags: int) -> int:
    """0 on success, else the errno; ENOSYS where libc has no renameat2."""
    func = _libc_renameat2()
    if func is None:
        return errno.ENOSYS
    if func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), flags) == 0:
        return 0
    return ctypes.get_errno()


@functools.cache
def _libc_renameat2() -> Callable[..., int] | None:
    # The C library the process has loaded already (dlopen(NULL)); finding it by name (ctypes.util) ran
    # `ldconfig -p` in a subprocess on every build.
    return getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)


def _unsupported(err: int) -> bool:
    # The kernel or file system lacks the flag (old kernels, some network and FUSE file systems).
    return err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP)


def _exchange(a: Path, b: Path, aside: Path) -> None:
    """Exchange ``a`` and ``b`` atomically; without kernel support, with two renames through ``aside``,
    undoing the first when the second fails. Any other failure is raised, never papered over."""
    err = _renameat2(a, b, _RENAME_EXCHANGE)
    if err == 0:
        return
    if not _unsupported(err):
        raise OSError(err, os.strerror(err), str(b))
    os.rename(b, aside)
    try:
        os.rename(a, b)
    except OSError:
        os.rename(aside, b)
        raise
    os.rename(aside, a)


def _rename_noreplace(a: Path, b: Path) -> None:
    err = _renameat2(a, b, _RENAME_NOREPLACE)
    if err == 0:
        return
    if not _unsupported(err):
        raise OSError(err, os.strerror(err), str(b))
    if os.path.lexists(b):
        raise OSError(errno.EEXIST, os.strerror(errno.EEXIST), str(b))
    os.rename(a, b)
