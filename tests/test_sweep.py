"""Benchmarks and sweeps: expansion, invalid points (and what `validate` says of them), the benchmark
artifacts per target, and a real 3-point local sweep with Dynamo's frontend + mock engine, benchmarked by
aiperf."""

from __future__ import annotations

import csv
import json
import subprocess
import time

import pytest
from conftest import EXAMPLES, cli, free_port_block, run_dyncc, sh
from dynamo_parsers import DYNAMO_AVAILABLE
from k8s_schemas import core_errors
from ruamel.yaml import YAML

from dyncc.diagnostics import DiagnosticError


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


def _diagnostics(proc) -> list[dict]:
    return json.loads(proc.stdout)["files"][0]["diagnostics"]


def test_a_sweep_whose_every_point_is_invalid_fails_validate_and_sweep(tmp_path):
    # The base spec is valid (2 replicas of TP 1); 2 x TP 16 and 2 x TP 8 need more GPUs than the 8-GPU node
    # has (DYN403). (TP 32 would also split Qwen3-0.6B's 16 attention heads: DYN124.)
    spec = _spec_with(tmp_path, sweep={"pools.agg.tensor_parallel": [16, 8]})
    sweep_line = spec.read_text().splitlines().index("sweep:") + 1
    checked = cli("validate", "--format", "json", spec)
    assert checked.returncode == 1, checked.stdout
    errors = [d for d in _diagnostics(checked) if d["severity"] == "error"]
    assert [(d["code"], d["line"]) for d in errors] == [("DYN804", sweep_line)]
    assert "p0 (pools.agg.tensor_parallel=16): DYN403" in errors[0]["message"]

    built = cli("sweep", spec, "-o", tmp_path / "out")
    assert built.returncode == 1 and f"{spec}:{sweep_line}:1: error DYN804" in built.stderr, built.stderr
    index = json.loads((tmp_path / "out" / "index.json").read_text())  # each point's codes, still written
    assert [(p["valid"], p["codes"]) for p in index] == [(False, ["DYN403"])] * 2


def test_some_invalid_points_are_a_warning_from_validate_and_sweep(tmp_path):
    spec = _spec_with(tmp_path, sweep={"pools.agg.replicas": [1, 16]})
    checked = cli("validate", "--format", "json", spec)
    assert checked.returncode == 0, checked.stdout
    (warning,) = [d for d in _diagnostics(checked) if d["code"] == "DYN805"]
    assert warning["severity"] == "warning" and "1 of 2 sweep points" in warning["message"]
    assert "p1 (pools.agg.replicas=16): DYN403" in warning["message"]
    built = cli("sweep", spec, "-o", tmp_path / "out")
    assert built.returncode == 0 and "warning DYN805" in built.stderr, built.stderr
    assert (tmp_path / "out" / "points" / "p000" / "local" / "launch.sh").is_file()


def test_points_checked_from_the_validated_base_match_points_loaded_from_their_text(tmp_path):
    # validate checks a point by setting its values on the base's validated data (parsing 512 points' YAML
    # would cost 512 parses); a point the model refuses falls back to its text, for the loader's code.
    from dyncc import api
    from dyncc.deployment import load_spec_text
    from dyncc.tools import sweep

    spec = _spec_with(
        tmp_path,
        sweep={"pools.agg.replicas": [1, 16], "router.mode": ["kv", "nope"], "benchmark.isl": [64, 0]},
    )
    base, points = sweep.load_sweep(spec)
    sweep.check_points(points, base, ["all"])
    for point in points:
        try:
            loaded = load_spec_text(point.spec_text, "p.yaml", base_dir=tmp_path)
            expected = sorted({d.code for d in api.check(loaded, ["all"], render=False) if d.is_error})
        except DiagnosticError as exc:
            expected = sorted({d.code for d in exc.diagnostics})
        assert point.codes == expected, point.label()
    assert {tuple(p.codes) for p in points} >= {(), ("DYN403",), ("DYN014",), ("DYN013",)}


def test_validating_512_points_of_a_large_spec_is_bounded(tmp_path):
    # 5000 benchmark values (half a second to parse) times 512 points: each point is not parsed again.
    spec = tmp_path / "big.yaml"
    spec.write_text(
        "apiVersion: dyncc/v1\nname: big\nmodel: {path: m, moe: false}\npools: {agg: {replicas: 1}}\n"
        "benchmark: {concurrency: [" + ",".join(["1"] * 5000) + "]}\n"
        "sweep:\n  router.mode: [kv, random, round-robin, power-of-two, kv, random, round-robin, power-of-two]\n"
        "  pools.agg.replicas: [1, 2, 3, 4, 5, 6, 7, 16]\n  benchmark.isl: [1, 2, 3, 4, 5, 6, 7, 8]\n"
    )
    start = time.monotonic()
    proc = run_dyncc("validate", "--format", "json", spec, timeout=120)
    took = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout
    (warning,) = [d for d in _diagnostics(proc) if d["code"] == "DYN805"]  # every point was checked
    assert "64 of 512 sweep points are invalid" in warning["message"]  # 16 replicas: DYN403
    assert took < 30, f"{took:.1f} s"


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


def test_dynamo_version_builds_every_point_for_that_release(tmp_path):
    """`sweep --dynamo-version` as `build --dynamo-version`: each point's files are what building the point's
    spec for that release gives, and its spec file names the release."""
    spec = EXAMPLES / "sweep_local.yaml"
    proc = cli("sweep", spec, "-o", tmp_path / "old", "--dynamo-version", "0.5.1")
    assert proc.returncode == 0, proc.stderr
    assert cli("sweep", spec, "-o", tmp_path / "new").returncode == 0
    for point in sorted((tmp_path / "old" / "points").iterdir()):
        point_spec = YAML(typ="safe").load((point / "spec.yaml").read_text())
        assert point_spec["dynamo"] == {"version": "0.5.1"}
        built = cli("build", point / "spec.yaml", "-t", "local", "-o", tmp_path / "rebuilt" / point.name)
        assert built.returncode == 0, built.stderr
        launch = (point / "local" / "launch.sh").read_text()
        assert launch == (tmp_path / "rebuilt" / point.name / "local" / "launch.sh").read_text()
        assert launch != (tmp_path / "new" / "points" / point.name / "local" / "launch.sh").read_text()
    refused = cli("sweep", spec, "-o", tmp_path / "bad", "--dynamo-version", "latest")
    assert refused.returncode == 1 and "error DYN013" in refused.stderr
