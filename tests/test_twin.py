"""The timed twin's data half: timing NPZs for Dynamo's mock engine from AIConfigurator estimates.

The recorded grid (tests/data/twin/*.json: real AIConfigurator 0.12.0 static estimates for Qwen3-32B,
one TP1 worker on h200_sxm) stands in for AIConfigurator, so no test here needs it. The e2e test runs
Dynamo 1.6.1's real frontend and mock engine with the file and measures TTFT and ITL over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dyncc.diagnostics import DiagnosticError
from dyncc.sla.mapping import Worker
from dyncc.twin import report, timing
from dyncc.twin.timing import Grid, PoolTiming

DATA = Path(__file__).parent / "data" / "twin"
RECORDED = json.loads((DATA / "qwen3-32b_h200_tp1.json").read_text())
GRID = Grid(**{k: tuple(v) for k, v in RECORDED["grid"].items()})
POOL = PoolTiming(RECORDED["pool"]["model"], RECORDED["pool"]["system"], Worker(**RECORDED["pool"]["worker"]))


def recorded_npz(path: Path) -> Path:
    path.write_bytes(timing.npz_bytes(GRID, RECORDED["prefill_ttft_ms"], RECORDED["decode_itl_ms"]))
    return path


def test_npz_has_the_mockers_format(tmp_path: Path) -> None:
    npz = recorded_npz(tmp_path / "t.npz")
    timing.check_npz(npz)
    try:
        from dynamo.mocker.utils.planner_profiler_perf_data_converter import is_mocker_format_npz
    except ImportError:
        pytest.skip("Dynamo 1.6.1 is installed by scripts/setup.sh")
    assert is_mocker_format_npz(npz)  # Dynamo's own check, as `--planner-profile-data` runs it


def test_broken_npz_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(timing.npz_bytes(GRID, [0.0] * len(GRID.prefill_isl), RECORDED["decode_itl_ms"]))
    with pytest.raises(DiagnosticError) as exc:
        timing.check_npz(bad)
    assert exc.value.diagnostics[0].code == "DYN912"


def test_timing_files_that_would_mislead_or_exhaust_are_refused(tmp_path: Path) -> None:
    import numpy as np

    from dyncc.compiler.rules.mock_timing import npz_problem

    good = recorded_npz(tmp_path / "good.npz")
    arrays = dict(np.load(good))
    bomb = tmp_path / "bomb.npz"  # 17 MiB of zeros compress to a few KiB
    np.savez_compressed(bomb, **arrays, padding=np.zeros(17 * 1024 * 1024 // 8))
    assert bomb.stat().st_size < 1024 * 1024 and "inflates to" in (npz_problem(bomb) or "")
    ragged = tmp_path / "ragged.npz"
    np.savez(ragged, **{**arrays, "decode_itl": arrays["decode_itl"][:, :-1]})
    assert "sizes disagree" in (npz_problem(ragged) or "")
    (tmp_path / "text.npz").write_text("not a zip")
    assert "is not an NPZ" in (npz_problem(tmp_path / "text.npz") or "")
    assert npz_problem(tmp_path) == "is not a regular file"
    assert npz_problem(good) is None


def test_grid_holds_the_workload_lengths() -> None:
    g = Grid.around(4000, 500, 64)
    assert 4000 in g.prefill_isl and {4000, 4250, 4500} <= set(g.decode_context)
    assert max(g.decode_kv_tokens) >= 4500 * 64
    assert all(b >= 1 and c >= 1 for c, b in g.decode_points())


def test_second_run_reads_the_cache_without_aiconfigurator(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("DYNCC_CACHE_DIR", str(cache))
    directory = timing.cache_dir()
    assert directory == cache / "twin" and (directory.stat().st_mode & 0o777) == 0o700
    recorded_npz(directory / POOL.file_name(GRID)).chmod(0o600)
    monkeypatch.setenv("DYNCC_AIC_PYTHON", str(tmp_path / "absent"))  # any AIConfigurator run would fail
    got = timing.timing_file(POOL, GRID)
    assert got.cached and got.path == directory / POOL.file_name(GRID)


def test_cache_key_separates_parallelism_and_grid() -> None:
    other = PoolTiming(POOL.model, POOL.system, Worker(tp=2, bs=4))
    assert POOL.file_name(GRID) != other.file_name(GRID)
    assert POOL.file_name(GRID) != POOL.file_name(Grid.around(1000, 100, 4))
    assert POOL.file_name(GRID) == PoolTiming(POOL.model, POOL.system, Worker(tp=1, bs=4)).file_name(GRID)


def test_cache_not_ours_is_not_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    base = tmp_path / "shared"
    base.mkdir()
    base.chmod(0o777)  # anyone could swap a timing file in: no cache
    monkeypatch.setenv("DYNCC_CACHE_DIR", str(base))
    assert timing.cache_dir() is None
    monkeypatch.setenv("DYNCC_CACHE_DIR", "")
    assert timing.cache_dir() is None


def test_cached_file_open_to_others_is_regenerated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DYNCC_CACHE_DIR", str(tmp_path / "c"))
    directory = timing.cache_dir()
    assert directory is not None
    recorded_npz(directory / POOL.file_name(GRID)).chmod(0o666)
    monkeypatch.setenv("DYNCC_AIC_PYTHON", str(tmp_path / "absent"))
    with pytest.raises(DiagnosticError) as exc:  # not trusted, so AIConfigurator is asked again (absent here)
        timing.timing_file(POOL, GRID)
    assert exc.value.diagnostics[0].code == "DYN901"


def test_report_puts_prediction_beside_measurement(tmp_path: Path) -> None:
    (tmp_path / "results.csv").write_text(
        "point,values,gpus,concurrency,requests,errors,request_throughput_per_s,output_token_throughput_per_s,"
        "output_token_throughput_per_gpu,ttft_ms_avg,itl_ms_avg,request_latency_ms_avg,request_latency_ms_p99\n"
        "p0,agg,8,1,8,0,0.19,87.5,10.9375,239.8,10.83,5101,5671\n"
    )
    out = report.write_report(tmp_path, lambda point, c: report.Predicted(220.6, 10.85, 11.5))
    text = out.read_text()
    assert "| p0 | agg | 8 | 1 | 239.80 | 220.60 | 1.09 | 10.83 | 10.85 | 1.00 | 10.94 | 11.50 | 0.95 |" in text


def test_report_orders_points_by_throughput_per_gpu_both_ways(tmp_path: Path) -> None:
    header = "point,values,gpus,concurrency,output_token_throughput_per_s,ttft_ms_avg,itl_ms_avg\n"
    (tmp_path / "results.csv").write_text(
        header + "p0,1P1D,4,8,400,300,12\np1,2P1D,6,8,420,250,12\np2,agg,8,8,480,400,14\n"
    )
    predicted = {"p0": 110.0, "p1": 75.0, "p2": 50.0}
    rows = report.read_rows(tmp_path / "results.csv", lambda p, c: report.Predicted(1, 1, predicted[p]))
    (order,) = report.orderings(rows)
    assert order.twin == ("p0", "p1", "p2") and order.aic == ("p0", "p1", "p2") and order.agrees
    predicted["p2"] = 80.0  # AIConfigurator now ranks agg above 2P1D: the report says the orders differ
    rows = report.read_rows(tmp_path / "results.csv", lambda p, c: report.Predicted(1, 1, predicted[p]))
    assert not report.orderings(rows)[0].agrees
    text = report.write_report(tmp_path, lambda p, c: report.Predicted(1, 1, predicted[p])).read_text()
    assert "concurrency 8: twin p0 > p1 > p2; AIConfigurator p0 > p2 > p1: DIFFERENT order" in text


# --- the timing reaches the mock workers through the plan -------------------------------------------


EXAMPLES = Path(__file__).parent.parent / "examples"


def test_build_copies_the_timing_file_for_every_mock_pool(tmp_path: Path) -> None:
    from dyncc.api import build

    npz = recorded_npz(tmp_path / "t.npz")
    result = build(EXAMPLES / "disagg.yaml", ["local", "slurm"], tmp_path / "out", engine="mocker", timing=str(npz))
    for output in result.outputs:
        launch = (output.directory / ("launch.sh" if output.target == "local" else "job.sbatch")).read_text()
        here = "$HERE" if output.target == "local" else "$DYNCC_DIR"
        for role in ("prefill", "decode"):
            assert (output.directory / "timing" / f"{role}.npz").read_bytes() == npz.read_bytes()
            assert f'--planner-profile-data "{here}/timing/{role}.npz"' in launch
    npz.unlink()  # the built deployment carries its own copy
    assert timing.npz_problem(result.outputs[0].directory / "timing" / "decode.npz") is None


def test_timing_flag_parses_with_dynamos_mocker(tmp_path: Path) -> None:
    from dynamo_parsers import DYNAMO_AVAILABLE, parse_mocker

    if not DYNAMO_AVAILABLE:
        pytest.skip("Dynamo 1.6.1 is installed by scripts/setup.sh")
    from dyncc.api import compile_timed, with_mocker_timing, with_worker_runtime
    from dyncc.deployment import load_spec
    from dyncc.targets.mocker import mocker_args

    npz = recorded_npz(tmp_path / "t.npz")
    loaded = with_mocker_timing(with_worker_runtime(load_spec(EXAMPLES / "disagg.yaml"), "mocker"), str(npz))
    plan = compile_timed(loaded).plan
    for pool, worker in plan.workers:
        argv = [str(a) for a in mocker_args(plan, pool, worker, "/model", files_dir=str(tmp_path))]
        parsed = parse_mocker([a.strip('"') for a in argv])  # the shell would strip the quotes
        assert Path(parsed.planner_profile_data) == tmp_path / "timing" / f"{pool.role}.npz"


def test_aiconfigurator_timing_comes_from_the_cache_on_a_second_build(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What `--timing aiconfigurator` asks for is keyed by the pool's shape; with the file cached, a build
    starts no AIConfigurator (one that would fail is configured here)."""
    from dyncc.api import build, with_mocker_timing, with_worker_runtime
    from dyncc.compiler import compile_spec
    from dyncc.deployment import load_spec
    from dyncc.twin.resolve import pool_timing

    spec = tmp_path / "twin.yaml"
    spec.write_text(
        "apiVersion: dyncc/v1\nname: twin\nmodel: {path: Qwen/Qwen3-32B, moe: false}\nworker_runtime: mocker\n"
        "mocker_timing: aiconfigurator\ncluster: {gpu_type: H200}\n"
        "benchmark: {isl: 2000, osl: 64, concurrency: [1]}\n"
        "pools: {agg: {replicas: 1, engine: {max_batch_size: 4}}}\n"
    )
    monkeypatch.setenv("DYNCC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DYNCC_AIC_PYTHON", str(tmp_path / "absent"))
    with pytest.raises(DiagnosticError) as exc:  # nothing cached: AIConfigurator is asked, and is absent
        build(spec, ["local"], tmp_path / "out")
    assert exc.value.diagnostics[0].code == "DYN901"
    compilation = compile_spec(with_mocker_timing(with_worker_runtime(load_spec(spec), None), None))
    shape, grid = pool_timing(compilation, compilation.graph.pools()[0])
    assert shape.system == "h200_sxm" and shape.worker.key() == "tp1-pp1-dp1-etp1-ep1"
    directory = timing.cache_dir()
    assert directory is not None
    cached = recorded_npz(directory / shape.file_name(grid))
    cached.chmod(0o600)
    result = build(spec, ["local"], tmp_path / "out")
    assert (result.outputs[0].directory / "timing" / "agg.npz").read_bytes() == cached.read_bytes()


# --- e2e: the real mock engine follows the file ---------------------------------------------------


@pytest.mark.e2e
@pytest.mark.slow
def test_mock_worker_follows_the_timing_file(tmp_path: Path) -> None:
    import numpy as np
    from conftest import free_port_block, startup_report
    from dynamo_parsers import DYNAMO_AVAILABLE

    if not DYNAMO_AVAILABLE:
        pytest.skip("Dynamo 1.6.1 is installed by scripts/setup.sh")
    from dyncc.api import build
    from dyncc.run import Deployment, chat_completion
    from dyncc.twin.run import stream_timing

    npz = recorded_npz(tmp_path / "timing.npz")
    base = free_port_block(16)
    spec = tmp_path / "twin.yaml"
    spec.write_text(
        "apiVersion: dyncc/v1\nname: twin\nmodel: {path: Qwen/Qwen3-32B, moe: false}\n"
        "pools: {agg: {replicas: 1, engine: {max_batch_size: 4}}}\n"
        f"local: {{http_port: {base}, system_port_base: {base + 1}, ready_timeout_s: 120}}\n"
    )
    local = build(spec, ["local"], tmp_path / "out", engine="mocker", timing=str(npz)).outputs[0].directory
    deployment = Deployment(local / "launch.sh")
    try:
        assert deployment.wait_ready(150), startup_report(deployment)
        prompt = "hello " * 660  # ~3 tokens a word with the mock's tiny tokenizer: ~2000 tokens
        usage = chat_completion(deployment.url, "Qwen/Qwen3-32B", prompt, max_tokens=4)["usage"]
        ttfts, itls = [], []
        for i in range(3):  # a different first word each time: no prefix-cache hit shortens the prefill
            ttft, itl, n = stream_timing(deployment.url, "Qwen/Qwen3-32B", f"q{i} " + prompt, 48)
            assert n >= 40
            ttfts.append(ttft)
            itls.append(itl)
    finally:
        deployment.stop()
    isl = usage["prompt_tokens"]
    want_ttft = float(np.interp(isl, GRID.prefill_isl, RECORDED["prefill_ttft_ms"]))
    table = np.asarray(RECORDED["decode_itl_ms"]).reshape(len(GRID.decode_kv_tokens), len(GRID.decode_context))
    # one request of ~isl tokens: KV tokens = context = isl (the grid has rows and columns there)
    kv_row = [float(np.interp(isl, GRID.decode_context, r)) for r in table]
    want_itl = float(np.interp(isl, GRID.decode_kv_tokens, kv_row))
    got_ttft, got_itl = float(np.median(ttfts)), float(np.median(itls))
    # Recorded 2000-token prefill: ~189 ms; decode step ~18.6 ms, against the untimed mock's few ms.
    assert got_ttft == pytest.approx(want_ttft, rel=0.3), (isl, ttfts, want_ttft)
    assert got_itl == pytest.approx(want_itl, rel=0.3), (itls, want_itl)
