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

import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from dyncc.compiler.plan import encoded
from dyncc.output.disk import (
    LOCK,
    LOCK_TIMEOUT_S,
    MANIFEST,
    MAX_MANIFEST_BYTES,
    RUNTIME_DIRS,
    STAGING_MARKER,
    TMP_PREFIX,
    error,
    foreign_entries,
    is_real_dir,
    list_dir,
    make_dir,
    output_lock,
    read_error,
    read_manifest,
    read_regular,
    refuse,
    write_error,
)
from dyncc.output.swap import Staged, Tree, file_mode, recover_stale_staging, remove_staging, stage, swap_all, unpark

__all__ = [
    "LOCK",
    "LOCK_TIMEOUT_S",
    "MANIFEST",
    "MAX_MANIFEST_BYTES",
    "RUNTIME_DIRS",
    "STAGING_MARKER",
    "TMP_PREFIX",
    "Tree",
    "check_replaceable",
    "drift",
    "file_mode",
    "output_lock",
    "replace_file",
    "write_new_file",
    "write_tree",
    "write_trees",
]


def write_tree(dest: Path, files: Tree, lock_timeout: float = LOCK_TIMEOUT_S) -> None:
    """Replace ``dest`` by exactly ``files`` (relative path -> text or bytes), atomically."""
    dest = Path(dest)
    write_trees(dest.parent, {dest.name: files}, lock_timeout)


def write_trees(out: Path, trees: Mapping[str, Tree], lock_timeout: float = LOCK_TIMEOUT_S) -> None:
    """Replace ``out/<name>`` by ``trees[name]`` for every name, all or none: under ``out``'s lock, stage
    every tree, then swap them all in; on any failure the targets already swapped are swapped back."""
    out = Path(out)
    make_dir(out)
    with output_lock(out, exclusive=True, timeout=lock_timeout):
        recover_stale_staging(out)
        for name in trees:
            check_replaceable(out / name)
        staged: list[Staged] = []
        try:
            for name, files in trees.items():
                staged.append(stage(out, name, files))
            swap_all(staged)
        finally:
            for item in staged:
                unpark(item)
                remove_staging(item.root)


def drift(dest: Path, files: Tree) -> list[str]:
    """Paths that differ between ``files`` and what is on disk under ``dest`` (missing, changed, extra).

    Files that are not regular files, or not text, count as changed; nothing here blocks or raises past
    a coded error."""
    dest = Path(dest)
    with output_lock(dest.parent, exclusive=False, timeout=LOCK_TIMEOUT_S):
        changed = [rel for rel, content in sorted(files.items()) if not _holds(dest / rel, encoded(content))]
        if not is_real_dir(dest):
            return changed
        manifest = read_manifest(dest)
        if isinstance(manifest, str):
            return [*changed, f"{MANIFEST} ({manifest})"]
        return changed + [f"{rel} (no longer generated)" for rel in sorted(set(manifest) - set(files))]


def _holds(path: Path, data: bytes) -> bool:
    # Read at most one byte past what is expected: a grown or huge file differs without being read whole.
    return read_regular(path, limit=len(data)) == data


def write_new_file(path: Path, text: str) -> None:
    """Create ``path`` holding ``text``; never replaces or writes through anything already there (a file,
    a dangling symlink, a FIFO). A write that fails half-way leaves no file behind."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        kind = "a symbolic link" if path.is_symlink() else "already there"
        raise error(
            "DYN507",
            f"will not write {path}: it is {kind}",
            "choose a new file name, or remove the existing one first",
        ) from None
    except OSError as exc:
        raise write_error(exc, path) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except BaseException as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise write_error(exc, path) from None
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
        raise write_error(exc, path) from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "a directory or special file (FIFO, device)"
        raise error("DYN507", f"will not write {path}: it is {kind}", "name a regular file, or remove what is there")
    mode = stat.S_IMODE(info.st_mode) if info is not None else 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=".dyncc-", dir=path.parent or ".")
    except OSError as exc:
        raise write_error(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise write_error(exc, path) from None
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
        raise read_error(exc, dest) from None
    if stat.S_ISLNK(mode):
        raise error(
            "DYN507",
            f"will not replace output directory {dest}: it is a symbolic link",
            "point -o at the directory the link leads to, or remove the link",
        )
    if not stat.S_ISDIR(mode):
        refuse(dest, "it is a file, not a directory")
    entries = list_dir(dest)
    if not entries:
        return
    if MANIFEST not in entries:
        refuse(dest, f"it holds files dyncc did not write (no {MANIFEST})")
    manifest = read_manifest(dest)
    if isinstance(manifest, str):
        raise error(
            "DYN508",
            f"will not replace output directory {dest}: its {MANIFEST} {manifest}",
            "restore the manifest, or move the directory away if nothing in it is needed",
        )
    foreign = foreign_entries(dest, manifest)
    if foreign:
        refuse(dest, f"it holds files dyncc did not write: {', '.join(foreign)}")
