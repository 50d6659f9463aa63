"""`dyncc logs DIR [COMPONENT] [-f]`: the log files of a deployment `dyncc up` started, found from its
state file, and :class:`Tail`, which reads a growing file line by line (the launch script's or the job's
output while `dyncc up` waits, a log under ``-f``).

Every process writes its own file: ``<run dir>/logs/<name>.log`` on this machine, ``run/<job
id>/logs/<name>.log`` in a Slurm job. COMPONENT is a process name (``decode-0``, ``frontend``) or a pool
(``decode``: each replica's log, in turn); without it, the launch script's or the job's own output.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.tools.lifecycle.state import DeploymentState

MAX_READ = 1024 * 1024  # per read: a huge log is printed in steps, never held whole
MAX_LINE = 64 * 1024  # a longer "line" (binary output, no newline) is printed in pieces
FOLLOW_POLL_S = 0.5
ALIVE_EVERY_S = 2.0


class Tail:
    """New complete lines of a file since the last call (the file may not exist yet, or grow)."""

    def __init__(self, path: Path, offset: int = 0):
        self.path = Path(path)
        self.offset = offset
        self._partial = b""

    def lines(self) -> list[str]:
        try:
            with open(self.path, "rb") as stream:
                stream.seek(self.offset)
                chunk = stream.read(MAX_READ)
        except OSError:
            return []
        self.offset += len(chunk)
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        if len(self._partial) > MAX_LINE:
            complete.append(self._partial)
            self._partial = b""
        return [raw.decode("utf-8", "replace") for raw in complete]

    def rest(self) -> Iterator[str]:
        """Every line still unread, the last one even without its newline (read in steps, as it goes)."""
        while True:
            lines = self.lines()
            if not lines:
                break
            yield from lines
        if self._partial:
            yield self._partial.decode("utf-8", "replace")
            self._partial = b""


def end_offset(path: Path) -> int:
    """The size of ``path`` (0 when it cannot be read): a Tail from there reads only what comes next."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def last_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of ``path``, from its last MiB at most."""
    start = max(_tail_offset(path, count), end_offset(path) - MAX_READ)
    return list(Tail(path, start).rest())[-count:]


def log_dir(state: DeploymentState) -> Path:
    if state.local is not None:
        return Path(state.local.run_dir) / "logs"
    if state.slurm is not None:
        return Path(state.directory) / "run" / state.slurm.job_id / "logs"
    raise DiagnosticError(
        [
            Diagnostic(
                "DYN599",
                f"dyncc keeps no log files for a {state.target} deployment",
                hint=f"kubectl logs -l app.kubernetes.io/part-of={state.name} --all-containers --prefix",
            )
        ]
    )


def main_log(state: DeploymentState) -> Path:
    """The launch script's output (local) or the job's (Slurm)."""
    if state.slurm is not None:
        return Path(state.slurm.output)
    from dyncc.tools.lifecycle.local import LAUNCH_LOG

    return Path(log_dir(state)).parent / LAUNCH_LOG


def component_logs(state: DeploymentState) -> dict[str, Path]:
    """name -> log file of every process that has one (workers, frontend, and etcd/NATS/broker where run)."""
    directory = log_dir(state)
    try:
        found = sorted(directory.glob("*.log"))
    except OSError:
        found = []
    logs = {path.stem: path for path in found}
    for component in state.components:  # named even before the process has written anything
        logs.setdefault(component.name, directory / f"{component.name}.log")
    return logs


def select(state: DeploymentState, component: str | None) -> list[tuple[str, Path]]:
    """The (name, file) pairs COMPONENT names: a process, or every replica of a pool; DYN599 otherwise."""
    if component is None:
        return [("", main_log(state))]
    logs = component_logs(state)
    if component in logs:
        return [(component, logs[component])]
    pools = {c.pool for c in state.components if c.pool}
    if component in pools:
        names = [c.name for c in state.components if c.pool == component]
        return [(name, logs[name]) for name in names]
    known = sorted(set(logs) | pools)
    raise DiagnosticError(
        [
            Diagnostic(
                "DYN599",
                f"no component {component!r} in the deployment {state.name}",
                hint=f"one of: {', '.join(known)}",
            )
        ]
    )


def show(
    chosen: list[tuple[str, Path]],
    echo: Callable[[str], None],
    *,
    lines: int | None,
    follow: bool,
    still_running: Callable[[], bool],
    stopping: Callable[[], bool],
) -> None:
    """Print the chosen logs (the last ``lines`` of each, or all); with ``follow``, then what they gain
    until ``stopping()`` or the deployment has ended (checked every 2 s), as `tail -f` would. Several
    files: each line prefixed with its process name."""
    prefix = len(chosen) > 1
    tails = []
    for name, path in chosen:
        tail = Tail(path, _tail_offset(path, lines))
        for line in tail.rest() if not follow else tail.lines():
            echo(f"{name} | {line}" if prefix else line)
        tails.append((name, tail))
    if not follow:
        return
    checked = time.monotonic()
    while not stopping():
        got = False
        for name, tail in tails:
            for line in tail.lines():
                got = True
                echo(f"{name} | {line}" if prefix else line)
        if time.monotonic() - checked >= ALIVE_EVERY_S:
            checked = time.monotonic()
            if not still_running():
                break
        if not got:
            time.sleep(FOLLOW_POLL_S)
    for name, tail in tails:  # what was written before the end
        for line in tail.rest():
            echo(f"{name} | {line}" if prefix else line)


def _tail_offset(path: Path, lines: int | None) -> int:
    """Where the last ``lines`` lines of ``path`` start (0: the whole file), read backwards in blocks."""
    if lines is None:
        return 0
    try:
        with open(path, "rb") as stream:
            size = stream.seek(0, 2)
            position, found = size, 0
            while position > 0:
                step = min(64 * 1024, position)
                position -= step
                stream.seek(position)
                block = stream.read(step)
                for index in range(len(block) - 1, -1, -1):
                    if block[index] == 0x0A and position + index != size - 1:
                        found += 1
                        if found == lines:
                            return position + index + 1
                if size - position > 64 * MAX_READ:  # a file of endless lines: show its last 64 MiB at most
                    return position
    except OSError:
        return 0
    return 0
