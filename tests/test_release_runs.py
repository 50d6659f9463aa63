"""The local deployment dyncc writes, run for real on the releases between 0.5.1 and 1.6.1 (issue 31).

Flags are checked against each release's parsers elsewhere (test_release_parsers.py); what only a run shows is
whether the release behaves as launch.sh assumes: file discovery, the ZMQ event plane through the loopback
broker, the DYN_*_HOST loopback settings, readiness on DYN_SYSTEM_PORT, etcd + NATS for 0.x. Each release
runs from its unpacked wheels (scripts/setup.sh) in a venv of its own whose `dynamo` is that release's alone
(the project venv's 1.6.1 `dynamo` would fill in any module the release lacks), with the mock engine.

Every release below comes up as dyncc writes it, unchanged. What these runs found, now facts of the release
data (scripts/gen_releases.py DOCUMENTED, read by profiles.py) that launch.sh follows:
- 1.1-1.5 read DYN_TCP_RESPONSE_STREAM_HOST as a network *interface* (1.6.1: an address): `127.0.0.1` fails
  every model registration with "Interface not found: 127.0.0.1", so launch.sh writes `lo` there;
- 1.1-1.3's worker, given a model directory and --model-name, records its files as hf://<model-name>/<file>
  (1.4.2 on: URLs on the worker's system port): the frontend reads them from the Hugging Face cache by the
  served name, so launch.sh enters the directory in a cache of its run directory (HF_HUB_CACHE);
- 1.0-1.1's event plane defaults to NATS (a parser default), which a one-node deployment does not run:
  launch.sh sets DYN_EVENT_PLANE=zmq (the broker's).
Not running here: 1.0.2's mock worker connects to NATS at start-up whatever the event plane; 0.8.1's NATS
client cannot read the JetStream reply of a nats-server older than 2.10 (Debian's is 2.9.10), so its workers
exit at start-up (its mock prefill and decode workers, switched on by --is-prefill-worker and
--is-decode-worker, are checked by its own parser in tests/test_release_parsers.py).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import venv
from pathlib import Path

import pytest
from conftest import ROOT, release_wheels
from test_lifecycle import example_on_free_ports

from dyncc.targets.ready_probe import bind_error
from dyncc.tools.lifecycle import run

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SERVED = "Qwen/Qwen3-0.6B"
READY_S = 150
# Releases that come up as written, each with the examples its mock engine can run.
RUNS = [
    (v, e) for v in ("1.1.1", "1.2.1", "1.3.1", "1.4.2", "1.5.1") for e in ("agg_router.yaml", "disagg_router.yaml")
]


def _release_tree(version: str) -> Path:
    return release_wheels(version, "run the real release")


@pytest.fixture(scope="module")
def release_python(tmp_path_factory):
    """version -> a Python whose `dynamo` is that release's unpacked wheels alone, every other package
    being the project venv's (linked in, less its own `dynamo` and ai_dynamo* metadata)."""
    made: dict[str, Path] = {}

    def make(version: str) -> Path:
        if version in made:
            return made[version]
        tree = _release_tree(version)
        root = tmp_path_factory.mktemp(f"dynamo-{version}")
        overlay = root / "site"
        overlay.mkdir()
        for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
            if entry.name != "dynamo" and not entry.name.startswith("ai_dynamo"):
                (overlay / entry.name).symlink_to(entry)
        env = root / "venv"
        venv.EnvBuilder(with_pip=False).create(env)
        site = next((env / "lib").glob("python*/site-packages"))
        (site / "release.pth").write_text(f"{tree}\nimport site; site.addsitedir({str(overlay)!r})\n")
        python = env / "bin" / "python"
        where = subprocess.run(
            [python, "-c", "import dynamo; print(*dynamo.__path__)"], capture_output=True, text=True, timeout=60
        )
        assert where.stdout.split() == [str(tree / "dynamo")], where.stdout + where.stderr
        made[version] = python
        return python

    return make


def _log(directory: Path, name: str) -> str:
    path = directory / "run" / "logs" / f"{name}.log"
    return re.sub(r"\x1b\[[0-9;]*m", "", path.read_text(errors="replace")) if path.exists() else ""


def _build(spec: Path, version: str, out: Path) -> Path:
    """`dyncc build` of the spec for the release, the mock engine and the local target: its directory."""
    build = subprocess.run(
        [sys.executable, "-m", "dyncc", "build", str(spec), "--engine", "mocker", "--dynamo-version", version,
         "-t", "local", "-o", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    return out / "local"


def _serve_and_stop(built: Path, python: Path, env: dict[str, str], ports: list[int]) -> list[run.SmokeResult]:
    """Run the built launch.sh until ready, smoke-test it, stop it with SIGTERM; its exit is checked."""
    log = built.parent / "launch.log"
    env = {**env, "DYNCC_PYTHON": str(python), "DYNCC_RUN_DIR": str(built / "run"), "DYNCC_READY_TIMEOUT": "120"}
    # 1.2+'s frontend keeps the model files it fetches in ~/.cache/dynamo/mdc (HOME's, not XDG_CACHE_HOME's).
    env["HOME"] = str(built.parent / "home")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", str(built / "launch.sh")], stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + READY_S
        url = None
        while url is None and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
            ready = [line for line in log.read_text().splitlines() if line.startswith(run.READY_MARK)]
            url = ready[0][len(run.READY_MARK) :].split("/v1", 1)[0] if ready else None
        assert url, log.read_text()[-3000:] + _log(built, "frontend")[-3000:]
        results = run.smoke(url, SERVED)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 143, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert all(bind_error("127.0.0.1", p) is None for p in ports)  # everything it started stopped
    return results


@pytest.mark.parametrize(("version", "example"), RUNS)
def test_release_serves_a_chat_completion_with_the_mock_engine(tmp_path, release_python, version, example):
    """The release's real frontend and mock engine behind the launch.sh dyncc builds for it, unchanged: ready,
    /v1/models lists the model, both smoke completions, clean stop."""
    spec, ports = example_on_free_ports(example, "local", tmp_path, 7)
    python = release_python(version)
    built = _build(spec, version, tmp_path / "out")
    assert f"Dynamo {version}" in (built / "launch.sh").read_text()
    results = _serve_and_stop(built, python, dict(os.environ), ports)
    assert results and all(r.ok for r in results), [(r.name, r.detail) for r in results]


@pytest.mark.xfail(
    reason="1.0.2's mock worker connects to NATS at start-up ('Failed to connect to NATS') even with file "
    "discovery and DYN_EVENT_PLANE=zmq; a one-node 1.x deployment runs no NATS",
    strict=True,
)
def test_dynamo_1_0_2_serves_agg_without_nats(tmp_path, release_python):
    """1.0.2 as written: its frontend starts (the ZMQ event plane set), its mock workers exit without NATS."""
    if bind_error("127.0.0.1", 4222) is not None:
        pytest.skip("a NATS port is in use: the workers would reach a server this test did not start")
    spec, ports = example_on_free_ports("agg_router.yaml", "local", tmp_path, 7)
    python = release_python("1.0.2")
    _serve_and_stop(_build(spec, "1.0.2", tmp_path / "out"), python, dict(os.environ), ports)


def _nats_server_version() -> tuple[int, ...]:
    found = shutil.which("nats-server")
    if not found:
        return ()
    out = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=30).stdout
    match = re.search(r"v(\d+)\.(\d+)", out)
    return tuple(int(x) for x in match.groups()) if match else ()


@pytest.mark.xfail(
    _nats_server_version() < (2, 10),
    reason="0.8.1's NATS client cannot read the JetStream account reply of nats-server < 2.10 (its workers exit: "
    "'JetStream not available: ... did not match any variant of untagged enum Response')",
    strict=True,
)
def test_dynamo_0_8_1_serves_agg_with_etcd_and_nats(tmp_path, release_python):
    """0.8.1 as written (etcd + NATS on their default ports, started by launch.sh): ready, smoke, stop."""
    if any(bind_error("127.0.0.1", p) is not None for p in (2379, 2380, 4222)):
        pytest.skip("etcd or NATS ports are in use: launch.sh would use a server this test did not start")
    spec, ports = example_on_free_ports("agg_router.yaml", "local", tmp_path, 3)
    env = {**os.environ, "DYNCC_PYTHON": str(release_python("0.8.1"))}
    up = subprocess.run(
        [sys.executable, "-m", "dyncc", "up", str(spec), "--engine", "mocker", "--dynamo-version", "0.8.1",
         "--smoke", "--timeout", "90", "-o", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip
    directory = tmp_path / "out" / "up-qwen3-agg-router"
    assert all(bind_error("127.0.0.1", p) is None for p in (*ports, 2379, 4222))
    assert up.returncode == 0, up.stdout + up.stderr + _log(directory, "agg-0")[-2000:]
    assert "smoke: 2 passed, 0 failed" in up.stdout
