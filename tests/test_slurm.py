"""The slurm target against a real Slurm (slurmctld + munge + fake 8-GPU slurmd nodes on this
machine, started by scripts/slurm/test-cluster.sh; ten since the 9-node GB200 example): --test-only for every example, and real jobs that
start Dynamo's frontend and mock workers on the fake nodes."""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import DYNAMO_05, EXAMPLES, VALID_EXAMPLES, cli, free_port_block, sh
from dynamo_parsers import DYNAMO_AVAILABLE
from ruamel.yaml import YAML

from dyncc.targets.ready_probe import not_ready_worker
from dyncc.tools.lifecycle.run import chat_completion, streaming_chat_completion


def build_slurm(
    example: Path, out: Path, engine: str = "trtllm", overrides: dict | None = None, *build_args: str
) -> Path:
    spec_path = example
    if overrides:
        yaml = YAML()
        data = yaml.load(example.read_text())
        for key, value in overrides.items():
            data[key] = value
        spec_path = out.with_suffix(".yaml")
        with spec_path.open("w") as f:
            yaml.dump(data, f)
    proc = cli("build", spec_path, "-t", "slurm", "--engine", engine, "-o", out, *build_args)
    assert proc.returncode == 0, proc.stderr
    return out / "slurm"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("slurm")
    return {example.stem: build_slurm(example, root / example.stem) for example in VALID_EXAMPLES}


def test_sbatch_files_pass_bash_n_and_shellcheck(built):
    scripts = [d / "job.sbatch" for d in built.values()] + [d / "step.sh" for d in built.values()]
    for script in scripts:
        assert sh("bash", "-n", script).returncode == 0, script
    proc = sh("shellcheck", "-S", "warning", "-s", "bash", *scripts)
    assert proc.returncode == 0, proc.stdout


def test_every_example_passes_sbatch_test_only(slurm, built):
    for name, directory in built.items():
        proc = sh("sbatch", "--test-only", "job.sbatch", cwd=directory)
        assert proc.returncode == 0 and "to start at" in proc.stderr, (name, proc.stderr)


def test_test_only_rejects_a_job_larger_than_the_cluster(slurm, tmp_path):
    directory = build_slurm(
        EXAMPLES / "wide_ep.yaml",
        tmp_path / "big",
        overrides={
            "cluster": {"gpus_per_node": 4, "nodes": 12},
            "pools": {"agg": {"replicas": 12, "tensor_parallel": 4}},
        },
    )
    proc = sh("sbatch", "--test-only", "job.sbatch", cwd=directory)
    assert proc.returncode != 0  # 12 nodes asked of a 10-node cluster


def test_wide_ep_steps_span_whole_nodes_one_rank_per_gpu(built):
    sbatch = (built["wide_ep"] / "job.sbatch").read_text()
    assert "#SBATCH --nodes=6" in sbatch and "#SBATCH --gres=gpu:4" in sbatch
    decode = next(l.strip() for l in sbatch.splitlines() if l.strip().startswith("step decode-0"))
    assert "--nodes=4 --ntasks-per-node=4 --gres=gpu:4" in decode and "--mpi=pmix" in decode
    assert '--nodelist="${NODES[0]},${NODES[1]},${NODES[2]},${NODES[3]}"' in decode
    assert "trtllm-llmapi-launch python3 -m dynamo.trtllm" in decode
    assert "--container-image=nvcr.io#nvidia/ai-dynamo/tensorrtllm-runtime:1.6.1" in sbatch  # pyxis form


def test_real_srun_accepts_the_generated_pyxis_options(slurm, built, tmp_path):
    sbatch = (built["disagg_router"] / "job.sbatch").read_text()
    (container_line,) = [l for l in sbatch.splitlines() if l.startswith('CONTAINER=("--')]
    lines = sbatch.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("srun --job-name=container-import"))
    import_options = lines[start + 1].split('" ', 1)[1].split(' "${SITE_SRUN')[0]
    # One allocation: the import step, then a step starting from the imported container by name.
    script = (
        f"DYNCC_DIR={tmp_path}\n{container_line}\n"
        f'srun -N1 --gres=none {import_options} true\nsrun -N1 --gres=none "${{CONTAINER[@]}}" true\n'
    )
    proc = sh("salloc", "-N1", "bash", "-c", script)
    assert proc.returncode == 0, proc.stderr
    alone = sh("salloc", "-N1", "bash", "-c", f'{container_line}\nsrun -N1 --gres=none "${{CONTAINER[@]}}" true\n')
    assert alone.returncode != 0  # a container name with no import fails, as with pyxis
    bogus = sh("bash", "-c", "srun -N1 --container-imagez=x true")
    assert bogus.returncode != 0  # the stub registers pyxis's names only


def _job_field(job: str, field: str) -> str:
    out = sh("scontrol", "show", "job", job).stdout
    match = re.search(rf"\b{field}=(\S+)", out)
    return match.group(1) if match else ""


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


class SubmittedJob:
    def __init__(
        self,
        example: str,
        tmp_path: Path,
        cluster: dict | None = None,
        extra: dict | None = None,
        dynamo_version: str | None = None,
    ):
        base = free_port_block(12, "0.0.0.0")
        self.http_port, self.system_port_base = base, base + 1
        overrides = {
            "slurm": {"http_port": base, "system_port_base": base + 1, "ready_timeout_s": 120},
            "worker_runtime": "mocker",
            **(extra or {}),
        }
        if cluster:
            overrides["cluster"] = cluster
        version_args = ("--dynamo-version", dynamo_version) if dynamo_version else ()
        out = tmp_path / example.replace(".yaml", "")
        self.dir = build_slurm(EXAMPLES / example, out, "mocker", overrides, *version_args)
        # The steps run the Python that has the Dynamo the job was built for (sbatch passes the environment).
        python = [f"DYNCC_PYTHON={DYNAMO_05}"] if dynamo_version == "0.5.1" else []
        proc = sh("env", *python, "sbatch", "--parsable", "job.sbatch", cwd=self.dir)
        assert proc.returncode == 0, proc.stderr
        self.job = proc.stdout.strip().split(";")[0]
        self.run = self.dir / "run" / self.job
        try:
            self.url = _wait_for(
                lambda: (
                    (self.run / "frontend_url").is_file()
                    and (self.run / "frontend_url").read_text().strip()
                    or (self._failed_early())
                ),
                90,
                "the frontend URL",
            )
        except AssertionError as exc:  # say where the job was, and never leave it holding the nodes
            state = sh("scontrol", "show", "job", self.job).stdout
            self.cancel()
            raise AssertionError(f"{exc}\n{state}\n{self.output()}") from None

    def _failed_early(self):
        if _job_field(self.job, "JobState") in ("FAILED", "CANCELLED", "COMPLETED"):
            raise AssertionError(self.output())
        return None

    def output(self) -> str:
        files = list(self.dir.glob(f"dyncc-*-{self.job}.out")) + sorted((self.run / "logs").glob("*.log"))
        return "\n".join(f"== {f.name}\n{f.read_text()[-1500:]}" for f in files if f.exists())

    def step_lines(self) -> list[str]:
        return [
            l
            for f in sorted((self.run / "logs").glob("*.log"))
            for l in f.read_text().splitlines()
            if l.startswith("dyncc-step:")
        ]

    def cancel(self):
        sh("scancel", self.job)


def _no_processes_of(directory: Path) -> bool:
    return sh("pgrep", "-f", str(directory)).returncode == 1


def real_job(test):
    """Marks for a test that submits a job running Dynamo's frontend and mock workers (the `slurm`
    marker comes with the fixture)."""
    needs_dynamo = pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")
    return needs_dynamo(pytest.mark.e2e(pytest.mark.slow(test)))


@pytest.mark.parametrize(
    "example,cluster",
    [
        ("agg.yaml", None),
        # Two 2-GPU nodes: the placement puts the prefill replicas on one node and decode on the other.
        ("disagg_router.yaml", {"gpus_per_node": 2, "nodes": 2}),
    ],
)
@real_job
def test_job_runs_frontend_and_workers_on_fake_nodes(slurm, tmp_path, example, cluster):
    job = SubmittedJob(example, tmp_path, cluster)
    try:
        assert _job_field(job.job, "JobState") == "RUNNING"
        reply = chat_completion(job.url, "Qwen/Qwen3-0.6B", "hello from slurm", max_tokens=6)
        assert reply["usage"]["completion_tokens"] == 6
        with urllib.request.urlopen(job.url + "/v1/models", timeout=5) as r:
            assert r.status == 200
        steps = job.step_lines()
        placed = [
            (re.search(r"node=(\S+)", l).group(1), re.search(r"CUDA_VISIBLE_DEVICES=(\S*)", l).group(1))
            for l in steps
            if "frontend" not in l
        ]
        workers = len(placed)
        assert workers == (1 if example == "agg.yaml" else 4), steps
        assert len(set(placed)) == workers and all(gpu for _, gpu in placed)  # no GPU shared by two steps
        if cluster:
            prefill_nodes = {re.search(r"node=(\S+)", l).group(1) for l in steps if "prefill-" in l}
            decode_nodes = {re.search(r"node=(\S+)", l).group(1) for l in steps if "decode-" in l}
            assert len(prefill_nodes) == 1 and len(decode_nodes) == 1 and prefill_nodes != decode_nodes
    finally:
        job.cancel()
    _wait_for(lambda: _job_field(job.job, "JobState") == "CANCELLED", 30, "the job to be cancelled")
    _wait_for(lambda: _no_processes_of(job.dir), 20, "every step's process to exit")


@real_job
def test_0x_job_runs_on_dynamo_0_5_1_with_etcd_and_nats(slurm, tmp_path):
    """The 0.x profile's job on Dynamo 0.5.1 itself: etcd and NATS as steps on the head node, reached at
    its Slurm NodeAddr, and the frontend started once both workers serve (0.5.1's frontend can miss
    workers that register while it starts watching etcd)."""
    job = SubmittedJob("agg_router.yaml", tmp_path, dynamo_version="0.5.1")
    try:
        started = [line.split()[-1] for line in job.output().splitlines() if line.startswith("dyncc: started step ")]
        assert started == ["etcd", "nats", "agg-0", "agg-1", "frontend"], job.output()
        chunks = streaming_chat_completion(job.url, "Qwen/Qwen3-0.6B", "hello from a 0.x job", max_tokens=12)
        assert next(c["usage"] for c in reversed(chunks) if c.get("usage"))["completion_tokens"] == 12
    finally:
        job.cancel()
    _wait_for(lambda: _job_field(job.job, "JobState") == "CANCELLED", 30, "the job to be cancelled")
    _wait_for(lambda: _no_processes_of(job.dir), 20, "every step's process to exit")


@real_job
def test_a_failing_worker_step_fails_the_job_with_on_worker_exit_stop(slurm, tmp_path):
    job = SubmittedJob("disagg.yaml", tmp_path, extra={"on_worker_exit": "stop"})
    assert "ON_WORKER_EXIT=stop" in (job.dir / "job.sbatch").read_text()
    victim = _job_pids(job, f"dynamo.mocker.*{job.dir}.*--disaggregation-mode decode")
    assert victim, job.output()
    sh("kill", "-9", victim[0])
    state = _wait_for(
        lambda: (s := _job_field(job.job, "JobState")) in ("FAILED", "COMPLETED", "CANCELLED") and s,
        60,
        "the job to end",
    )
    out = job.output()
    assert state == "FAILED", out
    assert _job_field(job.job, "ExitCode") != "0:0"
    assert "step decode-0 exited" in out
    _wait_for(lambda: _no_processes_of(job.dir), 20, "the other steps to be stopped")


def _stream_all(url: str, count: int, max_tokens: int) -> list[object]:
    """``count`` concurrent streamed completions; each result is its chunks, or the exception it raised."""
    results: list[object] = [None] * count

    def one(i: int) -> None:
        try:
            # ignore_eos (the default): the mock engine samples its end-of-sequence token now and then, and
            # a reply that ended by itself could not be told from one cut short by the kill.
            chunks = streaming_chat_completion(url, "Qwen/Qwen3-0.6B", f"stream {i}", max_tokens=max_tokens)
            errors = [c for c in chunks if "error" in c]
            results[i] = RuntimeError(f"error chunk: {errors[0]}") if errors else chunks
        except Exception as exc:  # noqa: BLE001  # reported per stream by the test
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    return results


def _worker_health(host_file: Path, port: int) -> bool:
    """The worker's generate endpoint is ready, judged as the job's own readiness probe does."""
    if not host_file.is_file():
        return False
    return not_ready_worker(f"http://{host_file.read_text().strip()}:{port}/health") is None


@real_job
def test_a_killed_worker_mid_stream_loses_no_request_and_is_restarted(slurm, tmp_path):
    """Issue 17 on Slurm: agg x2 with migration.limit 3 and on_worker_exit restart (the default). kill -9 of a
    worker while 8 streams run: every stream ends with [DONE] and no error (the frontend migrates them to the
    live worker), the step is started again on its node and GPU and serves within 30 s, the job never stops."""
    job = SubmittedJob(
        "agg.yaml",
        tmp_path,
        extra={
            "pools": {"agg": {"replicas": 2}},
            "migration": {"limit": 3},
            "mocker_speedup_ratio": 0.1,
        },
    )
    try:
        assert "ON_WORKER_EXIT=restart" in (job.dir / "job.sbatch").read_text()
        results: list[object] = []
        streams = threading.Thread(target=lambda: results.extend(_stream_all(job.url, 8, 200)))
        streams.start()
        time.sleep(3)  # mid-stream: the mock engine at speedup 0.1 needs well over 10 s for 200 tokens
        assert streams.is_alive(), "the streams ended before the kill; slow the mock engine down"
        victim = _mocker_pid(job, 1)
        sh("kill", "-9", victim)
        killed_at = time.monotonic()
        streams.join(timeout=240)
        failures = [r for r in results if isinstance(r, Exception)]
        assert len(results) == 8 and not failures, (failures, job.output())
        short = [len(r) for r in results if len(r) < 190]  # type: ignore[arg-type]
        assert short == [], short  # whole replies (200 tokens, a chunk each), not one cut short
        host_file = job.run / "hosts" / "agg-1"
        _wait_for(
            lambda: _mocker_pid(job, 1) not in ("", victim) and _worker_health(host_file, job.system_port_base + 1),
            max(1.0, 30 - (time.monotonic() - killed_at)),
            "the killed worker to be back and healthy",
        )
        assert time.monotonic() - killed_at <= 30
        # Back and serving: requests reach it again (round-robin over two workers).
        before = _requests_seen(job, "agg-1")
        for i in range(4):
            reply = chat_completion(job.url, "Qwen/Qwen3-0.6B", f"after restart {i}", max_tokens=4)
            assert reply["usage"]["completion_tokens"] == 4
        assert _requests_seen(job, "agg-1") > before, job.output()
        assert _job_field(job.job, "JobState") == "RUNNING"
        out = job.output()
        assert "step agg-1 exited" in out and "restarted step agg-1" in out
        assert "worker_disconnected" in (job.run / "logs" / "frontend.log").read_text()  # killed mid-request
        lines = [l for l in job.step_lines() if "agg-1 " in l]
        assert len(lines) == 2 and len({re.search(r"node=(\S+)", l).group(1) for l in lines}) == 1  # same node
        gpus = {re.search(r"CUDA_VISIBLE_DEVICES=(\S*)", l).group(1) for l in lines}
        assert len(gpus) == 1, lines  # and the same GPU
    finally:
        job.cancel()
    _wait_for(lambda: _job_field(job.job, "JobState") == "CANCELLED", 30, "the job to be cancelled")
    _wait_for(lambda: _no_processes_of(job.dir), 20, "every step's process to exit")


def _job_pids(job: SubmittedJob, pattern: str, *env: str) -> list[str]:
    """The pids of this test's own job whose command line matches ``pattern``: only processes whose environment
    names the job (SLURM_JOB_ID) and holds every ``env`` entry, so a signal never reaches anything else."""
    wanted = [f"SLURM_JOB_ID={job.job}".encode(), *(e.encode() for e in env)]
    pids = []
    for pid in sh("pgrep", "-f", pattern).stdout.split():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if all(entry in environ for entry in wanted):
            pids.append(pid)
    return pids


def _mocker_pid(job: SubmittedJob, index: int) -> str:
    """The pid of worker ``index``'s mock engine (found by its system port), or ""."""
    pids = _job_pids(job, f"dynamo.mocker.*{job.dir}", f"DYN_SYSTEM_PORT={job.system_port_base + index}")
    return pids[0] if pids else ""


def _requests_seen(job: SubmittedJob, step: str) -> int:
    log = job.run / "logs" / f"{step}.log"
    return log.read_text().count("request received") if log.exists() else 0


@real_job
def test_a_worker_that_keeps_dying_stops_the_job_after_five_restarts(slurm, tmp_path):
    """The restart policy is bounded: backoff 1, 2, 4, 8, 16 s, and the sixth exit within 10 minutes fails the job."""
    job = SubmittedJob("agg.yaml", tmp_path, extra={"pools": {"agg": {"replicas": 2}}})
    try:
        killed = []
        for _ in range(6):
            pid = _wait_for(lambda: (p := _mocker_pid(job, 1)) not in ("", *killed) and p, 60, "the worker to be back")
            sh("kill", "-9", pid)
            killed.append(pid)
        state = _wait_for(
            lambda: (s := _job_field(job.job, "JobState")) in ("FAILED", "COMPLETED", "CANCELLED") and s,
            60,
            "the job to end",
        )
        out = "".join(f.read_text() for f in job.dir.glob(f"dyncc-*-{job.job}.out"))  # whole, not the tail
        assert state == "FAILED", job.output()
        delays = re.findall(r"step agg-1 exited \(status \d+\); restarting it in (\d+)s", out)
        assert delays == ["1", "2", "4", "8", "16"], out
        assert "step agg-1 exited (status 137) after 5 restarts within 10 minutes; stopping the job" in out
    finally:
        job.cancel()
    _wait_for(lambda: _no_processes_of(job.dir), 20, "the other steps to be stopped")


@real_job
def test_the_frontend_exiting_stops_the_job_even_with_restart(slurm, tmp_path):
    job = SubmittedJob("agg.yaml", tmp_path)
    frontend = _job_pids(job, f"dynamo.frontend.*--http-port {job.http_port}")
    assert frontend, job.output()
    sh("kill", "-9", frontend[0])
    state = _wait_for(
        lambda: (s := _job_field(job.job, "JobState")) in ("FAILED", "COMPLETED", "CANCELLED") and s,
        60,
        "the job to end",
    )
    out = job.output()
    assert state == "FAILED" and "step frontend exited" in out and "restarted step" not in out, out
    _wait_for(lambda: _no_processes_of(job.dir), 20, "the other steps to be stopped")
