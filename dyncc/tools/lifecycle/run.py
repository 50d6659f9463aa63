"""``dyncc up``: start a compiled local deployment, wait until it serves, optionally smoke-test it.

The launch script does the process management (readiness, logs, stopping everything when one
process dies, one deployment per run directory); this module checks before starting that no deployment
runs from the directory and that the ports are free (coded errors naming who holds them), starts the
script in its own session, relays its output, and turns Ctrl-C, SIGTERM or SIGHUP into a clean stop of
the whole deployment. Should ``dyncc up`` die without a chance to stop it (SIGKILL), the script is told
by the kernel (parent-death signal) and stops too: a deployment never outlives the command serving it.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from dyncc.diagnostics import Diagnostic, DiagnosticError
from dyncc.targets import ready_probe

if TYPE_CHECKING:
    from dyncc.api import BuildResult
    from dyncc.compiler.plan import DeploymentPlan
    from dyncc.targets.local.settings import LocalSettings

READY_MARK = "dyncc: ready: "
FOREIGN_MARK = "not by this deployment"
STOP_GRACE_S = 15
LOCK_FILE = "deployment.lock"
PID_FILE = "launch.pid"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class SmokeResult(msgspec.Struct, frozen=True):
    name: str
    ok: bool
    detail: str


def _post(url: str, body: dict[str, Any], timeout: float = 60) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def chat_request(prompt: str, model: str, max_tokens: int, ignore_eos: bool) -> dict[str, Any]:
    """The body of an OpenAI chat completion request for one user message."""
    request: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
    }
    if ignore_eos:
        # A root-level field Dynamo's frontend passes to the engine (0.5.1 and 1.6.1 alike).
        request["ignore_eos"] = True
    return request


def chat_completion(
    base_url: str, model: str, prompt: str, max_tokens: int = 16, ignore_eos: bool = True
) -> dict[str, Any]:
    """A chat completion's reply. With ``ignore_eos`` (the default) it is exactly ``max_tokens`` long:
    when an engine samples its end-of-sequence token, a check of the deployment would otherwise get a
    reply of any length, empty included, and on Dynamo 0.5.1's mock engine an HTTP 500 ("Stream ended
    before generation completed"). Pass False for the model's own stopping."""
    status, body = _post(f"{base_url}/v1/chat/completions", chat_request(prompt, model, max_tokens, ignore_eos))
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
    reply: dict[str, Any] = json.loads(body)
    return reply


def streaming_chat_completion(
    base_url: str, model: str, prompt: str, max_tokens: int = 16, ignore_eos: bool = True
) -> list[dict[str, Any]]:
    """The SSE chunks of a streamed chat completion; raises unless the stream ends with [DONE].
    ``ignore_eos`` as for `chat_completion`."""
    request = chat_request(prompt, model, max_tokens, ignore_eos)
    request |= {"stream": True, "stream_options": {"include_usage": True}}
    status, body = _post(f"{base_url}/v1/chat/completions", request)
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
    events = [line[len("data:") :].strip() for line in body.decode().splitlines() if line.startswith("data:")]
    if not events or events[-1] != "[DONE]":
        raise RuntimeError("stream did not end with [DONE]")
    return [json.loads(e) for e in events[:-1]]


def smoke(base_url: str, model: str) -> list[SmokeResult]:
    results: list[SmokeResult] = []
    try:
        reply = chat_completion(base_url, model, "Say hello to the smoke test.")
        usage = reply.get("usage") or {}
        ok = usage.get("prompt_tokens", 0) > 0 and 0 < usage.get("completion_tokens", 0) <= 16
        detail = f"usage {usage.get('prompt_tokens')} prompt + {usage.get('completion_tokens')} completion tokens"
        # Dynamo 0.x's frontend reports usage only when streaming: then the reply must say something.
        if reply.get("usage") is None:
            content = (reply.get("choices") or [{}])[0].get("message", {}).get("content") or ""
            ok, detail = bool(content), f"{len(content)} characters (this frontend reports no usage without streaming)"
        results.append(SmokeResult("chat completion", ok, detail))
    except (OSError, ValueError, RuntimeError) as exc:
        results.append(SmokeResult("chat completion", False, str(exc)))
    try:
        chunks = streaming_chat_completion(base_url, model, "Stream a short reply.")
        final: dict[str, Any] = next((c["usage"] for c in reversed(chunks) if c.get("usage")), {})
        ok = len(chunks) > 1 and final.get("completion_tokens", 0) > 0
        results.append(SmokeResult("streaming chat completion", ok, f"{len(chunks)} chunks, ended with [DONE]"))
    except (OSError, ValueError, RuntimeError) as exc:
        results.append(SmokeResult("streaming chat completion", False, str(exc)))
    return results


# --- before starting: nothing running from the directory, every port free ---------------------------


def run_dir(launch_dir: Path) -> Path:
    """Where the launch script keeps its lock, logs and discovery state (it honours DYNCC_RUN_DIR too)."""
    return Path(os.environ.get("DYNCC_RUN_DIR") or Path(launch_dir) / "run")


def _open_files(pid: str) -> Iterator[str]:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return
    for fd in fds:
        try:
            yield os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile (the listing's own fd, when pid is this process)


def lock_holders(lock: Path, but_this_process: bool = False) -> list[int]:
    """Processes holding the lock file open: the launch script and everything it started (Linux /proc)."""
    try:
        target = os.path.realpath(lock)
        processes = os.listdir("/proc")
    except OSError:
        return []
    skip = str(os.getpid()) if but_this_process else None
    return sorted(int(e) for e in processes if e.isdigit() and e != skip and target in _open_files(e))


def _locked(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    finally:
        os.close(fd)  # releases a lock taken just to test it
    return False


def running_deployment(launch_dir: Path) -> Diagnostic | None:
    """DYN522 when a deployment runs from ``launch_dir``'s run directory (its launch script holds the lock)."""
    directory = run_dir(launch_dir)
    lock = directory / LOCK_FILE
    try:
        if not _locked(lock):
            return None
    except OSError:
        return None  # not a lock dyncc can test (a FIFO, no permission): the launch script decides
    holders = lock_holders(lock)
    try:
        launch_pid = int((directory / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        launch_pid = None
    if launch_pid is not None and launch_pid in holders:
        who, stop = f"launch.sh pid {launch_pid}", f"kill -TERM {launch_pid}"
    elif holders:
        shown = " ".join(map(str, holders[:8]))
        who, stop = f"processes {shown} (left behind by a launch script that was killed)", f"kill -TERM {shown}"
    else:
        who, stop = "processes this user cannot inspect", "stop them"
    return Diagnostic(
        "DYN522",
        f"a deployment is already running from {directory} ({who})",
        hint=f"stop it first (Ctrl-C where it runs, or `{stop}`), or build this one into another -o directory",
    )


def refuse_if_running(launch_dir: Path) -> None:
    """Raise DYN522 before anything (a build, a start) touches a directory a deployment runs from."""
    problem = running_deployment(launch_dir)
    if problem is not None:
        raise DiagnosticError([problem])


def taken_ports(plan: DeploymentPlan, settings: LocalSettings) -> list[Diagnostic]:
    """DYN521 for each port the local deployment would listen on that something else holds now."""
    from dyncc.targets.local.impl import port_uses

    problems = []
    for use in port_uses(plan, settings):
        taken = ready_probe.taken(use.host, use.port)
        if taken is not None:
            problems.append(
                Diagnostic(
                    "DYN521",
                    f"cannot start: {use.user} port {taken}",
                    path=tuple(use.setting.split(".")),
                    hint=f"stop what holds port {use.port}, or change {use.setting} in the spec",
                )
            )
    return problems


# --- what the workers import: there before anything starts ---------------------------------------------


def worker_python() -> str:
    """The Python launch.sh starts Dynamo with: ``DYNCC_PYTHON``, else the one running dyncc (scripts/setup.sh
    installs dyncc and Dynamo into one environment, which need not be the ``python3`` first on PATH)."""
    return os.environ.get("DYNCC_PYTHON") or sys.executable


def _has_module(python: str, module: str) -> bool:
    """Whether ``python`` can import ``module``, found without importing it (an engine's import alone can
    take seconds and need CUDA)."""
    if python == sys.executable:
        import importlib.util

        return importlib.util.find_spec(module) is not None
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)"
    try:
        return subprocess.run([python, "-c", probe, module], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def missing_engines(plan: DeploymentPlan) -> list[Diagnostic]:
    """DYN524 for each package the deployment's processes import that the worker Python lacks."""
    python = worker_python()
    needed: list[tuple[str, str, str, tuple[str, ...]]] = [
        ("dynamo", "Dynamo (ai-dynamo)", "install it: ./scripts/setup.sh", ())
    ]
    if plan.engine.python_package is not None:  # the workers' engine, where it is a Python package of its own
        from dyncc.engines import engines

        module, label = plan.engine.python_package
        mock = next((e.name for e in engines() if e.mock), None)
        instead = f"use --engine {mock}, or " if mock else ""
        hint = f"{instead}install {label} {plan.engine_version} (NVIDIA GPUs) into {python}"
        needed.append((module, label, hint, ("worker_runtime",)))
    return [
        Diagnostic(
            "DYN524",
            f"cannot start: {what} is not installed for {python} (no module `{module}`)",
            path=path,
            hint=hint,
        )
        for module, what, hint, path in needed
        if not _has_module(python, module)
    ]


# --- building for `up`: its own directory, never a `dyncc build` tree -----------------------------------


def up_directory_name(spec_name: str) -> str:
    """``OUT/up-<spec name>``: beside ``dyncc build``'s ``OUT/local`` (which ``up --engine mocker`` must not
    replace), one per deployment, so runs of different specs keep their own logs and discovery state."""
    return f"up-{spec_name}"


def build_for_up(
    spec_path: str | Path,
    out_dir: str | Path,
    engine: str | None = None,
    timing: str | None = None,
    progress: Callable[[float, str], None] | None = None,
    dynamo_version: str | None = None,
) -> BuildResult:
    """Compile the spec for the local target (for ``dynamo_version``, when given, instead of the spec's
    release) and write it to ``OUT/up-<name>/`` (never ``OUT/local``).
    Refuses (DYN522) before writing anything when a deployment runs from that directory. Returns the
    :class:`dyncc.api.BuildResult` whose one output is that directory."""
    from dyncc.api import (
        BuildResult,
        TargetOutput,
        compile_timed,
        render_targets,
        with_dynamo_version,
        with_mocker_timing,
        with_worker_runtime,
    )
    from dyncc.deployment import load_spec
    from dyncc.output import LOCK_TIMEOUT_S, write_trees

    loaded = with_worker_runtime(with_dynamo_version(load_spec(spec_path), dynamo_version), engine)
    loaded = with_mocker_timing(loaded, timing)
    compilation = compile_timed(loaded, progress)
    missing = missing_engines(compilation.plan)
    if missing:  # before anything is written or started: the worker would only end in a traceback
        raise DiagnosticError(missing)
    name = up_directory_name(compilation.plan.name)
    out = Path(out_dir)
    refuse_if_running(out / name)  # a rebuild must not touch a running deployment's files
    rendered, notes = render_targets(compilation, ["local"])
    write_trees(out, {name: rendered["local"]}, LOCK_TIMEOUT_S)
    return BuildResult(compilation, (TargetOutput("local", out / name, rendered["local"]),), tuple(notes))


# --- running -------------------------------------------------------------------------------------------


@functools.cache
def _pdeathsig_prefix() -> tuple[str, ...]:
    """``setpriv --pdeathsig TERM`` where util-linux has it: the script gets SIGTERM if its parent dies."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return ()
    probe = subprocess.run([setpriv, "--pdeathsig", "TERM", "true"], capture_output=True)
    return (setpriv, "--pdeathsig", "TERM") if probe.returncode == 0 else ()


class LaunchScript:
    """A ``launch.sh`` dyncc started in its own session (so stopping it reaches everything it started): the
    lines it has written so far, its ready URL once it says it, and how to stop it. Its output goes to
    ``output`` (a pipe, or a log file a detached deployment outlives dyncc with); the subclasses read it."""

    def __init__(self, script: Path, output: Any, *, pdeathsig: bool, env: dict[str, str] | None = None):
        self.script = Path(script)
        self.lines: list[str] = []
        self.url: str | None = None
        self.process = subprocess.Popen(
            [*(_pdeathsig_prefix() if pdeathsig else ()), "bash", str(self.script)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=output is subprocess.PIPE,
            env={"DYNCC_PYTHON": worker_python(), **os.environ, **(env or {})},
            start_new_session=True,
        )

    def noted(self, line: str) -> str:
        """Keep one line the script wrote; its ready line gives the frontend's URL."""
        self.lines.append(line)
        if line.startswith(READY_MARK) and self.url is None:
            self.url = line[len(READY_MARK) :].split("/v1", 1)[0]
        return line

    def alive(self) -> bool:
        return self.process.poll() is None

    def terminate(self) -> None:
        """SIGTERM the launch script by its pid (it then stops its own processes), unless it has been waited
        for already; safe inside a signal handler (it does not wait)."""
        if self.process.returncode is None:
            try:
                os.kill(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def stop_within(self, seconds: float) -> int:
        """SIGTERM the launch script (it stops its processes), SIGKILL its session after ``seconds``; returns
        its exit status."""
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(seconds)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def foreign_listener(self) -> str | None:
        """The launch script's report that another process serves one of the deployment's ports."""
        return next((line for line in self.lines if FOREIGN_MARK in line), None)


class Deployment(LaunchScript):
    """A running ``launch.sh`` whose output dyncc reads as it comes (echoed, and watched for readiness);
    ``stop()`` ends it and everything it started.

    Create it on a thread that outlives it (the main one): the parent-death signal follows the thread."""

    def __init__(
        self, launch_script: Path, env: dict[str, str] | None = None, echo: Callable[[str], None] | None = None
    ):
        super().__init__(launch_script, subprocess.PIPE, pdeathsig=True, env=env)
        self._ready = threading.Event()
        self._echo = echo
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = self.noted(raw.rstrip("\n"))
            if self._echo:
                self._echo(line)
            if self.url is not None:
                self._ready.set()
        self._ready.set()  # exited: nobody should keep waiting

    def wait_ready(self, timeout: float) -> bool:
        self._ready.wait(timeout)
        return self.url is not None and self.process.poll() is None

    def stop(self) -> int:
        """SIGTERM the launch script (it stops its processes); returns its exit status."""
        status = self.stop_within(STOP_GRACE_S)
        self._reader.join(5)
        return status

    def wait(self) -> int:
        return self.process.wait()
