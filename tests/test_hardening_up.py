"""`dyncc up` and the local launch script: nothing exposed beyond loopback, no stale state, no impostors.

A pool env overriding what the script manages is a coded error (DYN520); a taken port stops `up` before
anything starts (DYN521); a second `up` never touches a running one (DYN522, and the script's own lock);
readiness is only answered by the deployment's own processes (ready.py --owner, DYN523); SIGHUP, or the
death of `dyncc up` itself, stops the deployment. The e2e tests start Dynamo 1.6.1's frontend and mock
engine and look at every socket the deployment's processes listen on.
"""

from __future__ import annotations

import fcntl
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, assert_no_traceback, cli, free_port_block
from dynamo_parsers import DYNAMO_AVAILABLE

from dyncc.api import build
from dyncc.diagnostics import DiagnosticError
from dyncc.targets import ready_probe
from dyncc.targets.local import port_uses
from dyncc.tools.lifecycle.run import build_for_up

READY_TIMEOUT = 90
UP_DIR = "up-hardening-up"  # where `dyncc up -o OUT` builds the spec below: OUT/up-<spec name>
needs_dynamo = pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")


def write_spec(tmp_path: Path, pools: dict, base: int, **local: object) -> Path:
    spec = {
        "apiVersion": "dyncc/v1",
        "name": "hardening-up",
        "model": {"path": "Qwen/Qwen3-0.6B", "moe": False},
        "worker_runtime": "mocker",
        "mocker_speedup_ratio": 0,
        "local": {
            "http_port": base,
            "system_port_base": base + 1,
            "ready_timeout_s": READY_TIMEOUT,
            **local,
        },
        "pools": pools,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


DISAGG = {"prefill": {"replicas": 1}, "decode": {"replicas": 1}}
AGG = {"agg": {"replicas": 2}}


class Squatter(http.server.BaseHTTPRequestHandler):
    """Answers like a ready Dynamo frontend and worker; records every prompt it is sent."""

    prompts: list[bytes] = []

    def _send(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._send({"data": [{"id": "Qwen/Qwen3-0.6B"}]} if self.path.startswith("/v1/models") else {})

    def do_POST(self) -> None:  # noqa: N802
        self.prompts.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self._send({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}})

    def log_message(self, *args: object) -> None:
        pass


def squat(port: int) -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", port), Squatter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def squatter() -> Iterator[tuple[int, type[Squatter]]]:
    port = free_port_block(1)
    Squatter.prompts = []
    yield from ((port, Squatter) for _ in squat(port))


# --- DYN520: a pool env may not set what the launch script manages ----------------------------------


@pytest.mark.parametrize("name", ["DYN_SYSTEM_PORT", "CUDA_VISIBLE_DEVICES", "DYN_SYSTEM_HOST", "DYN_FILE_KV"])
def test_pool_env_setting_a_managed_variable_is_a_coded_error_at_its_key(tmp_path, name):
    spec = write_spec(tmp_path, {"agg": {"replicas": 2, "env": {"SAFE": "1", name: "26650"}}}, 20000)
    result = cli("build", spec, "-t", "local", "-o", tmp_path / "out")
    assert result.returncode == 1
    assert_no_traceback(result)
    line = next(i for i, text in enumerate(spec.read_text().splitlines(), 1) if text.strip().startswith(name))
    assert f"{spec}:{line}:" in result.stderr and "error DYN520" in result.stderr, result.stderr
    assert f"pools.agg.env.{name}" in result.stderr and f"remove {name}" in result.stderr
    assert not (tmp_path / "out").exists(), "a refused build writes nothing"


def test_pool_env_with_unmanaged_variables_still_builds(tmp_path):
    spec = write_spec(tmp_path, {"agg": {"env": {"NCCL_DEBUG": "INFO"}}}, 20000)
    assert cli("build", spec, "-t", "local", "-o", tmp_path / "out").returncode == 0


# --- DYN521: every port free before anything starts -----------------------------------------------


def test_taken_worker_port_is_refused_before_starting_naming_port_holder_and_setting(tmp_path):
    base = free_port_block(8)
    spec = write_spec(tmp_path, AGG, base)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", base + 2))  # agg-1's system port
        holder.listen()
        result = cli("up", spec, "-o", tmp_path / "out", "--timeout", "5")
    assert result.returncode == 1
    assert_no_traceback(result)
    assert "error DYN521" in result.stderr and f"127.0.0.1:{base + 2}" in result.stderr, result.stderr
    assert f"pid {os.getpid()}" in result.stderr, "names who holds the port"
    assert "local.system_port_base" in result.stderr
    assert not (tmp_path / "out" / UP_DIR / "run" / "launch.pid").exists(), "nothing was started"


def test_every_fixed_port_of_the_deployment_is_checked(tmp_path):
    base = free_port_block(8)
    compilation = build(write_spec(tmp_path, DISAGG, base), ["local"], tmp_path / "out").compilation
    uses = {u.port: u for u in port_uses(compilation.plan, compilation.loaded.spec.local)}
    # frontend, two system ports, the event broker's two
    assert sorted(uses) == [base, base + 1, base + 2, base + 3, base + 4]
    assert uses[base].setting == "local.http_port"
    assert {u.host for p, u in uses.items() if p != base} == {"127.0.0.1"}


def test_launch_script_itself_refuses_a_taken_port(tmp_path):
    base = free_port_block(8)
    out = build(write_spec(tmp_path, AGG, base), ["local"], tmp_path / "out").outputs[0].directory
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", base))
        holder.listen()
        proc = subprocess.run(["bash", out / "launch.sh"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert f"frontend HTTP (local.http_port): 127.0.0.1:{base} is in use by pid {os.getpid()}" in proc.stderr
    assert "dyncc: started" not in proc.stdout


# --- `dyncc up` builds into its own directory -------------------------------------------------------


def test_up_never_replaces_what_dyncc_build_wrote_and_says_where_it_builds(tmp_path):
    """`dyncc up SPEC --engine mocker` beside `dyncc build SPEC`: the real launch script stays, no drift."""
    base = free_port_block(8)
    spec_data = yaml.safe_load((ROOT / "examples" / "agg.yaml").read_text())
    spec_data["local"] = {"http_port": base, "system_port_base": base + 1}
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(spec_data, sort_keys=False))
    out = tmp_path / "build"
    assert cli("build", spec, "-t", "local", "-o", out).returncode == 0
    real = (out / "local" / "launch.sh").read_text()
    assert "dynamo.trtllm" in real
    with socket.socket() as holder:  # `up` stops right after its build (DYN521): nothing starts
        holder.bind(("127.0.0.1", base))
        holder.listen()
        result = cli("up", spec, "--engine", "mocker", "-o", out, "--timeout", "5")
    assert result.returncode == 1 and "error DYN521" in result.stderr, result.stdout + result.stderr
    assert_no_traceback(result)
    up_dir = out / f"up-{spec_data['name']}"
    assert f"dyncc up: built into {up_dir} (logs in {up_dir / 'run' / 'logs'})" in result.stdout
    assert "dynamo.mocker" in (up_dir / "launch.sh").read_text()
    assert (out / "local" / "launch.sh").read_text() == real
    check = cli("build", spec, "-t", "local", "-o", out, "--check")
    assert check.returncode == 0, check.stdout + check.stderr


# --- DYN522: one deployment per directory -----------------------------------------------------------


def hold_lock(run_dir: Path) -> int:
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / "deployment.lock", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    fcntl.flock(fd, fcntl.LOCK_EX)
    (run_dir / "launch.pid").write_text(f"{os.getpid()}\n")
    return fd


def test_second_up_on_a_running_directory_is_refused_and_touches_nothing(tmp_path):
    spec = write_spec(tmp_path, AGG, free_port_block(8))
    local = tmp_path / "out" / UP_DIR
    build_for_up(spec, tmp_path / "out")
    marker = local / "run" / "discovery" / "state"
    marker.parent.mkdir(parents=True)
    marker.write_text("the running deployment's discovery state")
    launch = (local / "launch.sh").stat()
    fd = hold_lock(local / "run")
    try:
        result = cli("up", spec, "-o", tmp_path / "out", "--smoke")
    finally:
        os.close(fd)
    assert result.returncode == 1
    assert_no_traceback(result)
    assert "error DYN522" in result.stderr and f"launch.sh pid {os.getpid()}" in result.stderr, result.stderr
    assert f"kill -TERM {os.getpid()}" in result.stderr
    assert marker.read_text() == "the running deployment's discovery state"
    assert (local / "launch.sh").stat().st_ino == launch.st_ino, "not even rebuilt"


def test_launch_script_refuses_to_start_over_a_running_one(tmp_path):
    out = build(write_spec(tmp_path, AGG, free_port_block(8)), ["local"], tmp_path / "out").outputs[0].directory
    marker = out / "run" / "discovery" / "state"
    marker.parent.mkdir(parents=True)
    marker.write_text("x")
    fd = hold_lock(out / "run")
    try:
        proc = subprocess.run(["bash", out / "launch.sh"], capture_output=True, text=True, timeout=30)
    finally:
        os.close(fd)
    assert proc.returncode == 3
    assert "a deployment is already running" in proc.stderr and str(os.getpid()) in proc.stderr
    assert marker.exists(), "the running deployment's discovery state is kept"


def test_up_refuses_in_process_before_starting(tmp_path):
    from dyncc.tools.lifecycle import local

    result = build(write_spec(tmp_path, AGG, free_port_block(8)), ["local"], tmp_path / "out")
    fd = hold_lock(result.outputs[0].directory / "run")
    try:
        with pytest.raises(DiagnosticError) as caught:
            local.up(result, 5, smoke=True, detach=False, bench=None, echo=lambda _: None)
    finally:
        os.close(fd)
    assert [d.code for d in caught.value.diagnostics] == ["DYN522"]


# --- readiness answered only by the deployment's own processes ----------------------------------------


def test_listener_outside_the_owner_tree_is_foreign(squatter):
    port, _ = squatter
    ready_probe.check_owned([("frontend", "127.0.0.1", port)], os.getpid())  # our thread: ours
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(ready_probe.Foreign, match=f"frontend port {port} is served by pid {os.getpid()}"):
            ready_probe.check_owned([("frontend", "127.0.0.1", port)], child.pid)
    finally:
        child.kill()
        child.wait()


def test_ready_probe_exits_3_when_an_impostor_answers(squatter):
    port, handler = squatter
    probe = ROOT / "dyncc" / "targets" / "ready_probe.py"
    url = f"http://127.0.0.1:{port}"
    answered = subprocess.run([sys.executable, probe, url, "Qwen/Qwen3-0.6B"], capture_output=True, text=True)
    assert answered.returncode == 0, "without --owner the impostor passes: what D-06 exploited"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        owned = subprocess.run(
            [sys.executable, probe, "--owner", str(child.pid), url, "Qwen/Qwen3-0.6B", f"agg-0={port}"],
            capture_output=True,
            text=True,
        )
    finally:
        child.kill()
        child.wait()
    assert owned.returncode == 3, owned.stderr
    assert f"frontend port {port} is served by pid {os.getpid()}" in owned.stderr
    assert "not by this deployment" in owned.stderr


def test_ready_probe_says_what_it_waits_for():
    port = free_port_block(1)
    probe = ROOT / "dyncc" / "targets" / "ready_probe.py"
    proc = subprocess.run([sys.executable, probe, f"http://127.0.0.1:{port}", "m"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert f"frontend http://127.0.0.1:{port}:" in proc.stderr and "refused" in proc.stderr


def test_ready_probe_workers_alone_needs_no_frontend(squatter):
    """What a Dynamo 0.x launch script waits for before it starts the frontend: every worker's /health,
    the last one named while it does not answer, and still only on the deployment's own ports."""
    port, _ = squatter
    closed = free_port_block(1)
    probe = [sys.executable, ROOT / "dyncc" / "targets" / "ready_probe.py"]
    assert subprocess.run([*probe, "--workers", f"agg-0={port}"], capture_output=True).returncode == 0
    waiting = subprocess.run([*probe, "--workers", f"agg-0={port}", f"agg-1={closed}"], capture_output=True, text=True)
    assert waiting.returncode == 1 and waiting.stderr.startswith(f"agg-1 http://127.0.0.1:{closed}/health:")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        owner = ["--owner", str(child.pid)]
        foreign = subprocess.run([*probe, *owner, "--workers", f"agg-0={port}"], capture_output=True, text=True)
    finally:
        child.kill()
        child.wait()
    assert foreign.returncode == 3 and f"agg-0 port {port} is served by pid {os.getpid()}" in foreign.stderr


# --- real Dynamo: loopback only, signals, no orphans ------------------------------------------------


def tree_listeners(root: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket the process tree under ``root`` listens on."""
    table = ready_probe.listeners()
    assert table is not None, "/proc/net/tcp is needed"
    inodes = set().union(*(ready_probe.socket_inodes(pid) for pid in ready_probe.process_tree(root)))
    return sorted((address, port) for port, entries in table.items() for address, inode in entries if inode in inodes)


class Up:
    """`dyncc up` as a user runs it: a real process, its output read line by line."""

    def __init__(self, spec: Path, out: Path, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dyncc", "up", str(spec), "-o", str(out), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        self.lines: list[str] = []
        self.launch_pid = 0
        deadline = time.monotonic() + READY_TIMEOUT + 30
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if "dyncc up: serving" in line or time.monotonic() > deadline:
                break
        assert any("dyncc up: serving" in line for line in self.lines), "\n".join(self.lines)
        self.launch_pid = int((out / UP_DIR / "run" / "launch.pid").read_text())
        self.pids = [int(m.group(1)) for line in self.lines if (m := re.search(r"\(pid (\d+)\)", line))]
        self.tree = ready_probe.process_tree(self.launch_pid)

    def gone(self, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(_alive(pid) for pid in [self.launch_pid, *self.pids]):
                return True
            time.sleep(0.2)
        return False

    def kill_all(self) -> None:
        for pid in [self.launch_pid, *self.pids]:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.e2e
@pytest.mark.slow
@needs_dynamo
def test_disagg_deployment_listens_on_loopback_only(tmp_path):
    base = free_port_block(16)
    spec = write_spec(tmp_path, DISAGG, base)
    running = Up(spec, tmp_path / "out")
    try:
        sockets = tree_listeners(running.launch_pid)
        ports = {port for _, port in sockets}
        assert {base, base + 1, base + 2, base + 3, base + 4} <= ports, sockets  # frontend, 2 workers, broker
        exposed = [(a, p) for a, p in sockets if a not in ("127.0.0.1", "::1")]
        assert exposed == [], f"listening beyond loopback: {exposed}"
        ss = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
        for pid in running.tree:
            for row in ss.splitlines():
                if f"pid={pid}," in row:
                    assert row.split()[3].rsplit(":", 1)[0] in ("127.0.0.1", "[::1]"), row
    finally:
        running.proc.send_signal(signal.SIGTERM)
        assert running.proc.wait(30) == 0
        assert running.gone()


@pytest.mark.e2e
@pytest.mark.slow
@needs_dynamo
def test_sighup_stops_the_deployment_and_a_second_up_is_refused_meanwhile(tmp_path):
    base = free_port_block(16)
    spec = write_spec(tmp_path, AGG, base)
    running = Up(spec, tmp_path / "out")
    try:
        second = subprocess.run(
            [sys.executable, "-m", "dyncc", "up", str(spec), "-o", str(tmp_path / "out"), "--smoke"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
        assert second.returncode == 1 and "error DYN522" in second.stderr, second.stdout + second.stderr
        assert running.proc.poll() is None and _alive(running.launch_pid), "the running one is untouched"
        running.proc.send_signal(signal.SIGHUP)
        assert running.proc.wait(30) == 0
        assert running.gone(), "SIGHUP stops every process of the deployment"
        assert all(ready_probe.bind_error("127.0.0.1", p) is None for p in (base, base + 1, base + 2))
    finally:
        running.kill_all()


@pytest.mark.e2e
@pytest.mark.slow
@needs_dynamo
def test_killed_up_takes_its_deployment_with_it(tmp_path):
    running = Up(write_spec(tmp_path, AGG, free_port_block(16)), tmp_path / "out")
    try:
        running.proc.send_signal(signal.SIGKILL)  # no handler runs: the parent-death signal must do it
        running.proc.wait(10)
        assert running.gone(), "no deployment outlives the `dyncc up` serving it"
    finally:
        running.kill_all()


@pytest.mark.e2e
@pytest.mark.slow
@needs_dynamo
def test_impostor_on_the_frontend_port_gets_no_smoke_prompts(tmp_path, squatter):
    port, handler = squatter
    spec = write_spec(tmp_path, AGG, port, system_port_base=free_port_block(8))
    result = subprocess.run(
        [sys.executable, "-m", "dyncc", "up", str(spec), "-o", str(tmp_path / "out"), "--smoke"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 1
    assert "error DYN521" in result.stderr and f"127.0.0.1:{port}" in result.stderr, result.stderr
    assert "smoke:" not in result.stdout
    assert handler.prompts == []
