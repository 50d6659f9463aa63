"""Slurm as NVIDIA runs it (issue 35): the default image in pyxis' form, local checkpoints mounted and served,
CPUs per rank from the node shape, --segment checked, NATS started when the request plane needs it, a
dedicated etcd/NATS node, a per-pool launch prefix and per-worker env values. Built jobs, then real jobs on
the Slurm test cluster (its pyxis stub records each step's image, container and mounts)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import SlurmCluster, cli, free_port_block, sh
from dynamo_parsers import DYNAMO_AVAILABLE

from dyncc.targets.slurm.impl import pyxis_image
from dyncc.tools.lifecycle.run import chat_completion

BASE: dict[str, Any] = {
    "apiVersion": "dyncc/v1",
    "name": "infra",
    "model": {"path": "Qwen/Qwen3-0.6B", "moe": False},
    "pools": {"agg": {"tensor_parallel": 2}},
}
DEFAULT_IMAGE = "nvcr.io#nvidia/ai-dynamo/tensorrtllm-runtime:1.6.1"


def _spec(tmp_path: Path, **top: Any) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**BASE, **top}, sort_keys=False))
    return path


def _build(spec: Path, out: Path, *args: str) -> Path:
    proc = cli("build", spec, "-t", "slurm", "-o", out, *args)
    assert proc.returncode == 0, proc.stderr
    return out / "slurm"


def _sbatch(tmp_path: Path, *args: str, **top: Any) -> str:
    return (_build(_spec(tmp_path, **top), tmp_path / "out", *args) / "job.sbatch").read_text()


def _codes(tmp_path: Path, **top: Any) -> list[str]:
    proc = cli("validate", "-t", "slurm", _spec(tmp_path, **top))
    return re.findall(r"(?:error|warning) (DYN\d{3})", proc.stdout + proc.stderr)


def _step(sbatch: str, name: str) -> str:
    return next(line.strip() for line in sbatch.splitlines() if line.strip().startswith(f"step {name}"))


# --- the image ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image,pyxis",
    [
        ("nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.6.1", DEFAULT_IMAGE),
        ("registry.example.com:5000/team/dynamo:1.6.1", "registry.example.com:5000#team/dynamo:1.6.1"),
        ("localhost/dynamo:dev", "localhost#dynamo:dev"),
        ("ubuntu:22.04", "ubuntu:22.04"),  # Docker Hub: no registry to separate
        ("nvidia/cuda:12.4.0-base-ubuntu22.04", "nvidia/cuda:12.4.0-base-ubuntu22.04"),
    ],
)
def test_pyxis_separates_the_registry_with_a_hash(image: str, pyxis: str) -> None:
    assert pyxis_image(image) == pyxis


@pytest.mark.parametrize("version", ["1.6.1", "0.5.1"])
def test_no_image_means_the_versions_ngc_runtime_in_every_step(tmp_path: Path, version: str) -> None:
    sbatch = _sbatch(tmp_path, "--dynamo-version", version, slurm={"container_name": False, "discovery": "etcd"})
    (container,) = [line for line in sbatch.splitlines() if line.startswith("CONTAINER=(")]
    assert f"'--container-image=nvcr.io#nvidia/ai-dynamo/tensorrtllm-runtime:{version}'" in container
    for step in ("etcd", "frontend", "agg-0", *(["nats"] if version == "0.5.1" else [])):
        assert '"${CONTAINER[@]}"' in _step(sbatch, step), step
    with_name = _sbatch(tmp_path / "named")
    assert f"'--container-image={DEFAULT_IMAGE}' \"--container-name=dyncc-infra-$SLURM_JOB_ID\"" in with_name


# --- local checkpoints ---------------------------------------------------------------------------------------


def test_an_absolute_checkpoint_is_mounted_read_only_and_served_with_no_download(tmp_path: Path) -> None:
    directory = _build(_spec(tmp_path, model={"path": "/shared/models/qwen3-0.6b", "moe": False}), tmp_path / "o")
    sbatch = (directory / "job.sbatch").read_text()
    mounts = re.search(r'"--container-mounts=([^"]+)"', sbatch).group(1).split(",")  # type: ignore[union-attr]
    assert "/shared/models/qwen3-0.6b:/model:ro" in mounts
    assert "--model /model " in _step(sbatch, "agg-0")
    assert "model-download" not in sbatch and "MODEL_PATH" not in sbatch and not (directory / "download.py").exists()


def test_a_checkpoint_directory_here_is_mounted_at_its_absolute_path(tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text('{"architectures": ["Qwen3ForCausalLM"]}')
    sbatch = _sbatch(tmp_path, model={"path": "ckpt", "moe": False})
    assert f"{tmp_path / 'ckpt'}:/model:ro" in sbatch and "model-download" not in sbatch
    assert "--model /model " in _step(sbatch, "agg-0")


def test_a_checkpoint_path_pyxis_cannot_mount_is_refused(tmp_path: Path) -> None:
    assert _codes(tmp_path, model={"path": "/shared/a,b", "moe": False}) == ["DYN564"]
    assert _codes(tmp_path, model={"path": "/shared/a:b", "moe": False}) == ["DYN564"]
    assert _codes(tmp_path, model={"path": "/shared/ok-path_1.0", "moe": False}) == []


# --- CPUs per rank -----------------------------------------------------------------------------------------


def test_worker_ranks_get_the_node_cpus_shared_by_its_gpus(tmp_path: Path) -> None:
    sbatch = _sbatch(tmp_path, cluster={"gpus_per_node": 4})
    assert "CPUS_PER_RANK=$((min_cpus / 4))" in sbatch and "SLURM_JOB_CPUS_PER_NODE" in sbatch
    assert '--ntasks-per-node=2 --gres=gpu:2 --nodelist="${NODES[0]}" --mpi=pmix "--cpus-per-task=$CPUS_PER_RANK"' in (
        _step(sbatch, "agg-0")
    )
    mock = _sbatch(tmp_path / "mock", "--engine", "mocker", cluster={"gpus_per_node": 4})
    assert '"--cpus-per-task=$((CPUS_PER_RANK * 2))"' in _step(mock, "agg-0")  # one mock task for two ranks
    site = _sbatch(tmp_path / "site", slurm={"cpus_per_task": 6})
    assert "--cpus-per-task=6" in _step(site, "agg-0") and "CPUS_PER_RANK" not in site


@pytest.mark.parametrize("cpus_per_node,gpus,expected", [("8(x2)", 2, 4), ("72(x2),36", 4, 9), ("2", 8, 1)])
def test_cpus_per_rank_from_the_jobs_smallest_node(
    tmp_path: Path, cpus_per_node: str, gpus: int, expected: int
) -> None:
    sbatch = _sbatch(tmp_path, cluster={"gpus_per_node": gpus})
    lines = sbatch.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('min_cpus=""'))
    end = next(i for i, line in enumerate(lines) if line.startswith("((CPUS_PER_RANK >= 1))"))
    script = "set -euo pipefail\n" + "\n".join(lines[start : end + 1]) + '\necho "$CPUS_PER_RANK"\n'
    proc = subprocess.run(
        ["bash", "-c", script], env={"SLURM_JOB_CPUS_PER_NODE": cpus_per_node}, capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.strip() == str(expected), proc.stderr


# --- --segment ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "segment,ok", [("2", True), ("4", True), ("1", True), ("8", False), ("3", False), ("0", False)]
)
def test_segment_is_checked_against_the_jobs_nodes(tmp_path: Path, segment: str, ok: bool) -> None:
    codes = _codes(
        tmp_path,
        cluster={"gpus_per_node": 8, "nodes": 4},
        pools={"agg": {"replicas": 4, "tensor_parallel": 8}},
        slurm={"extra_sbatch": [f"--segment={segment}"]},
    )
    assert codes == ([] if ok else ["DYN565"])


# --- NATS and the etcd/NATS node ------------------------------------------------------------------------------


def test_a_nats_request_plane_starts_nats_on_the_head_node(tmp_path: Path) -> None:
    sbatch = _sbatch(tmp_path, request_plane="nats")
    assert 'export NATS_SERVER="nats://$INFRA_ADDR:4222"' in sbatch and 'INFRA="$HEAD"' in sbatch
    assert '--nodelist="$INFRA"' in _step(sbatch, "nats") and "step etcd" not in sbatch
    assert "--request-plane nats" in _step(sbatch, "frontend") and "--request-plane nats" in _step(sbatch, "agg-0")
    assert "DYN706" not in _codes(tmp_path, request_plane="nats")  # the job provides NATS now
    assert "step nats" not in _sbatch(tmp_path / "tcp")


def test_a_dedicated_infra_node_is_one_more_node_no_worker_uses(tmp_path: Path) -> None:
    top = {"request_plane": "nats", "infrastructure": {"node": "dedicated"}, "cluster": {"nodes": 2}}
    sbatch = _sbatch(tmp_path, slurm={"discovery": "etcd"}, **top)
    assert "#SBATCH --nodes=2" in sbatch and 'INFRA="${NODES[1]}"' in sbatch
    assert '--nodelist="$INFRA"' in _step(sbatch, "etcd") and '--nodelist="$INFRA"' in _step(sbatch, "nats")
    assert 'export ETCD_ENDPOINTS="http://$INFRA_ADDR:2379"' in sbatch
    assert '--nodelist="${NODES[0]}"' in _step(sbatch, "agg-0") and '--nodelist="$HEAD"' in _step(sbatch, "frontend")
    assert _codes(tmp_path, **{**top, "cluster": {"nodes": 1}}) == ["DYN567"]
    assert _codes(tmp_path, infrastructure={"node": "dedicated"}) == ["DYN566"]  # nothing to run there


# --- launch prefix and per-worker env --------------------------------------------------------------------------


def test_launch_prefix_and_worker_index_reach_each_worker(tmp_path: Path) -> None:
    pools = {
        "prefill": {"replicas": 2, "tensor_parallel": 2, "launch_prefix": ["numactl", "-m", "0,1"],
                    "env": {"TRTLLM_EPLB_SHM_NAME": "moe_{worker_index}_{rank}"}},
        "decode": {"tensor_parallel": 2, "env": {"TRTLLM_EPLB_SHM_NAME": "moe_{worker_index}_{rank}"}},
    }  # fmt: skip
    sbatch = _sbatch(tmp_path, pools=pools)
    for name, index in (("prefill-0", 0), ("prefill-1", 1), ("decode-0", 2)):
        step = _step(sbatch, name)
        assert f"'TRTLLM_EPLB_SHM_NAME=moe_{index}_{{rank}}'" in step, step
        prefixed = "numactl -m 0,1 trtllm-llmapi-launch python3" in step
        assert prefixed == name.startswith("prefill"), step


def test_step_sh_fills_in_each_ranks_env_and_nothing_else(tmp_path: Path) -> None:
    step_sh = _build(_spec(tmp_path), tmp_path / "o") / "step.sh"
    for rank in ("0", "3"):
        proc = subprocess.run(
            ["bash", step_sh, "env", "A=x{rank}y{rank}", "B=plain", "sh", "-c", 'echo "$A $B $0"', "{rank}"],
            env={"PATH": "/usr/bin:/bin", "SLURM_PROCID": rank}, capture_output=True, text=True,
        )  # fmt: skip
        assert proc.returncode == 0 and proc.stdout.splitlines()[-1] == f"x{rank}y{rank} plain {{rank}}", proc.stdout


def test_a_launch_prefix_must_start_with_a_program(tmp_path: Path) -> None:
    codes = _codes(tmp_path, pools={"agg": {"launch_prefix": ["-m", "0,1"]}})
    assert codes and set(codes) <= {"DYN012", "DYN013", "DYN014"}, codes


# --- real jobs on the test cluster -----------------------------------------------------------------------------


def _wait_job(job: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        match = re.search(r"\bJobState=(\S+)", sh("scontrol", "show", "job", job).stdout)
        state = match.group(1) if match else ""
        if state in ("FAILED", "COMPLETED", "CANCELLED", "TIMEOUT"):
            return state
        assert time.monotonic() < deadline, f"job {job} still {state}"
        time.sleep(0.5)


@pytest.mark.slow
def test_real_job_runs_every_step_in_the_default_container_and_serves_the_mounted_checkpoint(
    slurm: SlurmCluster, tmp_path: Path
) -> None:
    """No `image`, a local checkpoint, etcd and NATS: the pyxis stub records each step's container and mounts
    (the stub runs no container, so the TensorRT-LLM workers themselves fail to start: what is shown is how
    each step was started)."""
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text('{"architectures": ["Qwen3ForCausalLM"]}')
    base = free_port_block(4, "0.0.0.0")
    spec = _spec(
        tmp_path,
        model={"path": str(ckpt), "moe": False},
        request_plane="nats",
        cluster={"gpus_per_node": 2, "nodes": 1},
        slurm={
            "discovery": "etcd",
            "mpi": "none",
            "ready_timeout_s": 30,
            "http_port": base,
            "system_port_base": base + 1,
        },
        on_worker_exit="stop",
    )
    directory = _build(spec, tmp_path / "out")
    proc = sh("sbatch", "--parsable", "job.sbatch", cwd=directory)
    assert proc.returncode == 0, proc.stderr
    job = proc.stdout.strip().split(";")[0]
    _wait_job(job, 120)
    out = "".join(p.read_text() for p in directory.glob(f"dyncc-*-{job}.out"))
    records = (slurm.pyxis_records / f"{job}.log").read_text().splitlines()
    imports = [r for r in records if "action=import" in r]
    assert len(imports) == 1 and f"image={DEFAULT_IMAGE} " in imports[0], records
    steps = {re.search(r"step_name=(\S+)", r).group(1): r for r in records if "action=reuse" in r}  # type: ignore[union-attr]
    assert {"etcd", "nats", "frontend", "agg-0"} <= set(steps), records + [out]
    name = re.search(r"name=(\S+)", imports[0]).group(1)  # type: ignore[union-attr]
    assert all(f" name={name} " in r for r in steps.values())  # every step started from the one import
    assert f"{ckpt}:/model:ro" in steps["agg-0"].split("mounts=")[1].split(",")
    assert "model-download" not in out and not (directory / "run" / job / "logs" / "model-download.log").exists()
    worker_log = (directory / "run" / job / "logs" / "agg-0.log").read_text()
    cpus = re.findall(r"^dyncc-step: agg-0 .* cpus_per_task=(\d+) ", worker_log, re.M)
    assert cpus and all(int(c) == 4 for c in cpus), worker_log  # 8 CPUs per test node / 2 GPUs per node


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")
def test_real_job_with_a_nats_request_plane_starts_nats_and_answers(slurm: SlurmCluster, tmp_path: Path) -> None:
    base = free_port_block(4, "0.0.0.0")
    spec = _spec(
        tmp_path,
        request_plane="nats",
        worker_runtime="mocker",
        pools={"agg": {"replicas": 2, "tensor_parallel": 2}},
        cluster={"gpus_per_node": 4, "nodes": 1},
        slurm={"ready_timeout_s": 120, "http_port": base, "system_port_base": base + 1},
    )
    directory = _build(spec, tmp_path / "out")
    proc = sh("sbatch", "--parsable", "job.sbatch", cwd=directory)
    assert proc.returncode == 0, proc.stderr
    job = proc.stdout.strip().split(";")[0]
    run = directory / "run" / job
    try:
        deadline = time.monotonic() + 90
        while not (run / "frontend_url").is_file():
            state = re.search(r"\bJobState=(\S+)", sh("scontrol", "show", "job", job).stdout)
            out = "".join(p.read_text() for p in directory.glob(f"dyncc-*-{job}.out"))
            assert state and state.group(1) in ("PENDING", "RUNNING") and time.monotonic() < deadline, out
            time.sleep(0.5)
        url = (run / "frontend_url").read_text().strip()
        reply = chat_completion(url, "Qwen/Qwen3-0.6B", "hello over nats", max_tokens=5)
        assert reply["usage"]["completion_tokens"] == 5
        out = "".join(p.read_text() for p in directory.glob(f"dyncc-*-{job}.out"))
        started = [line.split()[-1] for line in out.splitlines() if line.startswith("dyncc: started step ")]
        assert started[0] == "nats" and {"frontend", "agg-0", "agg-1"} <= set(started), out
        workers = "".join((run / "logs" / f"agg-{i}.log").read_text() for i in (0, 1))
        assert re.findall(r"cpus_per_task=(\d+) ", workers) == ["4", "4"], workers  # 8 CPUs / 4 GPUs x 2 ranks
        assert (run / "nats").is_dir()  # the NATS step's JetStream store
    finally:
        sh("scancel", job)
    _wait_job(job, 30)
    assert sh("pgrep", "-f", str(directory)).returncode == 1  # every step's process exited
