"""What every command shows, and how its failures end: coded diagnostics with their source line (exit 1),
or one internal-error line naming the file that holds the trace (exit 3)."""

from __future__ import annotations

import os
import select
import sys
import tempfile
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

import click

from dyncc import __version__
from dyncc.diagnostics import Diagnostic, printable

EXIT_INVALID = 1
EXIT_INTERNAL = 3
# The reader of dyncc's output went away (`dyncc validate ... | head`): the status a process that SIGPIPE ended
# has (128 + 13), as coreutils' have, not "invalid".
EXIT_READER_GONE = 141
# Parameters that name files a command writes; an OSError on any other file is a read error.
OUTPUT_PARAMS = ("out_dir", "output")


def _source_line(diagnostic: Diagnostic, cache: dict[str, list[str] | None]) -> str | None:
    loc = diagnostic.location
    if loc is None:
        return None
    if loc.file not in cache:
        try:
            cache[loc.file] = _read_text_bounded(Path(loc.file)).splitlines()
        except (OSError, UnicodeDecodeError, ValueError):
            cache[loc.file] = None
    lines = cache[loc.file]
    return lines[loc.line - 1] if lines and 0 < loc.line <= len(lines) else None


def _read_text_bounded(path: Path) -> str:
    from dyncc.spec.loader import MAX_SPEC_BYTES

    if not path.is_file():  # a device or FIFO named in a diagnostic is not read a second time
        return ""
    with path.open("rb") as stream:
        return stream.read(MAX_SPEC_BYTES + 1).decode("utf-8")


def say(text: str, err: bool = False, nl: bool = True) -> None:
    """Echo text that may hold spec content (keys, values, names) with its control characters escaped."""
    click.echo(printable(text), err=err, nl=nl)


def show(diagnostics: Iterable[Diagnostic], err: bool = True) -> None:
    cache: dict[str, list[str] | None] = {}
    for d in diagnostics:
        click.echo(d.render(_source_line(d, cache)), err=err)


def fail(diagnostics: list[Diagnostic]) -> NoReturn:
    show(diagnostics)
    errors = sum(d.is_error for d in diagnostics)
    click.echo(f"dyncc: {errors} error(s)", err=True)
    sys.exit(EXIT_INVALID)


def _is_output(filename: str, params: dict[str, Any]) -> bool:
    """Whether ``filename`` is (inside) a path the command was told to write."""
    target = Path(os.path.abspath(filename))
    for name in OUTPUT_PARAMS:
        value = params.get(name)
        if isinstance(value, str) and value:
            out = Path(os.path.abspath(value))
            if target == out or out in target.parents:
                return True
    return False


def os_error_diagnostic(exc: OSError, params: dict[str, Any]) -> Diagnostic:
    """An OSError that reached the CLI: a write to an output path, or a read of anything else."""
    reason = exc.strerror or type(exc).__name__
    filename = os.fsdecode(exc.filename) if exc.filename is not None else None
    if filename is not None and not _is_output(filename, params):
        return Diagnostic(
            "DYN020",
            f"cannot read {filename}: {reason}",
            hint="check that the path exists, is readable and is not too long",
        )
    return Diagnostic(
        "DYN505",
        f"cannot write {filename or 'output'}: {reason}",
        hint="choose an output path in a writable, existing directory",
    )


def stdout_reader_gone() -> bool:
    """Whether the pipe on stdout has no reader left (poll reports an error on its write end): a broken pipe
    elsewhere, to a child process say, is not the user's reader going away."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no descriptor (captured output): not a pipe to a reader
        return False


def reader_gone() -> NoReturn:
    """Stop quietly when the pipe dyncc writes its output to was closed: nothing more can be said there, and
    the interpreter's own flush at exit must not fail on it (stdout is pointed at the null device)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no stdout descriptor to point elsewhere: nothing left to flush either
        pass
    sys.exit(EXIT_READER_GONE)


def internal_error(exc: BaseException) -> NoReturn:
    """One line instead of a traceback; the trace goes to a file the user can attach to a bug report."""
    trace = "".join(traceback.format_exception(exc))
    where = _write_trace(trace)
    kept = f"the full trace is in {where}" if where else "the full trace could not be written anywhere"
    click.echo(f"dyncc: internal error, this is a bug in dyncc ({type(exc).__name__}); {kept}", err=True)
    sys.exit(EXIT_INTERNAL)


def _write_trace(trace: str) -> str | None:
    for directory in (tempfile.gettempdir(), _cache_dir()):
        if not directory:
            continue
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix="dyncc-crash-", suffix=".txt", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as stream:
                stream.write(f"dyncc {__version__}: {' '.join(sys.argv)}\n{trace}")
            return name
        except OSError:
            continue
    return None


def _cache_dir() -> str:
    """dyncc's cache directory (as the template cache finds it): the second place a trace may go."""
    base = os.environ.get("DYNCC_CACHE_DIR")
    if base is None:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dyncc")
    return base
