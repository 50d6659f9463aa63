"""Write generated files atomically, delete only what dyncc wrote, and report drift.

Each target's files go to ``OUT/<target>/``. A build renders everything in memory, writes it to a
temporary directory beside the destination, then swaps the two with one ``renameat2(RENAME_EXCHANGE)``
(two renames where the kernel lacks it). A failed or killed build therefore leaves the previous
output as it was. The tree records what it holds in ``.dyncc-manifest.json``; a destination holding
anything else is refused rather than overwritten. ``run/`` (logs and discovery state of a running
deployment) is carried over into the new tree.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from dyncc.diagnostics import Diagnostic, DiagnosticError, Location

MANIFEST = ".dyncc-manifest.json"
RUNTIME_DIRS = ("run",)
TMP_PREFIX = ".dyncc-tmp-"
_RENAME_EXCHANGE = 2


def file_mode(relpath: str) -> int:
    return 0o755 if relpath.endswith(".sh") else 0o644


def write_tree(dest: Path, files: dict[str, str]) -> None:
    """Replace ``dest`` by exactly ``files`` (relative path -> text), atomically."""
    dest = Path(dest)
    _check_owned(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(dest.parent)
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + dest.name + "-", dir=dest.parent))
    try:
        for rel, text in sorted(files.items()):
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            path.chmod(file_mode(rel))
        (tmp / MANIFEST).write_text(json.dumps({"generator": "dyncc", "files": sorted(files)}, indent=1) + "\n")
        tmp.chmod(0o755)
        if dest.exists():
            _swap_in(tmp, dest)
            shutil.rmtree(tmp)  # now holds the previous output
        else:
            os.rename(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(new: Path, dest: Path) -> None:
    """Exchange ``new`` and ``dest``, carrying ``dest``'s runtime state over; undone if the swap fails."""
    moved = []
    try:
        for name in RUNTIME_DIRS:
            if (dest / name).is_dir():
                os.rename(dest / name, new / name)
                moved.append(name)
        _exchange(new, dest)
    except BaseException:
        for name in moved:
            if (new / name).is_dir() and not (dest / name).exists():
                os.rename(new / name, dest / name)
        raise


def drift(dest: Path, files: dict[str, str]) -> list[str]:
    """Paths that differ between ``files`` and what is on disk under ``dest`` (missing, changed, extra)."""
    dest = Path(dest)
    changed = []
    for rel, text in sorted(files.items()):
        path = dest / rel
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            changed.append(rel)
    changed += [f"{rel} (no longer generated)" for rel in sorted(set(_manifest_files(dest)) - set(files))]
    return changed


def _manifest_files(dest: Path) -> list[str]:
    try:
        return list(json.loads((dest / MANIFEST).read_text())["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _check_owned(dest: Path) -> None:
    if not dest.exists():
        return
    if not dest.is_dir():
        _refuse(dest, "it is a file, not a directory")
    entries = {p.name for p in dest.iterdir()}
    if not entries:
        return
    if MANIFEST not in entries:
        _refuse(dest, "it holds files dyncc did not write (no .dyncc-manifest.json)")
    owned = {rel.split("/")[0] for rel in _manifest_files(dest)} | {MANIFEST, *RUNTIME_DIRS}
    foreign = sorted(entries - owned)
    if foreign:
        _refuse(dest, f"it holds files dyncc did not write: {', '.join(foreign[:5])}")


def _refuse(dest: Path, why: str) -> None:
    raise DiagnosticError(
        [
            Diagnostic(
                "DYN502",
                f"will not replace output directory {dest}: {why}",
                hint="choose another -o directory, or move those files away",
                location=Location(str(dest), 1, 1),
            )
        ]
    )


def _remove_stale_temps(parent: Path) -> None:
    # Left by a build that was killed; the prefix is ours alone.
    for stale in parent.glob(TMP_PREFIX + "*"):
        shutil.rmtree(stale, ignore_errors=True)


def _exchange(a: Path, b: Path) -> None:
    libc_name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(libc_name, use_errno=True) if libc_name else None
    renameat2 = getattr(libc, "renameat2", None) if libc else None
    if renameat2 is not None:
        at_fdcwd = -100
        if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
            return
    # No atomic exchange here: two renames, with only a moment where `b` is absent.
    aside = b.with_name(TMP_PREFIX + "old-" + b.name)
    os.rename(b, aside)
    os.rename(a, b)
    os.rename(aside, a)
