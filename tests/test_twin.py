"""The timed twin's data half: timing NPZs for Dynamo's mock engine from AIConfigurator estimates.

The recorded grid (tests/data/twin/*.json: real AIConfigurator 0.12.0 static estimates for Qwen3-32B,
one TP1 worker on h200_sxm) stands in for AIConfigurator, so no test here needs it. The e2e test runs
Dynamo 1.6.1's real frontend and mock engine with the file and measures TTFT and ITL over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dyncc.aic.mapping import Worker
from dyncc.diagnostics import DiagnosticError
from dyncc.tools.twin import report
from dyncc.twin import timing
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

    from dyncc.compiler.timing_file import npz_problem

    good = recorded_npz(tmp_path / "good.npz")
    arrays = dict(np.load(good))
    bomb = tmp_path / "bomb.npz"  # 17 MiB of step times compress to a few KiB
    np.savez_compressed(bomb, **{**arrays, "decode_itl": np.ones((17 * 1024 * 1024 // 8 // 4, 4))})
    assert bomb.stat().st_size < 1024 * 1024 and "inflates to" in (npz_problem(bomb) or "")
    unused = tmp_path / "unused.npz"  # a member the mock engine never reads is never inflated either
    np.savez_compressed(unused, **arrays, padding=np.zeros(17 * 1024 * 1024 // 8))
    assert npz_problem(unused) is None
    ragged = tmp_path / "ragged.npz"
    np.savez(ragged, **{**arrays, "decode_itl": arrays["decode_itl"][:, :-1]})
    assert "holds decode_itl of shape" in (npz_problem(ragged) or "")
    (tmp_path / "text.npz").write_text("not a zip")
    assert "is not an NPZ" in (npz_problem(tmp_path / "text.npz") or "")
    assert npz_problem(tmp_path) == "cannot be read (Is a directory)"
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    assert npz_problem(fifo) == "cannot be read (not a regular file (a FIFO))"
    assert npz_problem(good) is None


# --- every timing file the mock engine refuses, dyncc refuses ------------------------------------------

GOOD_ARRAYS = {
    "prefill_isl": [64.0, 512.0, 2048.0],
    "prefill_ttft_ms": [5.0, 20.0, 80.0],
    "decode_active_kv_tokens": [64.0, 4096.0, 65536.0],
    "decode_context_length": [64.0, 1024.0],
    "decode_itl": [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]],
}
# Values dyncc refuses although the mock engine loads them: it runs NaN, infinite and negative step times as
# 0 ms, and overflows its clock past ~1.8e22 ms, which scaling and extrapolation reach from smaller values.
STRICTER = ("that are not finite", "that are not positive", "over 1e+12 ms")


def _timing_variants(directory: Path) -> list[Path]:
    """Timing files the mock engine reads, misreads or refuses: dtypes, byte orders, layouts, grids, values,
    zip members and .npy headers (the reproducers of S2-06 and S2-11 among them)."""
    import io
    import struct
    import zipfile

    import numpy as np

    good = {k: np.asarray(v) for k, v in GOOD_ARRAYS.items()}
    changes: dict[str, dict] = {
        "good": {},
        "int64_isl": {"prefill_isl": np.array([64, 512, 2048])},
        "float32_isl": {"prefill_isl": good["prefill_isl"].astype("<f4")},
        "big_endian_isl": {"prefill_isl": good["prefill_isl"].astype(">f8")},
        "bool_ttft": {"prefill_ttft_ms": np.array([True] * 3)},
        "str_ttft": {"prefill_ttft_ms": np.array(["5", "20", "80"])},
        "complex_ttft": {"prefill_ttft_ms": np.array([5 + 1j] * 3)},
        "fortran_itl": {"decode_itl": np.asfortranarray(good["decode_itl"])},
        "itl_transposed": {"decode_itl": good["decode_itl"].T.copy()},
        "itl_1d": {"decode_itl": good["decode_itl"].ravel()},
        "isl_2d": {"prefill_isl": good["prefill_isl"].reshape(3, 1), "prefill_ttft_ms": np.array([[5.0], [20], [80]])},
        "isl_scalar": {"prefill_isl": np.array(64.0), "prefill_ttft_ms": np.array(5.0)},
        "ttft_short": {"prefill_ttft_ms": np.array([5.0, 20.0])},
        "one_prefill_point": {"prefill_isl": np.array([64.0]), "prefill_ttft_ms": np.array([5.0])},
        "one_kv_point": {"decode_active_kv_tokens": np.array([64.0]), "decode_itl": np.array([[5.0, 6.0]])},
        "no_prefill_points": {"prefill_isl": np.array([], float), "prefill_ttft_ms": np.array([], float)},
        "unsorted_isl": {"prefill_isl": np.array([2048.0, 64.0, 512.0])},
        "repeated_isl": {"prefill_isl": np.array([64.0] * 3)},
        "unsorted_kv": {"decode_active_kv_tokens": np.array([65536.0, 64.0, 5.0])},
        "unsorted_context": {"decode_context_length": np.array([1024.0, 64.0])},
        "nan_isl": {"prefill_isl": np.array([64.0, np.nan, 2048.0])},
        "nan_ttft": {"prefill_ttft_ms": np.full(3, np.nan)},
        "inf_itl": {"decode_itl": np.full((3, 2), np.inf)},
        "negative_ttft": {"prefill_ttft_ms": np.full(3, -50.0)},
        "zero_itl": {"decode_itl": np.zeros((3, 2))},
        "ttft_1e12": {"prefill_ttft_ms": np.full(3, 1e12)},
        "ttft_1e20": {"prefill_ttft_ms": np.full(3, 1e20)},
        "itl_1e23": {"decode_itl": np.full((3, 2), 1e23)},
        "ttft_1e308": {"prefill_ttft_ms": np.full(3, 1e308)},
        "extra_array": {"other": np.array([1.0])},
    }
    files = []
    for name, change in changes.items():
        np.savez(directory / f"{name}.npz", **{**good, **change})
        files.append(directory / f"{name}.npz")
    np.savez_compressed(directory / "deflated.npz", **good)
    files.append(directory / "deflated.npz")
    without = dict(good)
    without.pop("decode_itl")
    np.savez(directory / "no_itl.npz", **without)
    files.append(directory / "no_itl.npz")

    def npy(array: Any, version: tuple[int, int] = (1, 0)) -> bytes:
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.asarray(array), version=version)
        return buffer.getvalue()

    def zipped(name: str, members: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> None:
        with zipfile.ZipFile(directory / name, "w", compression=method) as archive:
            for member, data in members:
                archive.writestr(member, data)
        files.append(directory / name)

    members = [(f"{k}.npy", npy(v)) for k, v in good.items()]
    zipped("npy_v2.npz", [(f"{k}.npy", npy(v, (2, 0))) for k, v in good.items()])
    zipped("npy_v3.npz", [(f"{k}.npy", npy(v, (3, 0))) for k, v in good.items()])
    zipped("bare_names.npz", [(k, npy(v)) for k, v in good.items()])
    zipped("bzip2.npz", members, zipfile.ZIP_BZIP2)
    zipped("lzma.npz", members, zipfile.ZIP_LZMA)
    zipped("in_a_folder.npz", [(f"sub/{m}", d) for m, d in members])
    zipped("trailing_bytes.npz", [(m, d + b"xx" if m == "prefill_isl.npy" else d) for m, d in members])
    zipped("truncated.npz", [(m, d[:-4] if m == "prefill_isl.npy" else d) for m, d in members])
    zipped("bare_name_wins.npz", [*members, ("prefill_isl", npy([2048.0, 64.0, 512.0]))])
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776, 2), }"
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    huge = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
    zipped("huge_shape.npz", [(m, huge if m == "decode_itl.npy" else d) for m, d in members])
    (directory / "empty.npz").write_bytes(b"")
    files.append(directory / "empty.npz")
    return files


def _engine_verdicts(files: list[Path]) -> dict[str, dict]:
    """The mock engine's verdict on each file. A file that takes the engine's process down (a shape it
    allocates before reading) is one it refuses; the files after it are run in a new process."""
    verdicts: dict[str, dict] = {}
    pending = list(files)
    while pending:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).parent / "mocker_replay.py"), *map(str, pending)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        verdicts.update({Path(v["file"]).name: v for v in map(json.loads, proc.stdout.splitlines())})
        pending = [f for f in pending if f.name not in verdicts]
        assert proc.returncode != 0 or not pending, proc.stderr[-2000:]
        if pending:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            verdicts[pending.pop(0).name] = {"runs": False, "error": f"exit {proc.returncode}: {last[:200]}"}
    return verdicts


def test_every_timing_file_the_mock_engine_refuses_is_refused(tmp_path: Path) -> None:
    """Dynamo 1.6.1's own engine is the judge: each file is run by it (tests/mocker_replay.py) and checked by
    dyncc. A file the engine refuses or cannot run is refused by DYN912's check; a file dyncc accepts runs; a
    file dyncc refuses that the engine loads holds values it would misrun (STRICTER)."""
    from dynamo_parsers import DYNAMO_AVAILABLE

    from dyncc.compiler.timing_file import npz_problem

    if not DYNAMO_AVAILABLE:
        pytest.skip("Dynamo 1.6.1 is installed by scripts/setup.sh")
    files = _timing_variants(tmp_path)
    verdicts = _engine_verdicts(files)
    refused_by_engine = set()
    for path in files:
        engine, problem = verdicts[path.name], npz_problem(path)
        if not engine["runs"]:
            refused_by_engine.add(path.name)
            assert problem is not None, f"{path.name}: the mock engine refuses it ({engine['error']}), dyncc does not"
        elif problem is not None:
            assert any(why in problem for why in STRICTER), (path.name, problem)
    # The table is not one-sided: the engine runs some of these files and refuses others.
    assert {"good.npz", "big_endian_isl.npz", "fortran_itl.npz", "deflated.npz", "npy_v3.npz"}.isdisjoint(
        refused_by_engine
    )
    assert {"int64_isl.npz", "unsorted_isl.npz", "huge_shape.npz", "empty.npz", "bzip2.npz"} <= refused_by_engine


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
    from command_lines import plan_worker_args

    from dyncc.api import compile_timed, with_mocker_timing, with_worker_runtime
    from dyncc.deployment import load_spec

    npz = recorded_npz(tmp_path / "t.npz")
    loaded = with_mocker_timing(with_worker_runtime(load_spec(EXAMPLES / "disagg.yaml"), "mocker"), str(npz))
    plan = compile_timed(loaded).plan
    for pool in plan.pools:
        parsed = parse_mocker(plan_worker_args(plan, pool, data_dir=str(tmp_path)))
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
    from dyncc.tools.lifecycle.run import Deployment, chat_completion
    from dyncc.tools.twin.run import stream_timing

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
