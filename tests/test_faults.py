"""Fault semantics (`on_worker_exit`): what the local launch script does when a process dies.

`restart` (the default): a dead worker is started again with bounded backoff while the others keep
serving, and with migration on the frontend moves in-flight streams to a live worker, so a `kill -9`
mid-stream loses no request. `stop`: fail fast, as before. The frontend dying stops everything either way.
The e2e tests run Dynamo 1.6.1's real frontend and mock engine.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import free_port_block, startup_report
from dynamo_parsers import DYNAMO_AVAILABLE

from dyncc.api import build
from dyncc.targets import ready_probe
from dyncc.tools.lifecycle.run import Deployment

READY_TIMEOUT = 90
needs_dynamo = pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")


def write_spec(tmp_path: Path, base: int, **top: object) -> Path:
    spec: dict[str, object] = {
        "apiVersion": "dyncc/v1",
        "name": "faults",
        "model": {"path": "Qwen/Qwen3-0.6B", "moe": False},
        "worker_runtime": "mocker",
        "mocker_speedup_ratio": 0.05,  # slow enough that a kill lands mid-stream
        "migration": {"limit": 3},
        "local": {"http_port": base, "system_port_base": base + 1, "ready_timeout_s": READY_TIMEOUT},
        "pools": {"agg": {"replicas": 2}},
        **top,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def launch_text(tmp_path: Path, **top: object) -> str:
    out = build(write_spec(tmp_path, 20000, **top), ["local"], tmp_path / "out").outputs[0].directory
    return (out / "launch.sh").read_text()


def test_restart_is_the_default_and_stop_keeps_fail_fast(tmp_path):
    restart = launch_text(tmp_path)
    assert "on_worker_exit: restart" in restart and "restart_due" in restart
    stop = launch_text(tmp_path, on_worker_exit="stop")
    assert "on_worker_exit: stop" in stop and "restart_due" not in stop and "wait -n" in stop


def test_no_deprecated_health_variable_for_dynamo_1(tmp_path):
    """1.6.1 ignores DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS and logs that it is deprecated: not written."""
    assert "DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS" not in launch_text(tmp_path)
    assert "DYN_SYSTEM_ENABLED" not in launch_text(tmp_path)


class Stream(threading.Thread):
    """One streaming chat completion, read chunk by chunk."""

    def __init__(self, port: int, model: str, max_tokens: int):
        super().__init__(daemon=True)
        self.port, self.model, self.max_tokens = port, model, max_tokens
        self.chunks = 0
        self.events: list[str] = []
        self.failure: str | None = None

    def run(self) -> None:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": "Tell a long story about migration."}],
            "max_tokens": self.max_tokens,
            "stream": True,
            # The mock engine samples its end-of-sequence token now and then: without this a reply may
            # end early by itself, and a cut-short reply could not be told from a lost one.
            "ignore_eos": True,
        }
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
            response = conn.getresponse()
            if response.status != 200:
                self.failure = f"HTTP {response.status}"
                return
            for raw in response:
                line = raw.decode().strip()
                if line.startswith("data:"):
                    self.events.append(line[len("data:") :].strip())
                    self.chunks += 1
        except OSError as exc:
            self.failure = repr(exc)

    @property
    def done(self) -> bool:
        return bool(self.events) and self.events[-1] == "[DONE]"

    @property
    def errors(self) -> list[str]:
        return [e for e in self.events if e != "[DONE]" and "error" in json.loads(e)]


def _healthy(port: int) -> bool:
    """The worker's generate endpoint is ready (ready_probe's test: Dynamo 1.6.1 says 503 "notready" on
    /health without the deprecated DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS, but lists each endpoint's state)."""
    return ready_probe.not_ready_worker(f"http://127.0.0.1:{port}/health") is None


def _started(deployment: Deployment) -> dict[str, int]:
    return {
        m.group(1): int(m.group(2))
        for line in deployment.lines
        if (m := re.match(r"dyncc: (?:started|restarted) (\S+) \(pid (\d+)", line))
    }


@pytest.mark.e2e
@pytest.mark.slow
@needs_dynamo
def test_kill_9_of_a_worker_mid_stream_loses_no_request_and_the_worker_comes_back(tmp_path):
    base = free_port_block(8)
    out = build(write_spec(tmp_path, base), ["local"], tmp_path / "out").outputs[0].directory
    deployment = Deployment(out / "launch.sh")
    try:
        assert deployment.wait_ready(READY_TIMEOUT + 10), startup_report(deployment)
        pids = _started(deployment)
        streams = [Stream(base, "Qwen/Qwen3-0.6B", 200) for _ in range(8)]
        for s in streams:
            s.start()
        deadline = time.monotonic() + 60
        while not all(s.chunks >= 5 for s in streams) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(s.chunks >= 5 for s in streams), [s.chunks for s in streams]
        assert not any(s.done for s in streams), "the kill must land mid-stream"
        killed_at = time.monotonic()
        os.killpg(pids["agg-1"], signal.SIGKILL)
        for s in streams:
            s.join(120)
        assert [s.failure for s in streams] == [None] * 8
        assert all(s.done for s in streams), [s.events[-1:] for s in streams]
        assert [s.errors for s in streams] == [[]] * 8
        short = [(s.chunks, s.events[-3:]) for s in streams if s.chunks < 190]
        assert short == [], short  # the whole reply (200 tokens), not one cut short
        frontend_log = re.sub(r"\x1b\[[0-9;]*m", "", (out / "run" / "logs" / "frontend.log").read_text())
        assert "migration retry scheduled" in frontend_log, "the kill hit streams in flight, which migrated"

        while time.monotonic() - killed_at < 30 and not (
            _started(deployment).get("agg-1", pids["agg-1"]) != pids["agg-1"] and _healthy(base + 2)
        ):
            time.sleep(0.2)
        assert _started(deployment)["agg-1"] != pids["agg-1"], "\n".join(deployment.lines)
        assert _healthy(base + 2), "the restarted worker serves its health endpoint within 30 s"
        log = out / "run" / "logs" / "agg-1.log"
        before = log.stat().st_size
        replies = [Stream(base, "Qwen/Qwen3-0.6B", 8) for _ in range(6)]
        for r in replies:
            r.start()
        for r in replies:
            r.join(60)
        assert all(r.done and not r.errors for r in replies)
        assert log.stat().st_size > before, "the restarted worker takes requests again"
        # The proof it serves: with the other worker killed too, requests still complete (on agg-1 alone,
        # before agg-0's own restart, which waits 1 s and then its start-up).
        os.killpg(pids["agg-0"], signal.SIGKILL)
        alone = [Stream(base, "Qwen/Qwen3-0.6B", 8) for _ in range(4)]
        for r in alone:
            r.start()
        for r in alone:
            r.join(60)
        assert all(r.done and not r.errors for r in alone), [(r.failure, r.events[-2:]) for r in alone]
        assert deployment.process.poll() is None, "the deployment never stopped"
        assert any("restarted agg-1" in line for line in deployment.lines)
    finally:
        deployment.stop()


FAKE_PYTHON = """#!/usr/bin/env bash
# Stands in for the Python launch.sh runs: a frontend and broker that keep running, workers that crash
# a second after they start, readiness that passes at once; the port check is the real one.
case "$*" in
  *"-m dynamo.mocker"*) sleep 1; exit 7 ;;
  *"-m dynamo.frontend"*|*event_broker.py*) exec sleep 600 ;;
  *ready.py*--free*) exec {python} "$@" ;;
  *ready.py*) exit 0 ;;
esac
exec {python} "$@"
"""


@pytest.mark.slow
def test_a_crash_looping_worker_is_restarted_with_doubling_backoff_then_everything_stops(tmp_path):
    """Bounded: 1, 2, 4, 8, 16 s between restarts, at most 5 restarts in 10 minutes, then the deployment
    stops (frontend included). Real bash supervisor; stand-in processes, so it needs no Dynamo."""
    import subprocess
    import sys

    spec = write_spec(tmp_path, free_port_block(8), pools={"agg": {"replicas": 1}})
    out = build(spec, ["local"], tmp_path / "out").outputs[0].directory
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON.format(python=sys.executable))
    fake.chmod(0o755)
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", out / "launch.sh"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DYNCC_PYTHON": str(fake)},
    )
    took = time.monotonic() - started
    delays = [int(d) for d in re.findall(r"agg-0 exited \(status 7\); restarting it in (\d+)s", proc.stderr)]
    assert delays == [1, 2, 4, 8, 16], proc.stdout + proc.stderr
    assert proc.stdout.count("dyncc: restarted agg-0") == 5
    assert "agg-0 exited again after 5 restarts within 10 minutes; stopping the deployment" in proc.stderr
    assert proc.returncode != 0
    assert 30 < took < 60, took
    frontend_pid = int(re.search(r"started frontend \(pid (\d+)\)", proc.stdout).group(1))
    with pytest.raises(ProcessLookupError):
        os.killpg(frontend_pid, 0)  # stopped with everything else
