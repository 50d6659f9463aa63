"""The Slurm test cluster itself (scripts/slurm/test-cluster.sh) is private: a second cluster started and
stopped beside the session's touches no other Slurm on the machine (foreign processes named like Slurm's
daemons, the session cluster and its running job, /etc/slurm, /etc/munge), and leaves nothing of its own."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SLURM_CLUSTER, SlurmCluster, sh, start_slurm_cluster, stop_slurm_cluster

SYSTEM_CONFIG = (Path("/etc/slurm"), Path("/etc/munge"))
FOREIGN_NAMES = ("slurmd", "slurmctld", "slurmstepd", "munged")


def _tree_digest(root: Path) -> dict[str, tuple[object, ...]] | None:
    """Every entry under `root` with its kind, mode and content hash (a link: its target); None when absent."""
    if not root.exists() and not root.is_symlink():
        return None
    digest: dict[str, tuple[object, ...]] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        info = path.lstat()
        if path.is_symlink():
            digest[str(path)] = ("link", os.readlink(path))
        elif path.is_dir():
            digest[str(path)] = ("dir", info.st_mode, info.st_uid, info.st_gid)
        else:
            content = hashlib.sha256(path.read_bytes()).hexdigest()
            digest[str(path)] = ("file", info.st_mode, info.st_uid, info.st_gid, content)
    return digest


@pytest.fixture
def foreign_processes(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes named slurmd, slurmctld, slurmstepd and munged (copies of `sleep`) that this cluster
    did not start: what `pkill -x slurmd` and the like would have killed."""
    bin_dir = tmp_path / "foreign-bin"
    bin_dir.mkdir()
    procs = []
    for name in FOREIGN_NAMES:
        shutil.copy2("/bin/sleep", bin_dir / name)
        procs.append(subprocess.Popen([str(bin_dir / name), "600"], start_new_session=True))
    try:
        names = lambda: [Path(f"/proc/{p.pid}/comm").read_text().strip() for p in procs]  # noqa: E731
        assert _wait_for(lambda: names() == list(FOREIGN_NAMES), 5), names()  # exec'd under those names
        yield procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def _environ_has(pid: int, entry: bytes) -> bool:
    try:
        return entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:  # gone, or a zombie
        return False


def _processes_with(entry: bytes) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _environ_has(int(p.name), entry)]


def _job_processes(conf: bytes, job: bytes) -> list[int]:
    return [pid for pid in _processes_with(conf) if _environ_has(pid, job)]


def _job_state(job: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True, env=env).stdout
    match = re.search(r"\bJobState=(\S+)", out)
    return match.group(1) if match else ""


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return bool(predicate())


def test_a_second_cluster_starts_and_stops_touching_no_other_slurm(
    slurm: SlurmCluster, foreign_processes: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    before = {str(etc): _tree_digest(etc) for etc in SYSTEM_CONFIG}
    # A job on the session's cluster: another cluster's stop must not cancel it.
    session_job = sh("sbatch", "--parsable", "--output=/dev/null", "--wrap", "sleep 600", cwd=tmp_path)
    assert session_job.returncode == 0, session_job.stderr
    session_job_id = session_job.stdout.strip().split(";")[0]
    assert _wait_for(lambda: _job_state(session_job_id) == "RUNNING", 20)

    root = Path(tempfile.mkdtemp(prefix="dyncc-slurm-"))
    try:
        second = start_slurm_cluster(root, nodes=2)
        env = {**os.environ, "SLURM_CONF": str(second.conf)}
        nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True, env=env)
        assert nodes.stdout.split("\n")[:2] == ["node1 idle", "node2 idle"], nodes.stdout + nodes.stderr
        daemons = _processes_with(f"DYNCC_SLURM_DAEMON={root}".encode())
        assert len(daemons) >= 4, daemons  # munged, slurmctld, two slurmd (and slurmscriptd)
        assert _processes_with(f"DYNCC_SLURM_WATCHDOG={root}".encode())  # (its shell, and that shell's sleep)
        job = subprocess.run(
            ["sbatch", "--parsable", "--output=/dev/null", "--wrap", "sleep 600"],
            capture_output=True, text=True, env=env, cwd=tmp_path,
        )  # fmt: skip
        assert job.returncode == 0, job.stderr
        job_id = job.stdout.strip().split(";")[0]
        assert _wait_for(lambda: _job_state(job_id, env) == "RUNNING", 20)
        job_env = (f"SLURM_CONF={second.conf}".encode(), f"SLURM_JOB_ID={job_id}".encode())
        assert _job_processes(*job_env), "the second cluster's job has no process"  # so the check below can fail

        stop_slurm_cluster(second)

        assert _processes_with(f"DYNCC_SLURM_DAEMON={root}".encode()) == []  # its daemons and slurmstepd
        assert _wait_for(lambda: not _processes_with(f"DYNCC_SLURM_WATCHDOG={root}".encode()), 5)
        assert _job_processes(*job_env) == []
        assert [p.args for p in foreign_processes if p.poll() is not None] == []  # every foreign one still runs
        assert _job_state(session_job_id) == "RUNNING"  # the session's cluster and its job are untouched
        assert {str(etc): _tree_digest(etc) for etc in SYSTEM_CONFIG} == before
    finally:
        sh("bash", SLURM_CLUSTER, "stop", root, timeout=120)  # (nothing left to stop when the test passed)
        shutil.rmtree(root, ignore_errors=True)
        sh("scancel", session_job_id)


def test_a_cluster_whose_owner_died_is_stopped_by_its_watchdog() -> None:
    owner = subprocess.Popen(["sleep", "600"])
    root = Path(tempfile.mkdtemp(prefix="dyncc-slurm-"))
    try:
        start_slurm_cluster(root, nodes=1, owner=owner.pid)
        marker = f"DYNCC_SLURM_DAEMON={root}".encode()
        assert _processes_with(marker)
        owner.kill()
        owner.wait()
        assert _wait_for(lambda: not _processes_with(marker), 20), _processes_with(marker)
        assert _wait_for(lambda: not _processes_with(f"DYNCC_SLURM_WATCHDOG={root}".encode()), 5)
    finally:
        owner.kill()
        owner.wait()
        sh("bash", SLURM_CLUSTER, "stop", root, timeout=120)
        shutil.rmtree(root, ignore_errors=True)
