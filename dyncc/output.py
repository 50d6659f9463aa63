"""Write generated files atomically, delete only what dyncc wrote, and report drift.

Each target's files go to ``OUT/<target>/``. A build renders everything in memory, then, holding
``OUT/.dyncc.lock`` (so concurrent builds into one ``OUT`` take turns), writes every target into its own
staging directory beside the destination and only then swaps all of them in, each with one
``renameat2(RENAME_EXCHANGE)``, with catchable signals held off for those few renames. A failed build is rolled
back, so every target is either all old or all new; a killed one leaves the previous output as it was.

The tree records what it holds in ``.dyncc-manifest.json``; a destination holding anything else, at any
depth, is refused rather than overwritten. ``run/`` (logs and discovery state of a running deployment) is
carried over into the new tree. Staging directories carry an unguessable token and a marker naming it, and
only directories with a matching marker are ever removed as leftovers of a killed build.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import fcntl
import functools
import json
import os
import re
import secrets
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from dyncc.compiler.plan import FileContent, encoded
from dyncc.diagnostics import Diagnostic, DiagnosticError

MANIFEST = ".dyncc-manifest.json"
LOCK = ".dyncc.lock"
RUNTIME_DIRS = ("run",)
TMP_PREFIX = ".dyncc-tmp-"
STAGING_MARKER = ".dyncc-staging"
LOCK_TIMEOUT_S = 30.0
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_STAGING_NAME = re.compile(r"\.dyncc-tmp-(?P<target>[A-Za-z0-9_.-]+)-(?P<token>[0-9a-f]{32})")
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
# Signals a user or a job scheduler sends to stop a build; held off while targets are swapped.
_DEFERRED_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT}

Tree = Mapping[str, FileContent]


def file_mode(relpath: str) -> int:
    return 0o755 if relpath.endswith(".sh") else 0o644


# --- public API ------------------------------------------------------------------------------------


def write_tree(dest: Path, files: Tree, lock_timeout: float = LOCK_TIMEOUT_S) -> None:
    """Replace ``dest`` by exactly ``files`` (relative path -> text or bytes), atomically."""
    dest = Path(dest)
    write_trees(dest.parent, {dest.name: files}, lock_timeout)


def write_trees(out: Path, trees: Mapping[str, Tree], lock_timeout: float = LOCK_TIMEOUT_S) -> None:
    """Replace ``out/<name>`` by ``trees[name]`` for every name, all or none: under ``out``'s lock, stage
    every tree, then swap them all in; on any failure the targets already swapped are swapped back."""
    out = Path(out)
    _make_dir(out)
    with output_lock(out, exclusive=True, timeout=lock_timeout):
        _recover_stale_staging(out)
        for name in trees:
            check_replaceable(out / name)
        staged: list[_Staged] = []
        try:
            for name, files in trees.items():
                staged.append(_stage(out, name, files))
            _swap_all(staged)
        finally:
            for item in staged:
                _unpark(item)
                _remove_staging(item.root)


def drift(dest: Path, files: Tree) -> list[str]:
    """Paths that differ between ``files`` and what is on disk under ``dest`` (missing, changed, extra).

    Files that are not regular files, or not text, count as changed; nothing here blocks or raises past
    a coded error."""
    dest = Path(dest)
    with output_lock(dest.parent, exclusive=False, timeout=LOCK_TIMEOUT_S):
        changed = [rel for rel, content in sorted(files.items()) if not _holds(dest / rel, encoded(content))]
        if not _is_real_dir(dest):
            return changed
        manifest = _read_manifest(dest)
        if isinstance(manifest, str):
            return [*changed, f"{MANIFEST} ({manifest})"]
        return changed + [f"{rel} (no longer generated)" for rel in sorted(set(manifest) - set(files))]


def _holds(path: Path, data: bytes) -> bool:
    # Read at most one byte past what is expected: a grown or huge file differs without being read whole.
    return _read_regular(path, limit=len(data)) == data


def write_new_file(path: Path, text: str) -> None:
    """Create ``path`` holding ``text``; never replaces or writes through anything already there (a file,
    a dangling symlink, a FIFO). A write that fails half-way leaves no file behind."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        kind = "a symbolic link" if path.is_symlink() else "already there"
        raise _error(
            "DYN507",
            f"will not write {path}: it is {kind}",
            "choose a new file name, or remove the existing one first",
        ) from None
    except OSError as exc:
        raise _write_error(exc, path) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except BaseException as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _write_error(exc, path) from None
        raise


def replace_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file beside it, renamed over it, so a reader sees
    the old file or the new one. A regular file there is replaced (its mode kept), never written into; a
    symbolic link (live or dangling), a FIFO, a device or a directory is refused (DYN507), and one swapped
    in after that check is replaced by the rename, never written through."""
    path = Path(path)
    try:
        info: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise _write_error(exc, path) from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "a directory or special file (FIFO, device)"
        raise _error("DYN507", f"will not write {path}: it is {kind}", "name a regular file, or remove what is there")
    mode = stat.S_IMODE(info.st_mode) if info is not None else 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=".dyncc-", dir=path.parent or ".")
    except OSError as exc:
        raise _write_error(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _write_error(exc, path) from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_replaceable(dest: Path) -> None:
    """Refuse (coded) to replace ``dest`` unless it is missing, empty, or holds only what dyncc wrote."""
    try:
        mode = os.lstat(dest).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _read_error(exc, dest) from None
    if stat.S_ISLNK(mode):
        raise _error(
            "DYN507",
            f"will not replace output directory {dest}: it is a symbolic link",
            "point -o at the directory the link leads to, or remove the link",
        )
    if not stat.S_ISDIR(mode):
        _refuse(dest, "it is a file, not a directory")
    entries = _list_dir(dest)
    if not entries:
        return
    if MANIFEST not in entries:
        _refuse(dest, f"it holds files dyncc did not write (no {MANIFEST})")
    manifest = _read_manifest(dest)
    if isinstance(manifest, str):
        raise _error(
            "DYN508",
            f"will not replace output directory {dest}: its {MANIFEST} {manifest}",
            "restore the manifest, or move the directory away if nothing in it is needed",
        )
    foreign = _foreign_entries(dest, manifest)
    if foreign:
        _refuse(dest, f"it holds files dyncc did not write: {', '.join(foreign)}")


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
            raise _write_error(exc, path) from None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EROFS):
            return None  # nothing built here yet, or a tree no build can change under us either
        raise _read_error(exc, path) from None
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
                raise _error(
                    "DYN506",
                    f"another dyncc build is writing {out} (it holds {out / LOCK}); gave up after {timeout:g} s",
                    "wait for that build to finish, or build into another -o directory",
                ) from None
            time.sleep(0.02)


def _not_a_lock_file(path: Path) -> DiagnosticError:
    return _error(
        "DYN507",
        f"{path} is not dyncc's lock file (a symbolic link, directory or special file)",
        "remove it; dyncc recreates it as an empty regular file",
    )


# --- staging and swapping ----------------------------------------------------------------------------


@dataclasses.dataclass
class _Staged:
    """One target's staging directory ``root``: ``root/tree`` is the new output until the swap, the old
    one after it; ``root/old`` is where the two-rename fallback parks the old output."""

    root: Path
    dest: Path
    existed: bool = False
    swapped: bool = False
    carried: list[str] = dataclasses.field(default_factory=list)

    @property
    def tree(self) -> Path:
        return self.root / "tree"


def _stage(out: Path, name: str, files: Tree) -> _Staged:
    token = secrets.token_hex(16)
    root = out / f"{TMP_PREFIX}{name}-{token}"
    try:
        os.mkdir(root, 0o700)
    except OSError as exc:
        raise _write_error(exc, root) from None
    item = _Staged(root, out / name)
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
        _remove_staging(root)
        raise _write_error(exc, Path(exc.filename) if exc.filename else root) from None
    except BaseException:
        _remove_staging(root)
        raise
    return item


def _safe_relpath(rel: str) -> str:
    parts = rel.split("/")
    if rel.startswith("/") or any(part in ("", ".", "..") for part in parts) or parts[0] in (MANIFEST, *RUNTIME_DIRS):
        raise ValueError(f"a target rendered an unsafe output path: {rel!r}")  # a bug in a target, not user input
    return rel


def _swap_all(staged: list[_Staged]) -> None:
    """Swap every staged tree in, or (on an error) none: the ones already in are swapped back."""
    with _signals_deferred():
        try:
            for item in staged:
                _swap_in(item)
        except OSError as exc:
            for item in reversed(staged):
                if item.swapped:
                    _swap_back(item)
            raise _write_error(exc, Path(exc.filename) if exc.filename else staged[0].dest) from None


@contextmanager
def _signals_deferred() -> Iterator[None]:
    # A Ctrl-C or SIGTERM arriving mid-swap would leave some targets new and some old; held off for the
    # few renames, it lands right after, when every target is new.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _swap_in(item: _Staged) -> None:
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


def _swap_back(item: _Staged) -> None:
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


def _return_runtime(item: _Staged) -> None:
    for name in item.carried:
        if os.path.lexists(item.tree / name) and not os.path.lexists(item.dest / name):
            os.rename(item.tree / name, item.dest / name)
    item.carried.clear()


def _unpark(item: _Staged) -> None:
    # The two-rename fallback was stopped between its renames: the old output goes back before cleanup.
    old = item.root / "old"
    if _is_real_dir(old) and not os.path.lexists(item.dest):
        os.rename(old, item.dest)


def _remove_staging(root: Path) -> None:
    if _is_real_dir(root):
        shutil.rmtree(root, ignore_errors=True)


def _recover_stale_staging(out: Path) -> None:
    """Clean up after builds that were killed (we hold the lock, so none of them is still running).

    Only directories this code made are touched: the name carries a 32-hex token and the marker inside
    must repeat it. A killed two-rename swap parked the old output in ``old/``: it goes back in place."""
    for entry in _list_dir(out):
        match = _STAGING_NAME.fullmatch(entry)
        root = out / entry
        if match is None or not _is_real_dir(root):
            continue
        try:
            _recover_one(root, out / match["target"], match["token"])
        except (OSError, DiagnosticError):
            continue  # not provably ours, or not removable: leave it


def _recover_one(root: Path, dest: Path, token: str) -> None:
    marker = _read_regular(root / STAGING_MARKER, limit=4096)
    if marker is None:
        _rmdir_if_empty(root)  # killed between mkdir and the marker: nothing in it to lose
        return
    recorded = json.loads(marker)
    if not isinstance(recorded, dict) or recorded.get("token") != token:
        return
    old = root / "old"
    if _is_real_dir(old) and not os.path.lexists(dest):
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


# --- reading what is on disk, without blocking or following links -----------------------------------


def _read_regular(path: Path, limit: int = MAX_MANIFEST_BYTES) -> bytes | None:
    """The bytes of a regular file; None for anything else (missing, a link, a FIFO, a device, too big)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.ENOTDIR):
            return None
        raise _read_error(exc, path) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(limit + 1)
    except OSError as exc:
        raise _read_error(exc, path) from None
    finally:
        os.close(fd)


def _read_manifest(dest: Path) -> list[str] | str:
    """The files the manifest lists, or why it cannot be trusted."""
    data = _read_regular(dest / MANIFEST)
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


def _foreign_entries(dest: Path, manifest: list[str], limit: int = 5) -> list[str]:
    """Up to ``limit`` paths under ``dest`` the manifest does not account for: a file it does not list, a
    directory no listed file is in, or anything that is not a plain file or directory."""
    files = set(manifest)
    dirs = {"/".join(rel.split("/")[:i]) for rel in manifest for i in range(1, rel.count("/") + 1)}
    foreign: list[str] = []
    pending = [""]
    while pending and len(foreign) < limit:
        prefix = pending.pop()
        for name in sorted(_list_dir(dest / prefix if prefix else dest)):
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


def _list_dir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except OSError as exc:
        raise _read_error(exc, path) from None


def _lstat_mode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except OSError as exc:
        raise _read_error(exc, path) from None


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _make_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(exc, Path(exc.filename) if exc.filename else out) from None


# --- diagnostics ------------------------------------------------------------------------------------


def _error(code: str, message: str, hint: str) -> DiagnosticError:
    # No file:line location: the path (named in the message) may be a directory or a FIFO, which a
    # diagnostic printer must not try to open for the source line.
    return DiagnosticError([Diagnostic(code, message, hint=hint)])


def _refuse(dest: Path, why: str) -> None:
    raise _error(
        "DYN502",
        f"will not replace output directory {dest}: {why}",
        "choose another -o directory, or move those files away",
    )


def _write_error(exc: OSError, path: Path) -> DiagnosticError:
    return _error(
        "DYN505",
        f"cannot write {path}: {exc.strerror or type(exc).__name__}",
        "choose an output path in a writable, existing directory with free space",
    )


def _read_error(exc: OSError, path: Path) -> DiagnosticError:
    return _error(
        "DYN509",
        f"cannot read {path} (existing output): {exc.strerror or type(exc).__name__}",
        "make the output directory readable, or build into another -o directory",
    )
