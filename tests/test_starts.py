"""Valid means it starts: every command line of every generated valid spec passes Dynamo 1.6.1's own parsers.

Hypothesis builds specs over the features that shape command lines (topology, replicas, router mode and
options, KV events, conditional disaggregation, migration, KVBM, EPD, request plane, engine limits, the
mock engine). Each spec dyncc accepts is compiled for the local target, and its frontend, TensorRT-LLM
worker and mock-engine command lines — the words launch.sh runs — go through Dynamo 1.6.1's parsers with
deprecation warnings as errors, then through the cross-flag checks Dynamo makes when the processes
start and meet (found in Dynamo's source: FrontendConfig.validate(), the TensorRT-LLM backend's
requirements for conditional disaggregation, the EPD wiring of its launch scripts). A small sample of
the mock-engine specs really starts (`dyncc up --smoke`). The figures are printed in the terminal summary.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import STARTS_STATS, free_port_block, run_dyncc
from dynamo_parsers import DYNAMO_AVAILABLE, ArgvRejected, parse_frontend, parse_mocker, parse_trtllm
from hypothesis import given, settings
from hypothesis import strategies as st

from dyncc.compiler import compile_spec
from dyncc.deployment import load_spec_text
from dyncc.diagnostics import DiagnosticError
from dyncc.targets.local.impl import frontend_command, worker_command

pytestmark = pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")

MIN_VALID_SPECS = 500
SAMPLE_TO_START = 3
STARTED_SAMPLE: list[dict[str, Any]] = []  # mock-engine specs of distinct topologies, in generation order


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    runtime = draw(st.sampled_from(["trtllm", "mocker"]))
    topology = draw(st.sampled_from(["agg", "disagg", "epd"] if runtime == "trtllm" else ["agg", "disagg"]))
    roles = {"agg": ["agg"], "disagg": ["prefill", "decode"], "epd": ["encode", "prefill", "decode"]}[topology]
    block = draw(st.sampled_from([16, 32, 64]))
    pools = {}
    for role in roles:
        engine: dict[str, Any] = {"tokens_per_block": block}
        if draw(st.booleans()):
            engine["max_batch_size"] = draw(st.integers(1, 256))
        if draw(st.booleans()):
            engine["max_num_tokens"] = draw(st.integers(256, 16384))
        if draw(st.booleans()):
            engine["max_seq_len"] = draw(st.integers(1024, 32768))
        pools[role] = {
            "replicas": draw(st.integers(1, 2)),
            "tensor_parallel": draw(st.sampled_from([1, 2])),
            "engine": engine,
        }
    spec: dict[str, Any] = {
        "apiVersion": "dyncc/v1",
        "name": f"starts-{topology}",
        "model": {"path": "Qwen/Qwen3-0.6B", "moe": False},
        "worker_runtime": runtime,
        "mocker_speedup_ratio": 0.0,
        "pools": pools,
        "namespace": draw(st.sampled_from(["dynamo", "team-a"])),
    }
    router = {"mode": draw(st.sampled_from(["round-robin", "random", "kv", "kv", "least-loaded"]))}
    if router["mode"] == "kv":
        router["kv_events"] = draw(st.booleans())
        if topology != "agg" and draw(st.booleans()):
            router["conditional_disagg"] = True
        for option, values in (("temperature", st.floats(0, 2)), ("overlap_score_credit", st.floats(0, 4))):
            if draw(st.integers(0, 9)) == 0:  # rare; written into the router policy file (1.6.1)
                router[option] = draw(values)
        if draw(st.integers(0, 9)) == 0:
            router["replica_sync"] = True
    spec["router"] = router
    if draw(st.booleans()):
        spec["migration"] = {"limit": draw(st.integers(0, 8))}
        if draw(st.booleans()):
            spec["migration"]["max_seq_len"] = draw(st.integers(1024, 65536))
    if runtime == "trtllm" and draw(st.integers(0, 4)) == 0:
        spec["kvbm"] = {"enabled": True}
    if draw(st.integers(0, 3)) == 0:
        spec["request_plane"] = draw(st.sampled_from(["tcp", "nats"]))
    return spec


def _module_argv(command: list[object]) -> tuple[str, list[str]]:
    """(python module, its argv) from a launch-script command: `[env VAR=.. ...] "$PYTHON" -m MODULE ARGS`."""
    words = [str(w) for w in command]
    at = words.index("-m")
    return words[at + 1], ["MODEL_DIR" if w == '"$HERE/model"' else w for w in words[at + 2 :]]


def _engine_file(argv: list[str]) -> list[str]:
    # The engine YAML's path is a shell expression in launch.sh; the parser only keeps the string.
    return [w.replace('"$HERE/engine/', "engine/").rstrip('"') if isinstance(w, str) else w for w in argv]


def _flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def check_command_lines(spec: dict[str, Any]) -> int:
    """Parse every command line of the compiled spec with Dynamo's parsers; returns how many were checked."""
    compilation = compile_spec(load_spec_text(yaml.safe_dump(spec)))
    plan, settings_ = compilation.plan, compilation.loaded.spec.local
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as engine_dir:
        warnings.simplefilter("error", FutureWarning)  # Dynamo's deprecation mechanism: dyncc writes no such flag
        _, frontend_argv = _module_argv(frontend_command(plan, settings_))
        for name, text in plan.engine_files().items():  # the parser reads the router policy file
            Path(engine_dir, name).write_text(text)
        frontend_argv = [
            engine_dir + w[len('"$HERE/engine') : -1] if w.startswith('"$HERE/engine') else w for w in frontend_argv
        ]
        frontend = parse_frontend(frontend_argv)
        workers = []
        for pool, worker in plan.workers:
            module, argv = _module_argv(worker_command(plan, settings_, pool, worker))
            argv = _engine_file(argv)
            parsed = parse_mocker(argv) if module == "dynamo.mocker" else parse_trtllm(argv)
            workers.append((pool.role, module, argv, parsed))
    _cross_flag_checks(spec, frontend_argv, frontend, workers)
    return 1 + len(workers)


def _cross_flag_checks(spec: dict[str, Any], frontend_argv: list[str], frontend: Any, workers: list) -> None:
    """What Dynamo checks (or needs) when the processes start and meet, beyond each parser."""
    kv_router = _flag(frontend_argv, "--router-mode") == "kv"
    events = kv_router and "--no-router-kv-events" not in frontend_argv
    for role, module, argv, _ in workers:
        if kv_router:  # the router hashes prefixes per block: one block size everywhere
            size = _flag(argv, "--block-size" if module == "dynamo.mocker" else "--kv-block-size")
            assert size == _flag(frontend_argv, "--kv-cache-block-size"), (role, argv)
        if module == "dynamo.trtllm" and events and role in ("agg", "prefill"):
            assert "--publish-kv-events" in argv, (role, argv)  # the KV router's events
        if module == "dynamo.trtllm" and "--router-conditional-disagg" in frontend_argv and role == "decode":
            assert "--publish-kv-events" in argv, argv  # Dynamo's TRT-LLM backend needs them on decode too
        if "--request-plane" in frontend_argv or "--request-plane" in argv:
            assert _flag(argv, "--request-plane") == _flag(frontend_argv, "--request-plane"), argv
    roles = {role for role, *_ in workers}
    if "encode" in roles:  # EPD as Dynamo's launch script wires it
        encode_endpoint = f"dyn://{spec['namespace']}.encode.generate"
        for role, _, argv, parsed in workers:
            assert _flag(argv, "--modality") == "multimodal", (role, argv)
            if role == "prefill":
                assert _flag(argv, "--encode-endpoint") == encode_endpoint, argv
            if role == "encode":
                served = f"dyn://{parsed.namespace}.{parsed.component}.{parsed.endpoint}"  # where it serves
                assert served == encode_endpoint, served
    if "--router-conditional-disagg" in frontend_argv:
        assert frontend.use_kv_events, "Dynamo refuses conditional disaggregation without KV events"


def _keep_for_starting(spec: dict[str, Any]) -> None:
    if spec["worker_runtime"] != "mocker" or len(STARTED_SAMPLE) >= SAMPLE_TO_START:
        return
    shape = (tuple(spec["pools"]), spec["router"]["mode"] == "kv", bool(spec["router"].get("conditional_disagg")))
    if shape not in {
        (tuple(s["pools"]), s["router"]["mode"] == "kv", bool(s["router"].get("conditional_disagg")))
        for s in STARTED_SAMPLE
    }:
        STARTED_SAMPLE.append(spec)


@pytest.mark.slow  # ~15 s on 2 cores
def test_every_command_line_of_500_generated_valid_specs_passes_dynamos_parsers():
    rejected: list[str] = []

    @settings(max_examples=700)
    @given(specs())
    def one(spec: dict[str, Any]) -> None:
        STARTS_STATS["generated"] += 1
        try:
            checked = check_command_lines(spec)
        except DiagnosticError as exc:
            rejected.append(", ".join(sorted({d.code for d in exc.diagnostics if d.is_error})))
            return
        except ArgvRejected as exc:
            raise AssertionError(f"Dynamo 1.6.1 rejects a command line of a valid spec: {exc}\n{spec}") from None
        STARTS_STATS["valid"] += 1
        STARTS_STATS["command_lines"] += checked
        _keep_for_starting(spec)

    one()
    assert STARTS_STATS["valid"] >= MIN_VALID_SPECS, (STARTS_STATS, sorted(set(rejected)))


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("index", range(SAMPLE_TO_START))
def test_a_sample_of_the_generated_specs_really_starts(tmp_path, index):
    if not STARTED_SAMPLE:  # run alone: pick the sample as the property test does
        test_every_command_line_of_500_generated_valid_specs_passes_dynamos_parsers()
    if index >= len(STARTED_SAMPLE):
        pytest.skip(f"the property test found {len(STARTED_SAMPLE)} distinct mock-engine topologies")
    spec = dict(STARTED_SAMPLE[index])
    base = free_port_block(16)
    spec["local"] = {"http_port": base, "system_port_base": base + 1, "ready_timeout_s": 120}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    proc = run_dyncc("up", path, "--smoke", "-o", tmp_path / "out", timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "smoke: 2 passed, 0 failed" in proc.stdout
    STARTS_STATS["started"] += 1


def conditional_disagg_spec(kv_events: bool, base: int) -> dict[str, Any]:
    return {
        "apiVersion": "dyncc/v1",
        "name": "conditional-disagg",
        "model": {"path": "Qwen/Qwen3-0.6B", "moe": False},
        "worker_runtime": "mocker",
        "mocker_speedup_ratio": 0.0,
        "router": {"mode": "kv", "conditional_disagg": True, "kv_events": kv_events},
        "pools": {"prefill": {}, "decode": {}},
        "local": {"http_port": base, "system_port_base": base + 1, "ready_timeout_s": 120},
    }


def test_conditional_disagg_with_approximate_routing_is_refused_with_a_code(tmp_path):
    """Dynamo's frontend would exit at start-up (`--router-conditional-disagg requires --router-kv-events`)."""
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(conditional_disagg_spec(False, 20000), sort_keys=False))
    proc = run_dyncc("validate", path)
    assert proc.returncode == 1 and "error DYN305" in proc.stderr + proc.stdout, proc.stdout + proc.stderr
    assert "at router.kv_events" in proc.stdout + proc.stderr


@pytest.mark.e2e
@pytest.mark.slow
def test_conditional_disagg_with_kv_events_starts_and_serves(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(conditional_disagg_spec(True, free_port_block(16)), sort_keys=False))
    proc = run_dyncc("up", path, "--smoke", "-o", tmp_path / "out", timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "smoke: 2 passed, 0 failed" in proc.stdout
    launch = (tmp_path / "out" / "up-conditional-disagg" / "launch.sh").read_text()
    assert "--router-conditional-disagg" in launch
