"""`init --from-sla` and `estimate`: AIConfigurator's rows become specs dyncc checks and builds.

The mapping runs on rows recorded from real AIConfigurator 0.12.0 searches (tests/data/aic/*.json, the
worker's own answers), so it is tested without AIConfigurator. Tests marked slow run the real one from
the venv scripts/setup.sh makes in .cache/aiconfigurator (skipped when it is missing)."""

from __future__ import annotations

import json
import stat
import sys
import textwrap
import time
from pathlib import Path

import click
import msgspec
import pytest
from click.testing import CliRunner
from conftest import process_stats

from dyncc.aic import runner
from dyncc.aic.mapping import Request
from dyncc.api import build
from dyncc.diagnostics import DiagnosticError
from dyncc.facts import aic_systems
from dyncc.tools import sla as commands

DATA = Path(__file__).parent / "data" / "aic"
AIC_PYTHON = runner.VENV_PYTHON
BACKEND = commands.modelled().backend  # the default engine, as AIConfigurator is asked about it
needs_aic = pytest.mark.skipif(not AIC_PYTHON.exists(), reason="AIConfigurator venv (.cache/aiconfigurator) missing")


def recorded(name: str) -> tuple[Request, dict]:
    data = json.loads((DATA / f"{name}.json").read_text())
    r = data["request"]
    req = Request(
        r["model"], r["system"], r["gpus"], r["isl"], r["osl"], r["ttft"], r["tpot"],
        mtp=r.get("mtp", 0), mtp_accepted=r.get("mtp_accepted"),
    )  # fmt: skip
    assert data["answer"]["ok"]
    return req, data["answer"]["result"]


def group() -> click.Group:
    """dyncc's own command group: `init --from-sla` and `estimate` as users call them."""
    from dyncc.cli import main

    return main


def _load(text: str):
    from dyncc.deployment import load_spec_text

    return load_spec_text(text, "<test>")


# --- the mapping, on recorded rows ---------------------------------------------------------------


def test_dense_row_becomes_agg_4x_tp2(tmp_path: Path) -> None:
    req, result = recorded("dense")
    text, chosen, rejected = commands.choose(result, req, "qwen3-32b")
    spec = _load(text).spec
    assert (chosen.mode, chosen.rank, rejected) == ("agg", 1, [])
    assert spec.pools.agg.replicas == 4 and spec.pools.agg.tensor_parallel == 2
    assert spec.pools.agg.engine.max_batch_size == chosen.row["bs"] == 64
    assert spec.cluster.gpu_type == "H200" and spec.model.moe is False
    assert spec.benchmark.concurrency == [1, 256]  # 64 per replica group x 4 groups
    assert "TensorRT-LLM 1.3.0rc20" in text and "Runner-ups" in text and "disagg #1" in text
    assert commands.header_prediction(text) == {"ttft": 928.737, "tpot": 46.432, "tokens_per_s_per_gpu": 671.675}
    _builds_everywhere(text, tmp_path, {"local", "k8s", "slurm"})


def test_moe_row_maps_attention_dp_and_expert_parallel(tmp_path: Path) -> None:
    req, result = recorded("moe_ep_dp")
    text, chosen, _ = commands.choose(result, req, "dsv3")
    row = chosen.row
    assert (row["tp"], row["dp"], row["moe_ep"]) == (1, 16, 16)  # attention TP 1 x DP 16, EP 16
    pool = _load(text).spec.pools.agg
    assert (pool.tensor_parallel, pool.attention_dp, pool.expert_parallel, pool.moe_tensor_parallel) == (
        16,
        True,
        16,
        1,
    )
    assert pool.engine.max_batch_size == row["bs"]  # per attention-DP rank
    # 16 GPUs span two 8-GPU nodes: the local target is skipped, k8s and slurm build
    _builds_everywhere(text, tmp_path, {"k8s", "slurm"})
    assert "local" not in {o.target for o in build(tmp_path / "spec.yaml", ["all"], tmp_path / "o2").outputs}


def test_moe_disagg_rows_map_per_role(tmp_path: Path) -> None:
    req, result = recorded("moe_ep_dp")
    text, chosen, _ = commands.choose(result, dataclass_replace(req, mode="disagg"), "dsv3")
    spec = _load(text).spec
    assert chosen.mode == "disagg"
    assert (spec.pools.prefill.tensor_parallel, spec.pools.prefill.attention_dp) == (8, True)
    assert (spec.pools.decode.tensor_parallel, spec.pools.decode.expert_parallel) == (8, 8)
    assert spec.kv_transfer.backend == "NIXL"
    _builds_everywhere(text, tmp_path, {"k8s", "slurm"})


def test_mtp_row_speculates(tmp_path: Path) -> None:
    req, result = recorded("mtp")
    text, chosen, _ = commands.choose(result, req, "dsv3-mtp")
    spec = _load(text).spec
    assert (spec.speculative.mode, spec.speculative.draft_len, spec.model.mtp_layers) == ("mtp", 1, 1)
    assert "MTP 1 (0.8 accepted)" in text
    _builds_everywhere(text, tmp_path, {"local", "k8s", "slurm"})


def dataclass_replace(req: Request, **changes: object) -> Request:

    return msgspec.structs.replace(req, **changes)  # type: ignore[arg-type]


def _builds_everywhere(text: str, tmp_path: Path, expected: set[str]) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    result = build(path, ["all"], tmp_path / "out")
    built = {o.target for o in result.outputs}
    assert built >= expected and all(o.files for o in result.outputs)
    # every other target was skipped with its reason (one-node targets for a multi-node spec), none failed
    from dyncc.targets import target_names

    # (other notes in `skipped` name features a built target leaves out, e.g. DYN581: compose writes no benchmark)
    skips = [d for d in result.skipped if " skipped: " in d.message]
    assert len(built) + len(skips) == len(list(target_names()))
    assert all(d.severity in ("info", "warning") for d in result.skipped)


def test_rejected_row_is_reported_and_the_next_taken() -> None:
    req, result = recorded("dense")
    rows = result["rows"]["agg"]
    mixed = dict(rows[0], tp=2, dp=2, num_total_gpus=4)  # attention TP and DP at once: not TensorRT-LLM
    oversized = dict(rows[1], tp=4, num_total_gpus=4, bs=0)  # batch 0: dyncc refuses it (DYN013, out of range)
    text, chosen, rejected = commands.choose(
        {**result, "rows": {"agg": [mixed, oversized, *rows[2:]]}}, dataclass_replace(req, mode="agg"), "q"
    )
    assert [r.codes for r in rejected] == [("DYN908",), ("DYN013",)]
    assert chosen.rank == 3 and "Rows dyncc rejected" in text and "DYN908" in text


def test_every_row_rejected_is_dyn908() -> None:
    req, result = recorded("dense")
    bad = [dict(r, tp=2, dp=2, num_total_gpus=4) for r in result["rows"]["agg"]]
    with pytest.raises(DiagnosticError) as exc:
        commands.choose({**result, "rows": {"agg": bad}}, dataclass_replace(req, mode="agg"), "q")
    assert [d.code for d in exc.value.diagnostics] == ["DYN908"]


def test_worker_shape_inverts_for_estimate(tmp_path: Path) -> None:
    req, result = recorded("moe_ep_dp")
    text, chosen, _ = commands.choose(result, req, "dsv3")
    path = tmp_path / "s.yaml"
    path.write_text(text)
    args = commands.estimate_args(path, None, None, None)
    assert (args["tp_size"], args["attention_dp_size"], args["moe_ep_size"], args["moe_tp_size"]) == (1, 16, 16, 1)
    assert (args["batch_size"], args["isl"], args["system"]) == (chosen.row["bs"], 4000, "h200_sxm")


def test_gpu_type_names_map_to_systems() -> None:
    assert aic_systems.system_for_gpu_type("H200") == "h200_sxm"
    assert aic_systems.system_for_gpu_type("gb200") == "gb200"
    assert aic_systems.system_for_gpu_type("h200_sxm") == "h200_sxm"
    assert aic_systems.system_for_gpu_type("TPUv5") is None


# --- coded errors that need no AIConfigurator -----------------------------------------------------


def test_gpus_zero_is_coded_before_any_search() -> None:
    out = CliRunner().invoke(
        group(), ["init", "--from-sla", "--model", "Qwen/Qwen3-32B", "--system", "h200_sxm", "--gpus", "0"]
    )
    assert out.exit_code == 1 and "error DYN904: --gpus: 0 GPUs" in out.output
    assert "Traceback" not in out.output


def test_estimate_needs_a_gpu_type(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("apiVersion: dyncc/v1\nname: a\nmodel: {path: Qwen/Qwen3-32B}\npools: {agg: {}}\n")
    out = CliRunner().invoke(group(), ["estimate", str(spec)])
    assert out.exit_code == 1 and "error DYN903" in out.output and "s.yaml:" in out.output


def test_unknown_gpu_type_is_coded_at_its_line(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "apiVersion: dyncc/v1\nname: a\nmodel: {path: Qwen/Qwen3-32B}\ncluster: {gpu_type: TPUv5}\npools: {agg: {}}\n"
    )
    out = CliRunner().invoke(group(), ["estimate", str(spec)])
    assert out.exit_code == 1 and f"{spec}:4:" in out.output and "DYN903" in out.output


ESTIMATE_SPEC = (
    "apiVersion: dyncc/v1\nname: est\nmodel: {path: Qwen/Qwen3-32B, moe: false}\n"
    "cluster: {gpu_type: H100, gpus_per_node: 8, nodes: 1}\nbenchmark: {isl: 1024, osl: 128, concurrency: [8]}\n"
    "pools:\n  agg: {replicas: 1, tensor_parallel: 2, engine: {max_batch_size: 8}}\n"
)


@pytest.mark.parametrize(
    "option",
    [
        ["--isl", "0"],  # was replaced by the spec's benchmark.isl, silently
        ["--osl", "-5"],
        ["--isl", "2000000"],
        ["--timeout", "-1"],  # ran, and reported "did not finish within -1 s"
        ["--timeout", "nan"],
        ["--timeout", "inf"],
        ["--mtp-accepted", "nan"],  # accepted
        ["--mtp-accepted", "-3"],
        ["--mtp-accepted", "inf"],
    ],
    ids=" ".join,
)
def test_estimate_option_values_are_usage_errors(
    option: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNCC_AIC_PYTHON", str(tmp_path / "no-python"))  # a value let through ends in DYN901
    spec = tmp_path / "s.yaml"
    spec.write_text(ESTIMATE_SPEC)
    out = CliRunner().invoke(group(), ["estimate", str(spec), *option])
    assert out.exit_code == 2, out.output
    assert f"Invalid value for '{option[0]}'" in out.output and "DYN901" not in out.output


def test_init_from_sla_timeout_is_range_checked() -> None:
    args = ["init", "--from-sla", "--model", "Qwen/Qwen3-32B", "--system", "h200_sxm", "--gpus", "8"]
    out = CliRunner().invoke(group(), [*args, "--timeout", "-1"])
    assert out.exit_code == 2 and "Invalid value for '--timeout'" in out.output, out.output


def test_estimate_mtp_acceptance_is_checked_against_the_spec(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(ESTIMATE_SPEC)
    with pytest.raises(DiagnosticError) as exc:  # no MTP in the spec: the value would be ignored
        commands.estimate_args(spec, None, None, 0.5)
    assert exc.value.diagnostics[0].code == "DYN904" and "does not speculate" in exc.value.diagnostics[0].message
    spec.write_text(ESTIMATE_SPEC.replace("moe: false}", "moe: false}\nspeculative: {mode: mtp, draft_len: 2}"))
    assert commands.estimate_args(spec, None, None, 1.5)["nextn_accepted"] == 1.5
    with pytest.raises(DiagnosticError) as exc:  # more tokens accepted than drafted
        commands.estimate_args(spec, None, None, 2.5)
    assert exc.value.diagnostics[0].code == "DYN904" and "draft length 2" in exc.value.diagnostics[0].message
    with pytest.raises(DiagnosticError) as exc:  # the library call is checked as the option is
        commands.estimate_args(spec, 0, None, 1.0)
    assert exc.value.diagnostics[0].code == "DYN904" and "--isl 0" in exc.value.diagnostics[0].message


def test_missing_aiconfigurator_is_dyn901(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DYNCC_AIC_PYTHON", str(tmp_path / "no-python"))
    with pytest.raises(DiagnosticError) as exc:
        runner.run("catalog", {}, engine=BACKEND)
    assert exc.value.diagnostics[0].code == "DYN901"
    monkeypatch.setenv("DYNCC_AIC_PYTHON", sys.executable)  # this python has no aiconfigurator
    if _has_aic(sys.executable):
        pytest.skip("this python has aiconfigurator")
    with pytest.raises(DiagnosticError) as exc:
        runner.run("catalog", {}, engine=BACKEND)
    assert exc.value.diagnostics[0].code == "DYN901"


def _has_aic(python: str) -> bool:
    import importlib.util

    return python == sys.executable and importlib.util.find_spec("aiconfigurator") is not None


def test_other_aiconfigurator_version_is_dyn907(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pkg = tmp_path / "aiconfigurator"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    meta = tmp_path / "aiconfigurator-0.11.0.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: aiconfigurator\nVersion: 0.11.0\n")
    monkeypatch.setenv("DYNCC_AIC_PYTHON", sys.executable)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with pytest.raises(DiagnosticError) as exc:
        runner.run("catalog", {}, engine=BACKEND)
    d = exc.value.diagnostics[0]
    assert d.code == "DYN907" and "0.11.0" in d.message and runner.AIC_VERSION in d.hint


def _fake_python(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/bash\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_timeout_stops_the_child_and_is_dyn906(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    monkeypatch.setenv("DYNCC_AIC_PYTHON", str(_fake_python(tmp_path, f"echo $$ > {pidfile}; sleep 60 & wait")))
    seen: list[float] = []
    started = time.monotonic()
    with pytest.raises(DiagnosticError) as exc:
        runner.run("search", {}, timeout=2, progress=lambda s, note: seen.append(s), engine=BACKEND)
    assert exc.value.diagnostics[0].code == "DYN906"
    assert time.monotonic() - started < 15 and seen  # progress was reported while it ran
    _assert_group_ends(int(pidfile.read_text()))  # the whole group (the shell and its sleep) is gone


def test_crashing_worker_is_dyn909(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DYNCC_AIC_PYTHON", str(_fake_python(tmp_path, "echo 'Segmentation fault' >&2; exit 139")))
    with pytest.raises(DiagnosticError) as exc:
        runner.run("search", {}, engine=BACKEND)
    d = exc.value.diagnostics[0]
    assert d.code == "DYN909" and "Segmentation fault" in d.message and "139" in d.message


def test_ctrl_c_stops_the_child(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    monkeypatch.setenv("DYNCC_AIC_PYTHON", str(_fake_python(tmp_path, f"echo $$ > {pidfile}; sleep 60 & wait")))

    def interrupt(elapsed: float, note: str) -> None:
        if pidfile.exists() and pidfile.read_text().strip():
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.run("search", {}, timeout=30, progress=interrupt, engine=BACKEND)
    _assert_group_ends(int(pidfile.read_text()))


def _assert_group_ends(group: int) -> None:
    # Zombies wait for init to reap them (slowly in some containers); what matters is that nothing still runs.
    deadline = time.monotonic() + 5
    while _running_in_group(group) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running_in_group(group)


def _running_in_group(pgid: int) -> list[int]:
    running = []
    for pid, fields in process_stats():
        if int(fields[2]) == pgid and fields[0] != "Z":
            running.append(pid)
    return running


# --- with the real AIConfigurator ----------------------------------------------------------------


@pytest.mark.slow
@needs_aic
def test_init_from_sla_then_estimate_reproduces_the_header(tmp_path: Path) -> None:
    out_spec = tmp_path / "qwen.yaml"
    cli = group()
    made = CliRunner().invoke(
        cli,
        ["init", "--from-sla", "--model", "Qwen/Qwen3-32B", "--system", "h200_sxm", "--gpus", "8", "--isl", "4000",
         "--osl", "500", "--ttft", "1000", "--tpot", "50", "-o", str(out_spec)],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    from dyncc.api import validate

    assert validate(out_spec).ok
    header = commands.header_prediction(out_spec.read_text())
    assert header is not None
    est = CliRunner().invoke(cli, ["estimate", str(out_spec), "--format", "json"])
    assert est.exit_code == 0, est.output
    got = json.loads(est.output[est.output.index("{") :])
    assert got["ttft"] == pytest.approx(header["ttft"], abs=0.001)
    assert got["tpot"] == pytest.approx(header["tpot"], abs=0.001)
    assert got["tokens_per_s_per_gpu"] == pytest.approx(header["tokens_per_s_per_gpu"], abs=0.001)


@pytest.mark.slow
@needs_aic
@pytest.mark.parametrize(
    "args, code",
    [
        (["--model", "Acme/NoSuchModel-7B", "--system", "h200_sxm", "--gpus", "8"], "DYN902"),
        (["--model", "Qwen/Qwen3-32B", "--system", "z900_sxm", "--gpus", "8"], "DYN903"),
        (["--model", "Qwen/Qwen3-32B", "--system", "h200_sxm", "--gpus", "8", "--ttft", "5", "--tpot", "1"], "DYN905"),
    ],
    ids=["unknown-model", "unknown-system", "unmeetable-sla"],
)
def test_real_failures_are_coded(args: list[str], code: str) -> None:
    out = CliRunner().invoke(group(), ["init", "--from-sla", *args])
    assert out.exit_code == 1, out.output
    assert f"error {code}" in out.output and "Traceback" not in out.output


@pytest.mark.slow
@needs_aic
def test_estimate_of_a_hand_written_disagg_spec(tmp_path: Path) -> None:
    spec = tmp_path / "d.yaml"
    spec.write_text(
        textwrap.dedent(
            """\
            apiVersion: dyncc/v1
            name: d
            model: {path: Qwen/Qwen3-32B, moe: false}
            cluster: {gpu_type: H200}
            pools:
              prefill: {replicas: 4, engine: {max_batch_size: 1}}
              decode: {replicas: 1, tensor_parallel: 4, engine: {max_batch_size: 124}}
            benchmark: {isl: 4000, osl: 500}
            """
        )
    )
    e = commands.estimate(spec)
    # the disagg #1 row of the recorded dense search: 4 x prefill TP1 + 1 x decode TP4 bs124
    _, result = recorded("dense")
    row = result["rows"]["disagg"][0]
    assert (e.mode, e.ttft, e.tpot) == (
        "disagg",
        pytest.approx(row["ttft"], rel=0.01),
        pytest.approx(row["tpot"], rel=0.01),
    )
