"""`dyncc up -t slurm` / `status` / `logs` / `down` on the session's private Slurm test cluster, with Dynamo's
frontend and mock workers running as the job's steps: the deployment is found by its directory, and
`down` (or Ctrl-C on `up`) cancels the job and leaves no process of it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_dyncc, sh
from dynamo_parsers import DYNAMO_AVAILABLE
from test_lifecycle import example_on_free_ports

from dyncc.tools.lifecycle.state import DeploymentState, SlurmRun, write_state

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh"),
]
WORKERS = ["prefill-0", "prefill-1", "decode-0", "decode-1"]


def _job_field(job: str, field: str) -> str:
    match = re.search(rf"\b{field}=(\S+)", sh("scontrol", "show", "job", job).stdout)
    return match.group(1) if match else ""


def _job_processes(job: str) -> list[int]:
    """Processes of this cluster's job ``job`` (their environment names its SLURM_CONF and job id)."""
    wanted = {f"SLURM_CONF={os.environ['SLURM_CONF']}".encode(), f"SLURM_JOB_ID={job}".encode()}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = set((entry / "environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if wanted <= environ:
            found.append(int(entry.name))
    return found


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return bool(predicate())


def test_up_on_slurm_then_status_logs_and_down(slurm, tmp_path):
    spec, _ = example_on_free_ports("disagg_router.yaml", "slurm", tmp_path, 5)
    out = tmp_path / "out"
    up = run_dyncc("up", spec, "-t", "slurm", "--engine", "mocker", "-o", out, "--detach", timeout=240)
    assert up.returncode == 0, up.stdout + up.stderr
    job = re.search(r"dyncc up: submitted job (\d+)", up.stdout).group(1)
    directory = out / "up-qwen3-disagg-router-slurm"
    try:
        assert re.search(rf"dyncc up: job {job} serves Qwen/Qwen3-0.6B at http://\S+/v1", up.stdout), up.stdout
        assert "smoke: 2 passed, 0 failed" in up.stdout
        assert _job_field(job, "JobState") == "RUNNING"
        assert _job_processes(job), "the job runs processes here (so the check after `down` can fail)"

        status = run_dyncc("status", directory)
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"slurm job {job}" in status.stdout.splitlines()[0] and "running on node" in status.stdout
        rows = {line.split()[0]: line for line in status.stdout.splitlines()[1:]}
        assert sorted(rows) == sorted(["frontend", *WORKERS]), status.stdout
        assert all(" running " in row and " ready: " in row for row in rows.values()), status.stdout

        logs = run_dyncc("logs", directory, "decode-0")
        assert logs.returncode == 0, logs.stderr
        worker_log = (directory / "run" / job / "logs" / "decode-0.log").read_text()
        assert "dyncc-step: decode-0 on" in logs.stdout and "dyncc-step: decode-0 on" in worker_log
        assert "decode-0 | " not in logs.stdout  # one file: no name prefixes

        # The spec has no benchmark: the gate says so, coded.
        bench = run_dyncc("bench", directory)
        assert bench.returncode == 1 and "error DYN924" in bench.stderr, bench.stderr

        down = run_dyncc("down", directory, timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr
        assert f"job {job} cancelled" in down.stdout
    finally:
        sh("scancel", job)
    assert _job_field(job, "JobState") in ("CANCELLED", "")  # ("": already forgotten by slurmctld)
    assert _wait_for(lambda: not _job_processes(job), 20), _job_processes(job)
    assert sh("pgrep", "-f", str(directory)).returncode == 1  # no process of it under any name
    after = run_dyncc("status", directory)
    assert after.returncode == 1 and "error DYN592" in after.stderr


def test_ctrl_c_while_the_job_is_pending_cancels_it(slurm, tmp_path):
    """The cluster is full (a job of ours holds every node): `up` reports the job pending and why, and
    Ctrl-C cancels it; nothing of it is left in the queue."""
    blocker = sh(
        "sbatch", "--parsable", "--exclusive", "-N", "10", "--output=/dev/null", "--wrap", "sleep 300", cwd=tmp_path
    )
    assert blocker.returncode == 0, blocker.stderr
    blocker_job = blocker.stdout.strip().split(";")[0]
    try:
        assert _wait_for(lambda: _job_field(blocker_job, "JobState") == "RUNNING", 30)
        spec, _ = example_on_free_ports("agg.yaml", "slurm", tmp_path, 2)
        proc = subprocess.Popen(
            [sys.executable, "-m", "dyncc", "up", str(spec), "-t", "slurm", "--engine", "mocker", "-o", str(tmp_path / "out")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        )  # fmt: skip
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if " pending (" in line:
                break
        job = re.search(r"submitted job (\d+)", "".join(lines)).group(1)
        assert re.search(rf"job {job} pending \((Resources|Priority|Nodes\S*)\)", "".join(lines)), lines
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, "".join(lines) + rest
        assert f"cancelling job {job}" in rest and f"job {job} cancelled" in rest, rest
        assert _job_field(job, "JobState") in ("CANCELLED", "")
    finally:
        sh("scancel", blocker_job)


def test_down_refuses_a_job_id_that_now_names_another_job(slurm, tmp_path):
    other = sh("sbatch", "--parsable", "--output=/dev/null", "--wrap", "sleep 300", cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    job = other.stdout.strip().split(";")[0]
    try:
        assert _wait_for(lambda: _job_field(job, "JobState") == "RUNNING", 30)
        state = DeploymentState(
            target="slurm", name="t", served_name="m", spec=str(tmp_path / "s.yaml"), directory=str(tmp_path),
            started_at=0,
            slurm=SlurmRun(job_id=job, command=str(tmp_path / "job.sbatch"), slurm_conf=os.environ["SLURM_CONF"],
                           output=str(tmp_path / "out")),
        )  # fmt: skip
        write_state(state)
        proc = run_dyncc("down", tmp_path)
        assert proc.returncode == 1 and "error DYN597" in proc.stderr, proc.stdout + proc.stderr
        assert _job_field(job, "JobState") == "RUNNING", "another job was cancelled"
    finally:
        sh("scancel", job)
