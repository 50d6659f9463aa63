"""``dyncc up``: start a compiled local deployment, wait until it serves, optionally smoke-test it.

The launch script does the process management (readiness, logs, stopping everything when one
process dies); this module starts it in its own session, relays its output, and turns Ctrl-C or
SIGTERM into a clean stop of the whole deployment.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

READY_MARK = "dyncc: ready: "
STOP_GRACE_S = 15


@dataclasses.dataclass(frozen=True)
class SmokeResult:
    name: str
    ok: bool
    detail: str


def _post(url: str, body: dict, timeout: float = 60) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def chat_completion(base_url: str, model: str, prompt: str, max_tokens: int = 16) -> dict:
    status, body = _post(
        f"{base_url}/v1/chat/completions",
        {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens},
    )
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
    return json.loads(body)


def streaming_chat_completion(base_url: str, model: str, prompt: str, max_tokens: int = 16) -> list[dict]:
    """The SSE chunks of a streamed chat completion; raises unless the stream ends with [DONE]."""
    status, body = _post(
        f"{base_url}/v1/chat/completions",
        {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
    events = [line[len("data:") :].strip() for line in body.decode().splitlines() if line.startswith("data:")]
    if not events or events[-1] != "[DONE]":
        raise RuntimeError("stream did not end with [DONE]")
    return [json.loads(e) for e in events[:-1]]


def smoke(base_url: str, model: str) -> list[SmokeResult]:
    results = []
    try:
        reply = chat_completion(base_url, model, "Say hello to the smoke test.")
        usage = reply.get("usage") or {}
        ok = usage.get("prompt_tokens", 0) > 0 and 0 < usage.get("completion_tokens", 0) <= 16
        results.append(
            SmokeResult(
                "chat completion",
                ok,
                f"usage {usage.get('prompt_tokens')} prompt + {usage.get('completion_tokens')} completion tokens",
            )
        )
    except (OSError, ValueError, RuntimeError) as exc:
        results.append(SmokeResult("chat completion", False, str(exc)))
    try:
        chunks = streaming_chat_completion(base_url, model, "Stream a short reply.")
        usage = next((c["usage"] for c in reversed(chunks) if c.get("usage")), {})
        ok = len(chunks) > 1 and usage.get("completion_tokens", 0) > 0
        results.append(SmokeResult("streaming chat completion", ok, f"{len(chunks)} chunks, ended with [DONE]"))
    except (OSError, ValueError, RuntimeError) as exc:
        results.append(SmokeResult("streaming chat completion", False, str(exc)))
    return results


class Deployment:
    """A running ``launch.sh``; ``stop()`` ends it and everything it started."""

    def __init__(
        self, launch_script: Path, env: dict[str, str] | None = None, echo: Callable[[str], None] | None = None
    ):
        self.script = Path(launch_script)
        self.lines: list[str] = []
        self.url: str | None = None
        self._ready = threading.Event()
        self._echo = echo
        self.process = subprocess.Popen(
            ["bash", str(self.script)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            if self._echo:
                self._echo(line)
            if line.startswith(READY_MARK):
                self.url = line[len(READY_MARK) :].split("/v1", 1)[0]
                self._ready.set()
        self._ready.set()  # exited: nobody should keep waiting

    def wait_ready(self, timeout: float) -> bool:
        self._ready.wait(timeout)
        return self.url is not None and self.process.poll() is None

    def terminate(self) -> None:
        """Ask the launch script to stop everything; safe inside a signal handler (it does not wait)."""
        if self.process.returncode is None:
            try:
                os.kill(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def stop(self) -> int:
        """SIGTERM the launch script (it stops its processes); returns its exit status."""
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._reader.join(5)
        return self.process.returncode

    def wait(self) -> int:
        return self.process.wait()


def up(
    launch_script: Path, timeout: float, run_smoke: bool, served_name: str, echo: Callable[[str], None] = print
) -> int:
    """Run until stopped (0 after a clean Ctrl-C/SIGTERM stop), or, with ``run_smoke``, test then stop."""
    deployment = Deployment(launch_script, echo=echo)
    stopping = threading.Event()

    def on_signal(signum, _frame):
        # Only signal here: the main thread is (or will be) waiting on the script already.
        if not stopping.is_set():
            stopping.set()
            echo(f"dyncc up: {signal.Signals(signum).name}, stopping the deployment")
        deployment.terminate()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if not deployment.wait_ready(timeout):
            if stopping.is_set():
                deployment.stop()
                return 0
            echo("dyncc up: the deployment did not become ready")
            deployment.stop()
            return 1
        echo(f"dyncc up: serving {served_name} at {deployment.url}/v1 (Ctrl-C to stop)")
        if run_smoke:
            results = smoke(deployment.url, served_name)
            for r in results:
                echo(f"smoke: {'PASS' if r.ok else 'FAIL'} {r.name}: {r.detail}")
            deployment.stop()
            passed = sum(r.ok for r in results)
            echo(f"smoke: {passed} passed, {len(results) - passed} failed")
            return 0 if passed == len(results) else 1
        status = deployment.wait()
        return 0 if stopping.is_set() else (status or 1)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if deployment.process.poll() is None:
            deployment.stop()
