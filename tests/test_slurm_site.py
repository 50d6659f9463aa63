"""Slurm site options (issue 16): what a real site needs in its job, said in the spec's `slurm:` section and
checked line by line; the container imported once per node and the model downloaded once per job, shown on
the Slurm test cluster (scripts/slurm/test-cluster.sh; its pyxis stub records imports per node)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, SlurmCluster, cli, sh
from ruamel.yaml import YAML

SITE = EXAMPLES / "slurm_site.yaml"


def _spec(tmp_path: Path, **overrides: Any) -> Path:
    """The site example with top-level keys replaced (a `slurm` override is merged into its section)."""
    yaml = YAML()
    data = yaml.load(SITE.read_text())
    for key, value in overrides.items():
        if key == "slurm":
            data["slurm"].update(value)
        else:
            data[key] = value
    path = tmp_path / "spec.yaml"
    with path.open("w") as f:
        yaml.dump(data, f)
    return path


def _build(spec: Path, out: Path, engine: str = "trtllm") -> Path:
    proc = cli("build", spec, "-t", "slurm", "--engine", engine, "-o", out)
    assert proc.returncode == 0, proc.stderr
    return out / "slurm"


def _codes(spec: Path) -> list[str]:
    proc = cli("validate", "-t", "slurm", spec)
    return re.findall(r"error (DYN\d{3})", proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def site_sbatch(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("site")
    return (_build(SITE, out) / "job.sbatch").read_text()


def test_site_options_become_sbatch_lines(site_sbatch: str) -> None:
    header = [line for line in site_sbatch.splitlines() if line.startswith("#SBATCH")]
    for line in (
        "#SBATCH --account=dynamo-research",
        "#SBATCH --qos=normal",
        "#SBATCH --constraint=ib&nvlink",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=08:00:00",
        "#SBATCH --mail-type=END,FAIL",
        "#SBATCH --signal=B:USR1@120",
    ):
        assert line in header, line
    assert "#SBATCH --reservation" not in site_sbatch  # not set, not written


def test_worker_steps_get_cpus_memory_and_site_srun_options(site_sbatch: str) -> None:
    decode = next(line for line in site_sbatch.splitlines() if line.strip().startswith("step decode-0"))
    # 8 ranks on the node x 4G per rank: srun's --mem is per node.
    assert "--ntasks-per-node=8" in decode and "--cpus-per-task=1 --mem=32G" in decode
    prefill = next(line for line in site_sbatch.splitlines() if line.strip().startswith("step prefill-0"))
    assert "--cpus-per-task=1 --mem=16G" in prefill
    assert "SITE_SRUN=(--cpu-bind=none)" in site_sbatch


def test_setup_script_env_files_and_cache_reach_every_step(site_sbatch: str) -> None:
    assert "export DYNCC_SETUP_SCRIPT=/shared/site/dynamo-env.sh" in site_sbatch
    assert "export DYNCC_ENV_FILES=/shared/site/nccl.env" in site_sbatch
    assert "export HF_HOME=/shared/hf-cache" in site_sbatch
    mounts = re.search(r'"--container-mounts=([^"]+)"', site_sbatch)
    assert mounts is not None
    assert mounts.group(1).split(",") == [
        "$DYNCC_DIR:$DYNCC_DIR",
        "/shared/hf-cache:/shared/hf-cache",
        "/shared/site/dynamo-env.sh:/shared/site/dynamo-env.sh:ro",
        "/shared/site/nccl.env:/shared/site/nccl.env:ro",
        "/shared/datasets:/datasets:ro",
    ]


def test_image_imported_once_per_node_then_reused_by_name(site_sbatch: str) -> None:
    container = next(line for line in site_sbatch.splitlines() if line.startswith("CONTAINER=("))
    assert '"--container-name=dyncc-qwen3-slurm-site-$SLURM_JOB_ID"' in container
    assert "--container-image" not in container  # steps start from the per-node import
    imports = [line for line in site_sbatch.splitlines() if "--container-image=" in line]
    assert len(imports) == 1 and "container-import" in site_sbatch
    assert "--nodes=2 --ntasks-per-node=1" in site_sbatch  # one import task on each of the job's nodes


def test_model_downloaded_once_before_any_worker(site_sbatch: str) -> None:
    lines = site_sbatch.splitlines()
    download = next(i for i, line in enumerate(lines) if "--job-name=model-download" in line)
    first_worker = next(i for i, line in enumerate(lines) if re.match(r"launch_\S+$", line))
    frontend = next(i for i, line in enumerate(lines) if line.startswith("step frontend"))
    assert download < frontend < first_worker
    assert "Qwen/Qwen3-0.6B main" in " ".join(lines[download : download + 3])  # the model's revision
    worker = next(line for line in lines if line.strip().startswith("step decode-0"))
    assert '--model "$MODEL_PATH"' in worker and "--served-model-name Qwen/Qwen3-0.6B" in worker


def test_squashfs_image_and_per_step_import(tmp_path: Path) -> None:
    spec = _spec(tmp_path, slurm={"container_image": "/shared/images/dynamo-1.6.1.sqsh", "container_name": False})
    sbatch = (_build(spec, tmp_path / "out") / "job.sbatch").read_text()
    container = next(line for line in sbatch.splitlines() if line.startswith("CONTAINER=("))
    assert "--container-image=/shared/images/dynamo-1.6.1.sqsh" in container
    assert "--container-name" not in sbatch and "container-import" not in sbatch


def test_mock_engine_has_no_container_and_no_download(tmp_path: Path) -> None:
    sbatch = (_build(SITE, tmp_path / "out", engine="mocker") / "job.sbatch").read_text()
    assert "CONTAINER=()" in sbatch and "model-download" not in sbatch and "container-import" not in sbatch


@pytest.mark.parametrize(
    "key,line,code",
    [
        ("extra_sbatch", "--mail-type=END\n#SBATCH --uid=0", "DYN560"),  # a smuggled second directive
        ("extra_sbatch", "--comment=a\rb", "DYN560"),
        ("extra_sbatch", "-N 4", "DYN560"),  # short options and spaces
        ("extra_sbatch", "--comment=$(id)", "DYN560"),
        ("extra_sbatch", "--comment=x;reboot", "DYN560"),
        ("extra_sbatch", "mail-type=END", "DYN560"),
        ("extra_sbatch", "--nodes=12", "DYN561"),
        ("extra_sbatch", "--qos=high", "DYN561"),
        ("srun_options", "--cpu-bind=none\nrm -rf /", "DYN560"),
        ("srun_options", "--export='A B'", "DYN560"),
        ("srun_options", "--gres=gpu:8", "DYN561"),
        ("srun_options", "--container-image=evil", "DYN561"),
    ],
)
def test_a_bad_site_option_line_is_refused(tmp_path: Path, key: str, line: str, code: str) -> None:
    assert _codes(_spec(tmp_path, slurm={key: [line]})) == [code]


@pytest.mark.parametrize(
    "slurm",
    [
        {"container_image": "/shared/images/dynamo.tar"},  # not a squashfs file
        {"setup_script": "site/env.sh"},  # relative: steps start elsewhere
        {"model_cache_dir": "/shared/hf cache"},
        {"mem_per_task": "4 GB"},
        {"cpus_per_task": 0},
    ],
)
def test_bad_site_values_are_refused_at_their_key(tmp_path: Path, slurm: dict[str, Any]) -> None:
    codes = _codes(_spec(tmp_path, slurm=slurm))
    assert codes and set(codes) <= {"DYN012", "DYN013"}, codes


def test_a_revision_of_a_local_checkpoint_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text('{"architectures": ["Qwen3ForCausalLM"]}')
    spec = _spec(tmp_path, model={"path": str(tmp_path / "ckpt"), "revision": "v2"})
    assert _codes(spec) == ["DYN562"]


def test_site_example_passes_sbatch_test_only_with_a_reservation(slurm: SlurmCluster, tmp_path: Path) -> None:
    name = f"dyncc-site-{tmp_path.name[-8:]}"
    made = sh(
        "scontrol", "create", "reservation", f"ReservationName={name}", "Users=root", "Nodes=node[5-6]",
        "StartTime=now", "Duration=10", "Flags=IGNORE_JOBS",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    try:
        directory = _build(_spec(tmp_path, slurm={"reservation": name}), tmp_path / "out")
        proc = sh("sbatch", "--test-only", "job.sbatch", cwd=directory)
        assert proc.returncode == 0 and "node[5-6]" in proc.stderr, proc.stderr
        missing = _build(_spec(tmp_path, slurm={"reservation": "no-such-reservation"}), tmp_path / "out2")
        assert sh("sbatch", "--test-only", "job.sbatch", cwd=missing).returncode != 0  # the check can fail
    finally:
        sh("scontrol", "delete", f"ReservationName={name}")


def _fake_hub_cache(hf_home: Path, model: str) -> None:
    """A Hugging Face cache holding ``model`` at `main`, as a download would leave it (the test cluster is
    offline; the env file sets HF_HUB_OFFLINE=1 so the download step resolves it from here)."""
    repo = hf_home / "hub" / ("models--" + model.replace("/", "--"))
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text('{"architectures": ["Qwen3ForCausalLM"]}')


def _job_state(job: str) -> str:
    match = re.search(r"\bJobState=(\S+)", sh("scontrol", "show", "job", job).stdout)
    return match.group(1) if match else ""


@pytest.mark.slow
def test_real_job_imports_once_per_node_and_downloads_once_before_workers(slurm: SlurmCluster, tmp_path: Path) -> None:
    """The site example on the test cluster (the image is the pyxis stub's, so the TensorRT-LLM workers
    themselves fail to start: what is shown is what happens before them)."""
    site = tmp_path / "site"
    site.mkdir()
    marks = tmp_path / "setup-marks"
    (site / "env.sh").write_text(f'echo "$SLURMD_NODENAME ${{DYNCC_STEP:-?}}" >>{marks}\n')
    (site / "nccl.env").write_text("HF_HUB_OFFLINE=1\nNCCL_DEBUG=WARN\n")
    cache = tmp_path / "hf-cache"
    _fake_hub_cache(cache, "Qwen/Qwen3-0.6B")
    spec = _spec(
        tmp_path,
        slurm={
            "setup_script": str(site / "env.sh"),
            "env_files": [str(site / "nccl.env")],
            "model_cache_dir": str(cache),
            "ready_timeout_s": 60,
            "mpi": "none",  # the test cluster has no PMIx
        },
    )
    directory = _build(spec, tmp_path / "out")
    proc = sh("sbatch", "--parsable", "job.sbatch", cwd=directory)
    assert proc.returncode == 0, proc.stderr
    job = proc.stdout.strip().split(";")[0]
    deadline = time.monotonic() + 90
    while _job_state(job) not in ("FAILED", "COMPLETED", "CANCELLED", "TIMEOUT"):
        assert time.monotonic() < deadline, "the job did not end"
        time.sleep(0.5)
    run = directory / "run" / job
    out = "".join(p.read_text() for p in directory.glob(f"dyncc-*-{job}.out"))

    records = (slurm.pyxis_records / f"{job}.log").read_text().splitlines()
    imports = [r for r in records if "action=import" in r]
    nodes = sorted(re.search(r"node=(\S+)", r).group(1) for r in imports)  # type: ignore[union-attr]
    assert len(nodes) == 2 and len(set(nodes)) == 2, records  # one import on each of the job's two nodes
    assert all("image=nvcr.io#nvidia/ai-dynamo/tensorrtllm-runtime:1.6.1" in r for r in imports)  # pyxis form
    reused = [r for r in records if "action=reuse" in r]
    assert len(reused) >= 5, records  # download, frontend, 3 workers: none imports again
    assert not [r for r in records if "action=missing" in r]

    download_log = (run / "logs" / "model-download.log").read_text()
    done = re.findall(r"dyncc-download: Qwen/Qwen3-0.6B@main -> (\S+) done at=(\S+)", download_log)
    assert len(done) == 1, download_log + out  # once per job
    assert done[0][0] == str(cache / "hub/models--Qwen--Qwen3-0.6B/snapshots" / ("0" * 40))
    assert "dyncc: model downloaded once" in out
    worker_starts = [
        float(m.group(1))
        for log in (run / "logs").glob("*-[0-9].log")
        for m in re.finditer(r"^dyncc-step: \S+ .* at=(\S+)$", log.read_text(), re.M)
    ]
    assert len(worker_starts) >= 3, out
    assert float(done[0][1]) < min(worker_starts)  # finished before the first worker step started

    sourced = {tuple(line.split()) for line in marks.read_text().splitlines()}  # (node, step) per sourcing
    steps = {step for _, step in sourced}
    assert {"model-download", "frontend"} <= steps and any(s.startswith("decode-") for s in steps), sourced
    assert {node for node, _ in sourced} == set(nodes)  # the setup script ran on every node
