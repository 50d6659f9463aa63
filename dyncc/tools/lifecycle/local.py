"""`dyncc up` on this machine, and status/down of what it started.

launch.sh does the process management (readiness, logs, restarts, stopping everything); this module starts
it in a session of its own with its output in ``run/launch.log`` (so `dyncc logs` and `dyncc status` read
it from any shell, and a detached deployment keeps it after `dyncc up` exits), relays that output, writes
the state file, and turns Ctrl-C, SIGTERM or SIGHUP into a clean stop. In the foreground the script gets
the parent-death signal, so a killed `dyncc up` takes its deployment with it; detached, it outlives
`dyncc up` and `dyncc down DIR` stops it.

`down` signals the launch script only if its pid is still the process recorded (same start time, same
boot), then stops whatever still holds the deployment's lock file open: launch.sh passes that open file to
every process it starts, so the processes of this deployment are exactly its holders, whatever their names.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from dyncc.api import BuildResult
from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.tools.lifecycle import facts, run
from dyncc.tools.lifecycle.logs import Tail
from dyncc.tools.lifecycle.state import (
    DeploymentState,
    LocalRun,
    boot_id,
    is_same_process,
    now,
    read_state,
    start_ticks,
    update_state,
    write_state,
)

LAUNCH_LOG = "launch.log"
# launch.sh's lines naming what it started: "started NAME (pid N)", "restarted NAME (pid N, ...)", and the
# event broker's "event broker on HOST:PORTS (pid N)".
STARTED = re.compile(r"^dyncc: (?:started|restarted) (\S+) \(pid (\d+)|^dyncc: (event broker) on \S+ \(pid (\d+)")
POLL_S = 0.2
STOP_WAIT_S = 20  # launch.sh stops its processes within 8 s, then reaps them
Echo = Callable[[str], None]


class Launched(run.LaunchScript):
    """launch.sh running in its own session, its output appended to ``run_dir/launch.log`` (a detached one
    outlives dyncc); ``relay`` echoes what it wrote since the last call."""

    def __init__(self, script: Path, run_dir: Path, detached: bool):
        run_dir.mkdir(parents=True, exist_ok=True)
        self.log = run_dir / LAUNCH_LOG
        with open(self.log, "wb") as out:  # the child keeps its own descriptor
            super().__init__(script, out, pdeathsig=not detached)
        self.ticks = start_ticks(self.process.pid) or 0
        self._tail = Tail(self.log)

    def relay(self, echo: Echo) -> None:
        """Echo the lines the script wrote since the last call; note the ready line's URL."""
        for line in self._tail.lines():
            echo(self.noted(line))

    def stop(self, echo: Echo) -> int:
        status = self.stop_within(STOP_WAIT_S)
        kill_leftovers(Path(self.log).parent / run.LOCK_FILE)
        self.relay(echo)
        return status


Bench = Callable[[DeploymentState, threading.Event], int]


def up(result: BuildResult, timeout: float, *, smoke: bool, detach: bool, bench: Bench | None, echo: Echo) -> int:
    """Start the built local deployment. Foreground: serve until Ctrl-C/SIGTERM/SIGHUP or `dyncc down`
    (exit 0), or until a process dies (non-zero). ``smoke``: test once ready, then stop. ``detach``: test
    once ready and leave it running. ``bench``: run the gate once tested (then stop, unless ``detach``).

    Raises DiagnosticError before starting anything when a deployment runs from the directory (DYN522) or
    a port it needs is taken (DYN521)."""
    (output,) = result.outputs
    directory, compilation = output.directory, result.compilation
    plan, settings = compilation.plan, compilation.loaded.spec.local
    run.refuse_if_running(directory)
    problems = run.taken_ports(plan, settings)
    if problems:
        raise DiagnosticError(problems)
    run_dir = run.run_dir(directory)
    parts = facts.components(compilation, settings.http_port, settings.system_port_base)
    state = facts.new_state(compilation, "local", directory, parts)
    stopping = threading.Event()
    started: list[Launched] = []  # set once launch.sh runs; a signal before that stops it as soon as it does

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            echo(f"dyncc up: {signal.Signals(signum).name}, stopping the deployment")
        for launched in started:
            launched.terminate()

    previous = {s: signal.signal(s, on_signal) for s in run.STOP_SIGNALS}
    keep_running = False
    try:
        launched = Launched(directory / "launch.sh", run_dir, detached=detach)
        started.append(launched)
        if stopping.is_set():
            launched.terminate()
        local = LocalRun(
            pid=launched.process.pid,
            start_ticks=launched.ticks,
            boot_id=boot_id(),
            run_dir=str(run_dir),
            detached=detach,
        )
        state = state.model_copy(update={"local": local})
        write_state(state)
        if not _wait_ready(launched, timeout, echo, stopping):
            if stopping.is_set():
                launched.stop(echo)
                return 0
            return _not_ready(launched, echo)
        assert launched.url is not None
        state = update_state(state, url=launched.url)
        tail = "" if detach or smoke or bench else " (Ctrl-C to stop)"
        echo(f"dyncc up: serving {plan.served_name} at {launched.url}/v1{tail}")
        passed = smoke_test(launched.url, plan.served_name, echo)
        if not passed or (smoke and not detach and bench is None):
            launched.stop(echo)
            return 0 if passed else 1
        status = bench(state, stopping) if bench is not None else 0
        if detach and not stopping.is_set():
            keep_running = True
            echo(f"dyncc up: detached: launch.sh pid {launched.process.pid}, logs in {run_dir / 'logs'}")
            echo(f"  dyncc status {directory}   dyncc logs {directory} [COMPONENT] [-f]   dyncc down {directory}")
            return status
        if bench is not None:  # the gate's verdict (non-zero when interrupted), then stop
            launched.stop(echo)
            return status
        return _serve(launched, state, echo, stopping)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if started and not keep_running:
            if started[0].alive():
                started[0].stop(echo)
            _record_end(state, started[0].process.returncode)


def _wait_ready(launched: Launched, timeout: float, echo: Echo, stopping: threading.Event) -> bool:
    """Relay the script's output until it says ready (True), exits, ``timeout`` passes or a signal came."""
    deadline = time.monotonic() + timeout
    while launched.url is None and launched.alive() and time.monotonic() < deadline and not stopping.is_set():
        stopping.wait(POLL_S)
        launched.relay(echo)
    launched.relay(echo)
    return launched.url is not None and launched.alive() and not stopping.is_set()


def _serve(launched: Launched, state: DeploymentState, echo: Echo, stopping: threading.Event) -> int:
    """In the foreground until the script exits: 0 when a signal or `dyncc down` stopped it."""
    while launched.alive():
        stopping.wait(POLL_S)
        launched.relay(echo)
    launched.relay(echo)
    if stopping.is_set() or _stop_requested(state):
        return 0
    return launched.process.returncode or 1


def smoke_test(url: str, served_name: str, echo: Echo) -> bool:
    results = run.smoke(url, served_name)
    for r in results:
        echo(f"smoke: {'PASS' if r.ok else 'FAIL'} {r.name}: {r.detail}")
    passed = sum(r.ok for r in results)
    echo(f"smoke: {passed} passed, {len(results) - passed} failed")
    if passed != len(results):
        echo(
            Diagnostic(
                "DYN598",
                f"the deployment is ready but failed its smoke test at {url}",
                hint="read the workers' logs (`dyncc logs DIR COMPONENT`); the deployment is stopped",
            ).render()
        )
    return passed == len(results)


def _not_ready(launched: Launched, echo: Echo) -> int:
    foreign = launched.foreign_listener()
    if foreign is not None:
        echo(
            Diagnostic(
                "DYN523",
                foreign.removeprefix("dyncc: "),
                hint="stop that process (a leftover deployment?), or choose other ports in the spec's local: section",
            ).render()
        )
    else:
        echo("dyncc up: the deployment did not become ready")
    launched.stop(echo)
    return 1


def _stop_requested(state: DeploymentState) -> bool:
    try:
        return read_state(state.directory).stop_requested
    except DiagnosticError:
        return False


def _record_end(state: DeploymentState, status: int | None) -> None:
    try:
        current = read_state(state.directory)
    except DiagnosticError:
        return
    if current.local is not None and state.local is not None and current.local.pid == state.local.pid:
        update_state(current, ended_at=now(), exit_status=status)


# --- processes of a deployment: the holders of its lock file -------------------------------------------


def lock_holders(lock: Path) -> list[int]:
    """Processes other than this one that hold ``lock`` open: the launch script and everything it started."""
    return run.lock_holders(lock, but_this_process=True)


def _signal_holders(lock: Path, signum: int) -> list[int]:
    sent = []
    for pid in lock_holders(lock):
        try:
            os.kill(pid, signum)
            sent.append(pid)
        except ProcessLookupError:
            continue
    return sent


def kill_leftovers(lock: Path, grace: float = 5) -> list[int]:
    """SIGTERM, then SIGKILL after ``grace`` s, every process still holding the lock (orphans of a launch
    script that was killed); the pids that were signalled."""
    signalled = _signal_holders(lock, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while signalled and lock_holders(lock) and time.monotonic() < deadline:
        time.sleep(0.1)
    _signal_holders(lock, signal.SIGKILL)
    deadline = time.monotonic() + grace
    while lock_holders(lock) and time.monotonic() < deadline:
        time.sleep(0.1)
    return signalled


def is_running(state: DeploymentState) -> bool:
    local = state.local
    if local is None:
        return False
    return is_same_process(local.pid, local.start_ticks, local.boot_id) or bool(
        lock_holders(Path(local.run_dir) / run.LOCK_FILE)
    )


def down(state: DeploymentState, echo: Echo) -> list[Diagnostic]:
    """Stop the deployment: its launch script if the pid is still that process, then any leftover holder
    of its lock. Returns problems (DYN596 when a process would not stop)."""
    local = state.local
    assert local is not None
    lock = Path(local.run_dir) / run.LOCK_FILE
    launch_alive = is_same_process(local.pid, local.start_ticks, local.boot_id)
    holders = lock_holders(lock)
    if not launch_alive and not holders:
        echo(f"dyncc down: nothing runs from {state.directory} (the deployment has ended)")
        return []
    update_state(state, stop_requested=True)
    if launch_alive:
        echo(f"dyncc down: stopping launch.sh (pid {local.pid}) and the processes it started")
        os.kill(local.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        while is_same_process(local.pid, local.start_ticks, local.boot_id) and time.monotonic() < deadline:
            time.sleep(0.1)
        if is_same_process(local.pid, local.start_ticks, local.boot_id):
            os.killpg(local.pid, signal.SIGKILL)
    leftovers = kill_leftovers(lock)
    if leftovers:
        echo(f"dyncc down: stopped {len(leftovers)} leftover process(es): {' '.join(map(str, leftovers[:10]))}")
    remaining = lock_holders(lock)
    if remaining:
        return [
            Diagnostic(
                "DYN596",
                f"processes {' '.join(map(str, remaining[:10]))} of the deployment in {state.directory} did not stop",
                hint="another user's processes cannot be signalled: stop them as that user",
            )
        ]
    update_state(read_state(state.directory), ended_at=now())
    echo(f"dyncc down: stopped; no process of the deployment in {state.directory} is left")
    return []


def launched_pids(state: DeploymentState) -> dict[str, int]:
    """name -> pid of each process the launch script says it started (a restart's pid replaces the first)."""
    assert state.local is not None
    log = Path(state.local.run_dir) / LAUNCH_LOG
    pids: dict[str, int] = {}
    try:
        with open(log, "rb") as stream:
            text = stream.read(16 * 1024 * 1024).decode("utf-8", "replace")
    except OSError:
        return pids
    for line in text.splitlines():
        match = STARTED.match(line)
        if match:
            name = match.group(1) or match.group(3).replace(" ", "-")
            pids[name] = int(match.group(2) or match.group(4))
    return pids
