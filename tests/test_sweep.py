"""Benchmarks and sweeps: expansion, invalid points, the benchmark artifacts per target, and a real
3-point local sweep with Dynamo's frontend + mock engine, benchmarked by aiperf."""

from __future__ import annotations

import csv
import json
import subprocess

import pytest
from conftest import EXAMPLES, cli, free_port_block, run_dyncc, sh
from dynamo_parsers import DYNAMO_AVAILABLE
from k8s_schemas import core_errors
from ruamel.yaml import YAML


def _spec_with(tmp_path, **changes):
    yaml = YAML()
    data = yaml.load((EXAMPLES / "sweep_local.yaml").read_text())
    for key, value in changes.items():
        data[key] = value
    path = tmp_path / "sweep.yaml"
    with path.open("w") as f:
        yaml.dump(data, f)
    return path


def test_invalid_points_are_reported_with_codes_and_skipped(tmp_path):
    spec = _spec_with(tmp_path, sweep={"pools.agg.tensor_parallel": [1, 16], "router.mode": ["kv", "round-robin"]})
    proc = cli("sweep", spec, "-o", tmp_path / "out", "-t", "local", "-t", "k8s")
    assert proc.returncode == 0, proc.stderr
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert [p["valid"] for p in index] == [True, True, False, False]
    assert all(p["codes"] == ["DYN403"] for p in index if not p["valid"])
    assert (tmp_path / "out" / "points" / "p000" / "k8s" / "dynamographdeployment.yaml").is_file()
    assert not (tmp_path / "out" / "points" / "p002").exists()
    assert "invalid: DYN403" in (tmp_path / "out" / "index.md").read_text()


def test_benchmark_artifacts_for_k8s_and_slurm_validate(tmp_path, slurm):
    proc = cli("build", EXAMPLES / "sweep_local.yaml", "-t", "k8s", "-t", "slurm", "-o", tmp_path)
    assert proc.returncode == 0, proc.stderr
    job = YAML(typ="safe").load((tmp_path / "k8s" / "benchmark-job.yaml").read_text())
    assert job["kind"] == "Job" and core_errors(job) == []
    script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert "aiperf==0.13.0" in script and "--url http://qwen3-sweep-frontend:8000" in script
    sbatch = (tmp_path / "slurm" / "job.sbatch").read_text()
    assert 'bash "$DYNCC_DIR/bench.sh" "$URL" "$RUN_DIR/bench"' in sbatch
    test_only = sh("sbatch", "--test-only", "job.sbatch", cwd=tmp_path / "slurm")
    assert test_only.returncode == 0, test_only.stderr
    assert subprocess.run(["shellcheck", "-S", "warning", tmp_path / "slurm" / "bench.sh"]).returncode == 0


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")
def test_three_point_local_mocker_sweep_runs_for_real(tmp_path):
    base = free_port_block(8)
    spec = _spec_with(
        tmp_path,
        local={"http_port": base, "system_port_base": base + 1},
        benchmark={"isl": 64, "osl": 16, "concurrency": [1, 2], "request_count": 4},
    )
    out = tmp_path / "out"
    # A real process: it starts, benchmarks and stops three deployments, as a user's `dyncc sweep --run` does.
    proc = run_dyncc("sweep", spec, "-o", out, "--run", "--engine", "mocker", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {r["point"] for r in rows} == {"p0", "p1", "p2"}
    assert len(rows) == 6  # 3 configurations x 2 concurrency levels
    for row in rows:
        assert float(row["requests"]) == 4 and float(row["errors"]) == 0, row  # aiperf: zero errors
        assert float(row["output_token_throughput_per_s"]) > 0
    # Every request asked for exactly osl tokens (the mock engine samples its end-of-sequence token now and
    # then), and every reply was that long.
    runs = sorted(out.glob("points/*/local/run/bench/c*"))
    assert len(runs) == 6
    for run in runs:
        payloads = [p for entry in json.loads((run / "inputs.json").read_text())["data"] for p in entry["payloads"]]
        assert len(payloads) == 4 and all(p["ignore_eos"] is True for p in payloads), run
        lengths = json.loads((run / "profile_export_aiperf.json").read_text())["output_sequence_length"]
        assert lengths["min"] == lengths["max"] == 16, run
    assert "router.mode=kv" in (out / "results.md").read_text()
    png = (out / "results.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
