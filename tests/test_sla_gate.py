"""The SLA gate (`dyncc bench`, `dyncc up --bench`) against real deployments with Dynamo's mock engine: it
passes a reachable SLA, fails (exit 1, coded) an impossible one and a deployment whose worker is killed
mid-run without migration, and on Slurm runs inside the job. The SLA and the prediction are the ones
`dyncc init --from-sla` records (its text from a recorded AIConfigurator search) or the planner's."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, free_port_block, run_dyncc, sh
from dynamo_parsers import DYNAMO_AVAILABLE
from ruamel.yaml import YAML
from test_sla import recorded

from dyncc.api import build
from dyncc.tools import sla as commands
from dyncc.tools.lifecycle import facts
from dyncc.tools.lifecycle.gate import percentile

needs_dynamo = pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")
SMALL_BENCHMARK = {"isl": 64, "osl": 16, "concurrency": [2], "request_count": 8}


def from_sla_spec(tmp_path: Path) -> Path:
    """What `dyncc init --from-sla` writes for Qwen3-32B on 8 x H200 (TTFT <= 1000 ms, TPOT <= 50 ms), from a
    recorded AIConfigurator search, run on the mock engine on free ports with a small benchmark."""
    req, result = recorded("dense")
    text, _, _ = commands.choose(result, req, "qwen3-32b")
    yaml = YAML()
    data = yaml.load(text)
    base = free_port_block(12)
    data["worker_runtime"] = "mocker"
    data["local"] = {"http_port": base, "system_port_base": base + 1}
    data["benchmark"] = SMALL_BENCHMARK
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    path = tmp_path / "qwen3-32b.yaml"
    path.write_text(buffer.getvalue())
    assert "TTFT <= 1000 ms, TPOT <= 50 ms" in path.read_text()  # the header init --from-sla wrote is kept
    return path


def test_the_sla_and_prediction_are_read_from_the_planner_or_the_init_from_sla_header(tmp_path):
    compilation = build(from_sla_spec(tmp_path), ["local"], tmp_path / "out").compilation
    sla = facts.sla(compilation)
    assert sla is not None and (sla.ttft_ms, sla.itl_ms) == (1000, 50) and "init --from-sla" in sla.source
    prediction = facts.prediction(compilation)
    assert prediction is not None and (prediction.ttft_ms, prediction.itl_ms) == (928.737, 46.432)
    spec = tmp_path / "planned.yaml"
    spec.write_text((tmp_path / "qwen3-32b.yaml").read_text() + "planner:\n  ttft_ms: 300\n  itl_ms: 20\n")
    sla = facts.sla(build(spec, ["local"], tmp_path / "out2").compilation)
    assert sla is not None and (sla.ttft_ms, sla.itl_ms) == (300, 20) and sla.source.startswith("planner")


def test_percentiles_interpolate_between_ranks():
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 50) == 5.5 and percentile(values, 90) == pytest.approx(9.1)
    assert percentile([7.0], 99) == 7.0


@pytest.mark.e2e
@pytest.mark.slow
@needs_dynamo
def test_gate_passes_a_reachable_sla_and_fails_an_impossible_one(tmp_path):
    spec = from_sla_spec(tmp_path)
    out = tmp_path / "out"
    up = run_dyncc("up", spec, "-o", out, "--detach", timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    directory = out / "up-qwen3-32b"
    try:
        passed = run_dyncc("bench", directory, "--results", tmp_path / "pass", timeout=300)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert "dyncc bench: PASS" in passed.stdout
        report = json.loads((tmp_path / "pass" / "gate.json").read_text())
        (level,) = report["levels"]
        assert (level["requests"], level["recorded"], level["failed"], level["short_replies"]) == (8, 8, 0, 0)
        assert report["sla"]["ttft_ms"] == 1000 and "init --from-sla" in report["sla"]["source"]
        assert 0 < level["ttft_ms"]["avg"] < 1000 and 0 < level["itl_ms"]["avg"] < 50
        ratio = report["measured_over_predicted"][0]["ttft"]
        assert ratio == pytest.approx(level["ttft_ms"]["avg"] / 928.737)
        assert "| 2 | 8 | 0 | 0 | 0 |" in (tmp_path / "pass" / "gate.md").read_text()

        impossible = run_dyncc("bench", directory, "--ttft-ms", "1", "--results", tmp_path / "fail", timeout=300)
        assert impossible.returncode == 1, impossible.stdout + impossible.stderr
        assert (
            "error DYN922: concurrency 2: TTFT avg" in impossible.stderr and "over the SLA's 1 ms" in impossible.stderr
        )
        assert json.loads((tmp_path / "fail" / "gate.json").read_text())["passed"] is False
    finally:
        run_dyncc("down", directory, timeout=60)


@pytest.mark.e2e
@pytest.mark.slow
@needs_dynamo
def test_gate_fails_when_a_worker_is_killed_mid_run_without_migration(tmp_path):
    """agg x2, migration off, slow mock steps: a worker killed with requests in flight loses them (the
    launch script restarts it; the deployment keeps serving), and the gate fails with DYN920."""
    base = free_port_block(8)
    spec = tmp_path / "kill.yaml"
    spec.write_text(
        "apiVersion: dyncc/v1\nname: gate-kill\nmodel: {path: Qwen/Qwen3-0.6B}\nworker_runtime: mocker\n"
        "mocker_speedup_ratio: 0.1\nmigration: {limit: 0}\n"
        f"local: {{http_port: {base}, system_port_base: {base + 1}}}\n"
        "pools: {agg: {replicas: 2, engine: {max_batch_size: 16}}}\n"
        "planner: {ttft_ms: 100000, itl_ms: 10000}\n"
        "benchmark: {isl: 64, osl: 100, concurrency: [2], request_count: 6}\n"
    )
    out = tmp_path / "out"
    up = run_dyncc("up", spec, "-o", out, "--engine", "mocker", "--detach", timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    directory = out / "up-gate-kill"
    log = directory / "run" / "logs" / "agg-0.log"
    try:
        launch = (directory / "run" / "launch.log").read_text()
        victim = int(re.search(r"started agg-0 \(pid (\d+)\)", launch).group(1))
        before = log.read_text().count("request received")
        bench = subprocess.Popen(
            [sys.executable, "-m", "dyncc", "bench", str(directory), "--results", str(tmp_path / "r")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while log.read_text().count("request received") == before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert log.read_text().count("request received") > before, "no benchmark request reached agg-0"
        os.killpg(victim, signal.SIGKILL)  # mid-request: each takes ~5 s at this speed-up
        stdout, stderr = bench.communicate(timeout=300)
        assert bench.returncode == 1, stdout + stderr
        assert re.search(r"error DYN920: concurrency 2: [1-6] of 6 requests failed", stderr), stderr
        level = json.loads((tmp_path / "r" / "gate.json").read_text())["levels"][0]
        assert level["failed"] >= 1 and level["errors"], level
    finally:
        run_dyncc("down", directory, timeout=60)


@pytest.mark.e2e
@pytest.mark.slow
@needs_dynamo
def test_up_bench_on_slurm_runs_the_benchmark_inside_the_job_then_cancels_it(slurm, tmp_path):
    base = free_port_block(8, "0.0.0.0")
    spec = tmp_path / "slurm-gate.yaml"
    spec.write_text(
        "apiVersion: dyncc/v1\nname: slurm-gate\nmodel: {path: Qwen/Qwen3-0.6B}\nworker_runtime: mocker\n"
        f"slurm: {{http_port: {base}, system_port_base: {base + 1}, ready_timeout_s: 120}}\n"
        "pools: {agg: {replicas: 2, engine: {max_batch_size: 16}}}\n"
        "planner: {ttft_ms: 10000, itl_ms: 1000}\n"
        "benchmark: {isl: 64, osl: 16, concurrency: [2], request_count: 6}\n"
    )
    proc = run_dyncc("up", spec, "-t", "slurm", "-o", tmp_path / "out", "--bench", timeout=300)
    job = re.search(r"submitted job (\d+)", proc.stdout)
    try:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "dyncc bench: PASS" in proc.stdout and f"job {job.group(1)} cancelled" in proc.stdout, proc.stdout
        (report,) = (tmp_path / "out" / "up-slurm-gate-slurm" / "run").glob("bench-*/gate.json")
        data = json.loads(report.read_text())
        assert data["deployment"]["job_id"] == job.group(1) and data["levels"][0]["recorded"] == 6
    finally:
        if job:
            sh("scancel", job.group(1))
