"""`dyncc up` / `status` / `logs` / `down` on this machine, found by the deployment's directory; the state
file's checks (a reused pid is never signalled); `up -t k8s` as far as a machine without an API server
allows (the kubectl commands it runs, checked offline by kubectl itself, and its coded refusals)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, assert_no_traceback, free_port_block, run_dyncc
from dynamo_parsers import DYNAMO_AVAILABLE
from ruamel.yaml import YAML

from dyncc.targets.ready_probe import bind_error
from dyncc.tools.lifecycle import k8s
from dyncc.tools.lifecycle.local import lock_holders
from dyncc.tools.lifecycle.state import DeploymentState, LocalRun, boot_id, start_ticks, state_path, write_state

# Deployments started and stopped for real: the full suite runs them, the inner loop does not.
pytestmark = pytest.mark.slow

needs_dynamo = pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")
DISAGG_COMPONENTS = ["frontend", "prefill-0", "prefill-1", "decode-0", "decode-1", "event-broker"]


def example_on_free_ports(example: str, section: str, tmp_path: Path, ports: int) -> tuple[Path, list[int]]:
    """A copy of the example whose `section` ports are moved to a free block (nothing else changed), with the
    ports it will listen on. Always a copy: the defaults (8000, 8081...) being free when checked says nothing
    of when the job binds them (another process took 8000 in between, once in CI)."""
    spec = EXAMPLES / example
    base = free_port_block(ports + 1, "0.0.0.0")
    yaml = YAML()
    data = yaml.load(spec.read_text())
    data[section] = {**(data.get(section) or {}), "http_port": base, "system_port_base": base + 1}
    copy = tmp_path / example
    with copy.open("w") as f:
        yaml.dump(data, f)
    return copy, [base, *range(base + 1, base + ports)]


def _alive(pid: int) -> bool:
    return start_ticks(pid) is not None


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return bool(predicate())


# --- on this machine: up --detach, status, logs, down -----------------------------------------------------


@pytest.mark.e2e
@pytest.mark.slow
@needs_dynamo
def test_local_up_detach_status_logs_down(tmp_path):
    spec, ports = example_on_free_ports("disagg_router.yaml", "local", tmp_path, 7)  # + the event broker's 2
    out = tmp_path / "out"
    up = run_dyncc("up", spec, "--engine", "mocker", "-o", out, "--detach", timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "smoke: 2 passed, 0 failed" in up.stdout and "dyncc up: detached" in up.stdout, up.stdout
    directory = out / "up-qwen3-disagg-router"
    assert f"dyncc down {directory}" in up.stdout
    launch_pid = int((directory / "run" / "launch.pid").read_text())
    lock = directory / "run" / "deployment.lock"
    try:
        started = lock_holders(lock)
        assert launch_pid in started and len(started) >= 1 + len(DISAGG_COMPONENTS), started  # it outlived `up`

        status = run_dyncc("status", directory)
        assert status.returncode == 0, status.stdout + status.stderr
        rows = {line.split()[0]: line for line in status.stdout.splitlines()[1:]}
        assert sorted(rows) == sorted(DISAGG_COMPONENTS), status.stdout
        for name in DISAGG_COMPONENTS:
            assert " running " in rows[name], rows[name]
        for name in DISAGG_COMPONENTS[:-1]:  # the broker has no health endpoint to probe
            assert " ready: " in rows[name], rows[name]
        assert "lists Qwen/Qwen3-0.6B" in rows["frontend"]

        logs = run_dyncc("logs", directory, "decode")
        assert logs.returncode == 0, logs.stderr
        for name in ("decode-0", "decode-1"):
            first = (directory / "run" / "logs" / f"{name}.log").read_text().splitlines()[0]
            assert re.sub(r"\x1b\[[0-9;]*m", "", first) in logs.stdout.replace(f"{name} | ", "")
            assert f"{name} | " in logs.stdout
        assert "prefill-0 |" not in logs.stdout
        unknown = run_dyncc("logs", directory, "decoder")
        assert unknown.returncode == 1 and "error DYN599" in unknown.stderr and "decode-0" in unknown.stderr

        follow = subprocess.Popen(
            [sys.executable, "-m", "dyncc", "logs", str(directory), "frontend", "-f"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        down = run_dyncc("down", directory, timeout=60)
        assert down.returncode == 0, down.stdout + down.stderr
        assert "no process of the deployment" in down.stdout
        assert follow.wait(15) == 0  # `logs -f` ends once the deployment has
    finally:
        run_dyncc("down", directory, timeout=60)
    assert lock_holders(lock) == [] and not _alive(launch_pid)
    assert all(bind_error("127.0.0.1", p) is None for p in ports)
    after = run_dyncc("status", directory)
    assert after.returncode == 1 and "error DYN592" in after.stderr and " exited " in after.stdout
    again = run_dyncc("down", directory)
    assert again.returncode == 0 and "nothing runs" in again.stdout


@pytest.mark.e2e
@pytest.mark.slow
@needs_dynamo
def test_local_up_in_the_foreground_is_stopped_by_down(tmp_path):
    """`dyncc down` from another shell stops a foreground `dyncc up`, which then exits 0."""
    spec, _ = example_on_free_ports("agg.yaml", "local", tmp_path, 4)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dyncc", "up", str(spec), "--engine", "mocker", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "smoke: 2 passed" in line:
                break
        assert any("(Ctrl-C to stop)" in line for line in lines), lines
        directory = out / "up-qwen3-agg"
        down = run_dyncc("down", directory, timeout=60)
        assert down.returncode == 0, down.stdout + down.stderr
        assert proc.wait(30) == 0
        assert lock_holders(directory / "run" / "deployment.lock") == []
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)


# --- the state file: found by directory, never a reused pid -----------------------------------------------


def _local_state(directory: Path, pid: int, ticks: int) -> DeploymentState:
    return DeploymentState(
        target="local",
        name="t",
        served_name="m",
        spec=str(directory / "spec.yaml"),
        directory=str(directory),
        started_at=0,
        local=LocalRun(pid=pid, start_ticks=ticks, boot_id=boot_id(), run_dir=str(directory / "run")),
    )


def test_down_never_signals_a_pid_that_is_no_longer_the_launch_script(tmp_path):
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        ticks = start_ticks(sleeper.pid)
        assert ticks is not None
        write_state(_local_state(tmp_path, sleeper.pid, ticks - 1))  # the same pid, started at another time
        proc = run_dyncc("down", tmp_path)
        assert proc.returncode == 0 and "nothing runs" in proc.stdout, proc.stdout + proc.stderr
        assert sleeper.poll() is None, "a process that merely has the recorded pid was signalled"

        write_state(_local_state(tmp_path, sleeper.pid, ticks))  # now it is the recorded process: it is stopped
        proc = run_dyncc("down", tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert sleeper.wait(10) == -signal.SIGTERM
    finally:
        sleeper.kill()
        sleeper.wait()


def test_no_state_and_a_damaged_state_are_coded(tmp_path):
    (tmp_path / "out" / "up-x" / "run").mkdir(parents=True)
    write_state(_local_state(tmp_path / "out" / "up-x", 2, 0))
    for command in ("status", "logs", "down", "bench"):
        proc = run_dyncc(command, tmp_path / "out")
        assert proc.returncode == 1 and "error DYN590" in proc.stderr, proc.stderr
        assert "deployments under" in proc.stderr and "up-x" in proc.stderr
        assert_no_traceback(proc)
    state_path(tmp_path / "out" / "up-x").write_text('{"version": 1, "target": "mars"}')
    proc = run_dyncc("status", tmp_path / "out" / "up-x")
    assert proc.returncode == 1 and "error DYN591" in proc.stderr, proc.stderr
    copied = tmp_path / "copy"
    (copied / "run").mkdir(parents=True)
    write_state(
        _local_state(tmp_path / "elsewhere", 2, 0).model_copy(update={"directory": str(tmp_path / "elsewhere")})
    )
    (copied / "run" / "up.json").write_bytes(state_path(tmp_path / "elsewhere").read_bytes())
    proc = run_dyncc("down", copied)
    assert proc.returncode == 1 and "error DYN591" in proc.stderr and "copied or moved" in proc.stderr


# --- Kubernetes: the commands, checked by kubectl offline, and the refusals -------------------------------


@pytest.fixture
def k8s_built(tmp_path):
    proc = run_dyncc("build", EXAMPLES / "disagg_router.yaml", "-t", "k8s", "-o", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    return tmp_path / "out" / "k8s"


def test_k8s_commands_are_the_ones_a_user_would_run_and_kubectl_accepts_the_directory(k8s_built):
    kubectl = k8s.kubectl()
    commands = k8s.commands(k8s_built, "prod", 15)
    directory = str(k8s_built)
    assert commands["apply"] == [kubectl, "--context", "prod", "apply", "-k", directory]
    assert commands["wait"] == [
        kubectl, "--context", "prod", "wait", "--for=condition=Ready",
        "dynamographdeployment/qwen3-disagg-router", "--timeout=15s",
    ]  # fmt: skip
    assert commands["port-forward"] == [
        kubectl, "--context", "prod", "port-forward", "--address", "127.0.0.1", "svc/qwen3-disagg-router-frontend",
        "0:8000",
    ]  # fmt: skip
    assert commands["delete"][:6] == [kubectl, "--context", "prod", "delete", "-k", directory]
    # `apply -k` renders the directory with kustomize first: kubectl does that offline, and it holds the DGD.
    rendered = subprocess.run([kubectl, "kustomize", directory], capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    assert "kind: DynamoGraphDeployment" in rendered.stdout and "name: qwen3-disagg-router\n" in rendered.stdout


def _k8s_up(tmp_path: Path, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "dyncc", "up", str(EXAMPLES / "disagg_router.yaml"), "-t", "k8s", "-o",
         str(tmp_path / "out")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
    )  # fmt: skip


def test_k8s_up_without_a_kubeconfig_is_coded_and_applies_nothing(tmp_path):
    proc = _k8s_up(tmp_path, tmp_path / "no-such-kubeconfig")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "error DYN586: no kubeconfig" in proc.stderr
    assert_no_traceback(proc)
    assert not state_path(tmp_path / "out" / "up-qwen3-disagg-router-k8s").exists()  # nothing was started


def test_k8s_up_with_no_api_server_answering_is_coded_within_seconds(tmp_path):
    port = free_port_block(1)  # nothing listens there
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: nowhere\n"
        f"clusters: [{{name: nowhere, cluster: {{server: 'https://127.0.0.1:{port}'}}}}]\n"
        "contexts: [{name: nowhere, context: {cluster: nowhere, user: nobody}}]\n"
        "users: [{name: nobody, user: {token: not-a-secret}}]\n"
    )
    started = time.monotonic()
    proc = _k8s_up(tmp_path, kubeconfig)
    assert time.monotonic() - started < 30
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "error DYN586: no Kubernetes API server answers for context nowhere" in proc.stderr
    assert f"127.0.0.1:{port}" in proc.stderr
    assert not state_path(tmp_path / "out" / "up-qwen3-disagg-router-k8s").exists()


def test_bench_on_kubernetes_is_refused_before_anything_is_applied(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "dyncc", "up", str(EXAMPLES / "disagg_router.yaml"), "-t", "k8s", "--bench", "-o",
         str(tmp_path / "out")],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={**os.environ, "KUBECONFIG": str(tmp_path / "none"), "HOME": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 1 and "error DYN927" in proc.stderr, proc.stderr


# --- up --dynamo-version ----------------------------------------------------------------------------------


def test_k8s_up_for_another_release_builds_what_build_does_for_it(tmp_path):
    """`up --dynamo-version` as `build --dynamo-version`: the directory `up` builds (before kubectl finds no
    cluster) holds the files `build` writes for that release, not the spec's own release's."""
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "no-such-kubeconfig"), "HOME": str(tmp_path)}
    spec = EXAMPLES / "disagg_router.yaml"
    up = subprocess.run(
        [sys.executable, "-m", "dyncc", "up", str(spec), "-t", "k8s", "--dynamo-version", "0.5.1", "-o",
         str(tmp_path / "out")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert up.returncode == 1 and "error DYN586: no kubeconfig" in up.stderr, up.stdout + up.stderr
    assert_no_traceback(up)
    built = {}
    for version in ("0.5.1", None):
        out = tmp_path / f"build-{version}"
        assert run_dyncc("build", spec, "-t", "k8s", "-o", out, *(["--dynamo-version", version] if version else []))
        built[version] = {p.name: p.read_text() for p in (out / "k8s").iterdir()}
    directory = tmp_path / "out" / "up-qwen3-disagg-router-k8s"
    by_up = {p.name: p.read_text() for p in directory.iterdir() if p.is_file()}
    assert by_up == built["0.5.1"] and by_up != built[None]


@pytest.mark.e2e
@pytest.mark.slow
def test_local_up_for_dynamo_0_5_1_serves_and_passes_its_smoke_test(tmp_path):
    """`up --dynamo-version 0.5.1` on this machine with 0.5.1 itself (its venv): etcd and NATS, 0.5.1's
    frontend and mock engine, the smoke test's two completions, then a clean stop."""
    import shutil

    from conftest import DYNAMO_05

    assert DYNAMO_05.exists() and shutil.which("etcd") and shutil.which("nats-server"), "scripts/setup.sh"
    spec, ports = example_on_free_ports("agg_router.yaml", "local", tmp_path, 3)
    env = {**os.environ, "DYNCC_PYTHON": str(DYNAMO_05)}
    up = subprocess.run(
        [sys.executable, "-m", "dyncc", "up", str(spec), "--engine", "mocker", "--dynamo-version", "0.5.1",
         "--smoke", "-o", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert up.returncode == 0, up.stdout + up.stderr
    assert "smoke: 2 passed, 0 failed" in up.stdout, up.stdout
    launch = (tmp_path / "out" / "up-qwen3-agg-router" / "launch.sh").read_text()
    assert "Dynamo 0.5.1" in launch and "etcd" in launch  # written for 0.5.1: its discovery is etcd + NATS
    assert all(bind_error("127.0.0.1", p) is None for p in ports)  # stopped after the smoke test
