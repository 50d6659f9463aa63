"""The local deployment dyncc writes, run for real on the releases between 0.5.1 and 1.6.1 (issue 31).

Flags are checked against each release's parsers elsewhere (test_release_parsers.py); what only a run shows is
whether the release behaves as launch.sh assumes: file discovery, the ZMQ event plane through the loopback
broker, the DYN_*_HOST loopback settings, readiness on DYN_SYSTEM_PORT, etcd + NATS for 0.x. Each release
runs from its unpacked wheels (scripts/setup.sh) in a venv of its own whose `dynamo` is that release's alone
(the project venv's 1.6.1 `dynamo` would fill in any module the release lacks), with the mock engine.

Found on 1.3.1, 1.4.2 and 1.5.1 (see AS_WRITTEN_FAILS): what dyncc writes does not come up, for two reasons
that the runs with them closed (`_close_gaps`) show to be the only ones:
- their DYN_TCP_RESPONSE_STREAM_HOST names a network *interface* (1.6.1: an address), so the frontend's
  `127.0.0.1` fails every model registration with "Interface not found: 127.0.0.1"; `lo` serves;
- 1.3.1's worker, given --model-name, records its config and tokenizer as hf://<model-name>/<file> (1.4.2 on:
  URLs on the worker's system port), so the frontend reads them from the Hugging Face cache by the served
  name: offline and without that cache entry it never lists the model.
0.8.1: its NATS client cannot read the JetStream reply of a nats-server older than 2.10 (Debian's is 2.9.10),
so its workers exit at start-up; 0.8.1's mock engine has no disagg (dyncc refuses it with DYN503).
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
from conftest import ROOT, in_ci
from test_lifecycle import example_on_free_ports

from dyncc import run
from dyncc.targets.ready_probe import bind_error

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SERVED = "Qwen/Qwen3-0.6B"
READY_S = 150
# What each release's log says when it runs what dyncc writes, unchanged (agg_router.yaml).
AS_WRITTEN_FAILS = {
    "1.3.1": ("frontend", f"hub::from_hf({SERVED}): Model snapshots for '{SERVED}' not found in cache"),
    "1.4.2": ("frontend", "Interface not found: 127.0.0.1"),
    "1.5.1": ("frontend", "Interface not found: 127.0.0.1"),
}
RESPONSE_STREAM_LINE = "export DYN_TCP_RESPONSE_STREAM_HOST=127.0.0.1\n"


def _release_tree(version: str) -> Path:
    scripts = str(ROOT / "scripts")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)
    from release_flags import unpacked, wheels_for

    if wheels_for(version) is None:
        reason = f"the ai-dynamo {version} wheels are not in .cache/wheels/ (scripts/setup.sh downloads them)"
        if in_ci():
            pytest.fail(f"CI must run the real release: {reason}", pytrace=False)
        pytest.skip(reason)
    return unpacked(version)


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


@pytest.mark.parametrize("version", list(AS_WRITTEN_FAILS))
def test_what_dyncc_writes_does_not_come_up_on_release(tmp_path, release_python, version):
    """`dyncc up --smoke` as a user runs it: not ready, for the reason the release's own log gives. When dyncc
    writes what the release needs, this fails: drop the release from AS_WRITTEN_FAILS (the test below then
    covers it as written)."""
    spec, ports = example_on_free_ports("agg_router.yaml", "local", tmp_path, 5)
    env = {**os.environ, "DYNCC_PYTHON": str(release_python(version))}
    up = subprocess.run(
        [sys.executable, "-m", "dyncc", "up", str(spec), "--engine", "mocker", "--dynamo-version", version,
         "--smoke", "--timeout", "45", "-o", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=240,
    )  # fmt: skip
    directory = tmp_path / "out" / "up-qwen3-agg-router"
    component, cause = AS_WRITTEN_FAILS[version]
    assert up.returncode != 0 and "did not become ready" in up.stdout + up.stderr, up.stdout + up.stderr
    assert cause in _log(directory, component), _log(directory, component)[-3000:]
    assert all(bind_error("127.0.0.1", p) is None for p in ports)  # it stopped what it started


def _hf_cache(model: Path, into: Path) -> Path:
    """A Hugging Face hub cache holding `model` as SERVED's snapshot: where 1.3.1's frontend reads it."""
    repo = into / ("models--" + SERVED.replace("/", "--"))
    revision = "0" * 40
    shutil.copytree(model, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    return into


def _close_gaps(version: str, built: Path, env: dict[str, str]) -> None:
    """Apply, to a built deployment, what AS_WRITTEN_FAILS says the release lacks (nothing for the others)."""
    if version not in AS_WRITTEN_FAILS:
        return
    launch = built / "launch.sh"
    text = launch.read_text()
    if RESPONSE_STREAM_LINE in text:  # an interface name on 1.3-1.5
        launch.write_text(text.replace(RESPONSE_STREAM_LINE, "export DYN_TCP_RESPONSE_STREAM_HOST=lo\n"))
    if version == "1.3.1":
        env["HF_HUB_CACHE"] = str(_hf_cache(built / "model", built.parent / "hf-cache"))


def _serve_and_stop(built: Path, python: Path, env: dict[str, str], ports: list[int]) -> list[run.SmokeResult]:
    """Run the built launch.sh until ready, smoke-test it, stop it with SIGTERM; its exit is checked."""
    log = built.parent / "launch.log"
    env = {**env, "DYNCC_PYTHON": str(python), "DYNCC_RUN_DIR": str(built / "run"), "DYNCC_READY_TIMEOUT": "120"}
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


@pytest.mark.parametrize(
    ("version", "example"),
    [(v, e) for v in ("1.3.1", "1.4.2", "1.5.1") for e in ("agg_router.yaml", "disagg_router.yaml")],
)
def test_release_serves_a_chat_completion_with_the_mock_engine(tmp_path, release_python, version, example):
    """The release's real frontend and mock engine behind the launch.sh dyncc builds for it (with the gaps
    AS_WRITTEN_FAILS names closed): ready, /v1/models lists the model, both smoke completions, clean stop."""
    spec, ports = example_on_free_ports(example, "local", tmp_path, 7)
    python = release_python(version)
    build = subprocess.run(
        [sys.executable, "-m", "dyncc", "build", str(spec), "--engine", "mocker", "--dynamo-version", version,
         "-t", "local", "-o", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    built = tmp_path / "out" / "local"
    assert f"Dynamo {version}" in (built / "launch.sh").read_text()
    env = dict(os.environ)
    _close_gaps(version, built, env)
    results = _serve_and_stop(built, python, env, ports)
    assert results and all(r.ok for r in results), [(r.name, r.detail) for r in results]


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
