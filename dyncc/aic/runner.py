"""AIConfigurator in a child process: find its Python, send one JSON request, read one JSON answer.

AIConfigurator (``pip install 'dyncc[sla]'``, or its own venv in ``.cache/aiconfigurator`` made by
``scripts/setup.sh``) is never imported into dyncc: its import costs seconds and ~150 MB, it hides
warnings process-wide, sets environment variables and prints on every call, and its dependencies are
pinned apart from Dynamo's. The worker (``_aic_worker.py``) runs in its interpreter with a timeout; a
search reports progress (elapsed seconds) while it runs, and Ctrl-C stops the child's whole process
group before the interrupt goes on, so nothing is left running.

Every failure is a coded :class:`~dyncc.diagnostics.DiagnosticError` (DYN901-DYN909).
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from dyncc.diagnostics import Diagnostic, DiagnosticError, YamlPath

AIC_VERSION = "0.12.0"  # the pin of the `sla` extra: rows and estimates are checked against this version


class Backend(msgspec.Struct, frozen=True):
    """An engine as AIConfigurator models it: its backend name, the version of the engine its kernel data
    was measured on, and the engine's name in messages. Each engine declares its own
    (:meth:`dyncc.engines.base.Engine.aic`): what AIConfigurator has data for is a fact of the engine."""

    name: str
    version: str
    label: str


DEFAULT_TIMEOUT_S = 900.0
WORKER = Path(__file__).with_name("_aic_worker.py")
VENV_PYTHON = Path(__file__).resolve().parents[2] / ".cache" / "aiconfigurator" / "bin" / "python"
INSTALL_HINT = (
    "install it: `scripts/setup.sh` (a venv in .cache/aiconfigurator), or `pip install 'dyncc[sla]'`; "
    "or point DYNCC_AIC_PYTHON at a python that has aiconfigurator==" + AIC_VERSION
)

Progress = Callable[[float, str], None]  # (elapsed seconds, the worker's last progress note or "")


class Failure(msgspec.Struct, frozen=True):
    """Where a request came from, so its errors point at the spec value or CLI option at fault."""

    path: YamlPath = ()
    model_path: YamlPath = ("model", "path")
    system_path: YamlPath = ("cluster", "gpu_type")
    what: str = "AIConfigurator"


def aic_python() -> str:
    """The interpreter that runs AIConfigurator: ``$DYNCC_AIC_PYTHON``, the setup venv, or this Python."""
    chosen = os.environ.get("DYNCC_AIC_PYTHON")
    if chosen:
        if not os.access(chosen, os.X_OK):
            raise DiagnosticError([_not_installed(f"DYNCC_AIC_PYTHON={chosen} is not an executable file")])
        return chosen
    if os.access(VENV_PYTHON, os.X_OK):
        return str(VENV_PYTHON)
    if importlib.util.find_spec("aiconfigurator") is not None:
        return sys.executable
    raise DiagnosticError([_not_installed("AIConfigurator is not installed")])


def _not_installed(message: str) -> Diagnostic:
    return Diagnostic("DYN901", message, hint=INSTALL_HINT)


class _Child:
    """The worker process with its pipes drained by threads (a full stderr pipe would block it)."""

    def __init__(self, python: str, request: dict):
        env = dict(os.environ)
        env["HF_HUB_OFFLINE"] = "1"  # a model missing from its data must fail, not be fetched from the hub
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [python, str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: one signal stops it and anything it started
            env=env,
        )
        self.stdout = bytearray()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self.note = ""
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for t in self._threads:
            t.start()
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request).encode())
            self.proc.stdin.close()
        except BrokenPipeError:
            pass  # the child died at start; its exit status and stderr say why

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for chunk in iter(lambda: self.proc.stdout.read(65536), b""):  # type: ignore[union-attr]
            self.stdout += chunk

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line.startswith("dyncc-progress "):
                self.note = line.split(" ", 1)[1]
            elif line:
                self.stderr_tail.append(line)

    def stop(self) -> None:
        """SIGTERM to the group, SIGKILL after 5 s; reaped either way."""
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self.proc.wait()

    def finish(self) -> None:
        for t in self._threads:
            t.join(5)


def run(
    op: str,
    args: dict[str, Any],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    progress: Progress | None = None,
    failure: Failure = Failure(),
    engine: Backend,
) -> dict[str, Any]:
    """One request to AIConfigurator about ``engine``; its ``result`` dict, or a coded DiagnosticError."""
    request = {"backend": engine.name, "backend_label": engine.label, **args}
    child = _Child(aic_python(), {"op": op, "args": request, "expect_version": AIC_VERSION})
    started = time.monotonic()
    try:
        while True:
            try:
                child.proc.wait(1.0)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - started
                if elapsed > timeout:
                    child.stop()
                    raise DiagnosticError([_timeout(op, timeout)]) from None
                if progress is not None:
                    progress(elapsed, child.note)
    except BaseException:
        child.stop()  # Ctrl-C (KeyboardInterrupt) or anything else: no orphan left computing
        raise
    child.finish()
    return _answer(child, failure, engine)


def _timeout(op: str, timeout: float) -> Diagnostic:
    return Diagnostic(
        "DYN906",
        f"AIConfigurator's {op} did not finish within {timeout:g} s; it was stopped",
        hint="give it more time with --timeout SECONDS (MoE searches with MTP take minutes), or ask for fewer GPUs",
    )


def _answer(child: _Child, failure: Failure, engine: Backend) -> dict[str, Any]:
    try:
        answer = json.loads(bytes(child.stdout).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        answer = None
    if not isinstance(answer, dict):
        last = " | ".join(list(child.stderr_tail)[-3:]) or "no output"
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN909",
                    f"AIConfigurator's worker exited ({child.proc.returncode}) without an answer: {last}",
                    hint="run it again; if it persists, reinstall the extra (scripts/setup.sh) and report the message",
                )
            ]
        )
    if answer.get("ok"):
        result = answer.get("result")
        return result if isinstance(result, dict) else {}
    raise DiagnosticError(
        [refusal(str(answer.get("kind")), str(answer.get("message")), answer.get("choices"), failure, engine)]
    )


def _nearest(word: str, choices: list[str], count: int = 8) -> str:
    import difflib

    close = difflib.get_close_matches(word, choices, n=count, cutoff=0.3)
    return ", ".join(close or choices[:count])


def refusal(kind: str, message: str, choices: Any, failure: Failure, engine: Backend) -> Diagnostic:
    """The worker's failure ``kind`` as a coded diagnostic."""
    options = [str(c) for c in choices] if isinstance(choices, list) else []
    if kind == "not_installed":
        return _not_installed(f"the AIConfigurator python cannot import it: {message}")
    if kind == "version_skew":
        return Diagnostic(
            "DYN907",
            f"{message}, but dyncc reads rows of aiconfigurator {AIC_VERSION} (their columns change between releases)",
            hint=f"install aiconfigurator=={AIC_VERSION} (scripts/setup.sh does)",
        )
    if kind == "unknown_backend_version":
        return Diagnostic(
            "DYN907", message, failure.system_path, hint=f"versions with data: {', '.join(options) or 'none'}"
        )
    if kind == "unknown_model":
        word = message.split("'")[1] if message.count("'") >= 2 else ""
        return Diagnostic(
            "DYN902",
            message,
            failure.model_path,
            hint=f"AIConfigurator {AIC_VERSION} has data for: {_nearest(word, options)}"
            if options
            else "use a model AIConfigurator lists (e.g. Qwen/Qwen3-32B, deepseek-ai/DeepSeek-V3)",
        )
    if kind == "unknown_system":
        return Diagnostic(
            "DYN903", message, failure.system_path, hint=f"systems with {engine.label} data: {', '.join(options)}"
        )
    if kind == "no_feasible":
        return Diagnostic(
            "DYN905",
            f"no configuration meets the SLA: {message}",
            failure.path,
            hint="relax --ttft or --tpot, give it more GPUs, or pick a faster system",
        )
    if kind == "bad_input":
        return Diagnostic("DYN904", message, failure.path, hint="check the search parameters")
    return Diagnostic(
        "DYN909",
        f"{failure.what} failed: {message}",
        failure.path,
        hint="the configuration may be outside AIConfigurator's data; try another parallelism or batch size",
    )


def stderr_progress(label: str, every: float = 5.0) -> Progress:
    """A progress callback printing ``label: 12 s`` to stderr every ``every`` seconds (after the first 2 s)."""
    last = [0.0]

    def report(elapsed: float, note: str) -> None:
        if elapsed - last[0] >= every or (last[0] == 0.0 and elapsed >= 2.0):
            last[0] = elapsed
            extra = f" ({note})" if note else ""
            print(f"{label}: {elapsed:.0f} s{extra}", file=sys.stderr, flush=True)

    return report
