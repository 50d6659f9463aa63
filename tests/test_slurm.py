"""The slurm target against a real Slurm (slurmctld + munge + six fake 8-GPU slurmd nodes on this
machine, started by scripts/slurm/test-cluster.sh): --test-only for every example, and real jobs that
start Dynamo's frontend and mock workers on the fake nodes."""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import EXAMPLES, VALID_EXAMPLES, cli, free_port_block, sh
from dynamo_parsers import DYNAMO_AVAILABLE
from ruamel.yaml import YAML

from dyncc.run import chat_completion


def build_slurm(example: Path, out: Path, engine: str = "trtllm", overrides: dict | None = None) -> Path:
    spec_path = example
    if overrides:
        yaml = YAML()
        data = yaml.load(example.read_text())
        for key, value in overrides.items():
            data[key] = value
        spec_path = out.with_suffix(".yaml")
        with spec_path.open("w") as f:
            yaml.dump(data, f)
    proc = cli("build", spec_path, "-t", "slurm", "--engine", engine, "-o", out)
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
    assert proc.returncode != 0  # 12 nodes asked of a 6-node cluster


def test_wide_ep_steps_span_whole_nodes_one_rank_per_gpu(built):
    sbatch = (built["wide_ep"] / "job.sbatch").read_text()
    assert "#SBATCH --nodes=6" in sbatch and "#SBATCH --gres=gpu:4" in sbatch
    decode = next(l for l in sbatch.splitlines() if l.startswith("step decode-0"))
    assert "--nodes=4 --ntasks-per-node=4 --gres=gpu:4" in decode and "--mpi=pmix" in decode
    assert '--nodelist="${NODES[0]},${NODES[1]},${NODES[2]},${NODES[3]}"' in decode
    assert "trtllm-llmapi-launch python3 -m dynamo.trtllm" in decode
    assert "--container-image=nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.6.1" in sbatch


def test_real_srun_accepts_the_generated_pyxis_options(slurm, built, tmp_path):
    sbatch = (built["disagg_router"] / "job.sbatch").read_text()
    (container_line,) = [l for l in sbatch.splitlines() if l.startswith("CONTAINER=(--")]
    script = f'DYNCC_DIR={tmp_path}\n{container_line}\nsrun -N1 --gres=none "${{CONTAINER[@]}}" true\n'
    proc = sh("bash", "-c", script)
    assert proc.returncode == 0, proc.stderr
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
    def __init__(self, example: str, tmp_path: Path, cluster: dict | None = None):
        base = free_port_block(12, "0.0.0.0")
        overrides = {
            "slurm": {"http_port": base, "system_port_base": base + 1, "ready_timeout_s": 120},
            "worker_runtime": "mocker",
        }
        if cluster:
            overrides["cluster"] = cluster
        self.dir = build_slurm(EXAMPLES / example, tmp_path / example.replace(".yaml", ""), "mocker", overrides)
        proc = sh("sbatch", "--parsable", "job.sbatch", cwd=self.dir)
        assert proc.returncode == 0, proc.stderr
        self.job = proc.stdout.strip().split(";")[0]
        self.run = self.dir / "run" / self.job
        self.url = _wait_for(
            lambda: (
                (self.run / "frontend_url").is_file()
                and (self.run / "frontend_url").read_text().strip()
                or (self._failed_early())
            ),
            90,
            "the frontend URL",
        )

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
        assert reply["usage"]["completion_tokens"] > 0
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
def test_a_failing_worker_step_fails_the_job(slurm, tmp_path):
    job = SubmittedJob("disagg.yaml", tmp_path)
    victim = sh("pgrep", "-f", f"dynamo.mocker.*{job.dir}.*--disaggregation-mode decode").stdout.split()
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
