"""Version profiles: Dynamo 1.6 (default) and the 2025 stack (0.x) from one spec."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from command_lines import plan_worker_args
from conftest import DYNAMO_05, EXAMPLES, REFERENCE, VALID_EXAMPLES, cli, parse_with_dynamo_0_5_1
from dynamo_parsers import DYNAMO_AVAILABLE, parse_trtllm
from k8s_schemas import CRD_ENTRY, dgd_errors
from ruamel.yaml import YAML

TWENTY_25 = REFERENCE / "dynamo-2025-examples" / "deploy"


def build(spec, out, *extra):
    proc = cli("build", spec, "-o", out, *extra)
    assert proc.returncode == 0, proc.stderr
    return out


def worker_lines(launch: str) -> list[str]:
    return [l for l in launch.splitlines() if "-m dynamo.trtllm" in l]


def built_dgd(example: Path, out: Path, version: str) -> dict:
    out = build(example, out / version, "--dynamo-version", version, "-t", "k8s", "-t", "slurm")
    return YAML(typ="safe").load((out / "k8s" / "dynamographdeployment.yaml").read_text())


@pytest.mark.parametrize("example", VALID_EXAMPLES, ids=lambda p: p.name)
def test_every_example_builds_under_both_profiles(example, tmp_path):
    for version in ("1.6.1", "0.5.1"):
        dgd = built_dgd(example, tmp_path, version)
        assert dgd["apiVersion"] == ("nvidia.com/v1alpha1" if version == "0.5.1" else "nvidia.com/v1beta1")


@pytest.mark.reference(CRD_ENTRY)
@pytest.mark.parametrize("example", VALID_EXAMPLES, ids=lambda p: p.name)
def test_every_dgd_under_both_profiles_passes_the_strict_crd_schema(example, tmp_path):
    for version in ("1.6.1", "0.5.1"):
        assert dgd_errors(built_dgd(example, tmp_path, version)) == [], (example, version)


def test_disagg_under_0x_gets_decode_first_and_a_v1alpha1_dgd(tmp_path):
    out = build(EXAMPLES / "disagg.yaml", tmp_path / "old", "--dynamo-version", "0.5.1")
    launch = (out / "local" / "launch.sh").read_text()
    for line in worker_lines(launch):
        assert "--disaggregation-strategy decode_first" in line
    assert "ETCD_ENDPOINTS" in launch and "nats-server" in launch and "DYN_DISCOVERY_BACKEND=file" not in launch
    dgd = YAML(typ="safe").load((out / "k8s" / "dynamographdeployment.yaml").read_text())
    assert dgd["apiVersion"] == "nvidia.com/v1alpha1"  # its schema: test_every_dgd_under_both_profiles_...
    assert (
        "--disaggregation-strategy decode_first"
        in dgd["spec"]["services"]["TRTLLMDecodeWorker"]["extraPodSpec"]["mainContainer"]["args"][0]
    )
    engine = (out / "local" / "engine" / "prefill.yaml").read_text()
    assert "backend: UCX" not in engine and "backend: ucx" not in engine  # the spec says NIXL
    # TensorRT-LLM 1.1.0rc5 (what 0.5.1 pins) takes the upper-case Literal only; `nixl` is refused there.
    assert "backend: NIXL" in engine and engine.startswith("# TensorRT-LLM 1.1.0rc5 engine config")


def test_disagg_under_1_6_gets_neither(tmp_path):
    out = build(EXAMPLES / "disagg.yaml", tmp_path / "new")
    launch = (out / "local" / "launch.sh").read_text()
    assert "--disaggregation-strategy" not in launch and "DYN_DISCOVERY_BACKEND=file" in launch
    dgd = YAML(typ="safe").load((out / "k8s" / "dynamographdeployment.yaml").read_text())
    assert dgd["apiVersion"] == "nvidia.com/v1beta1"


def test_decode_first_under_1_6_is_a_coded_error_that_explains(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text((EXAMPLES / "disagg.yaml").read_text() + "router:\n  disaggregation_strategy: decode_first\n")
    proc = cli("validate", "--format", "json", spec)
    assert proc.returncode == 1
    (error,) = [d for d in json.loads(proc.stdout)["files"][0]["diagnostics"] if d["severity"] == "error"]
    assert error["code"] == "DYN702" and "Dynamo 0.6.1 was the last release with it" in error["message"]
    assert "frontend now drives prefill, then decode" in error["message"] and error["line"] > 1
    assert cli("build", spec, "--dynamo-version", "0.5.1", "-o", tmp_path / "o").returncode == 0


def test_conditional_disagg_under_0_5_names_the_version_that_has_it(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        (EXAMPLES / "disagg_router.yaml")
        .read_text()
        .replace("  mode: kv\n", "  mode: kv\n  conditional_disagg: true\n")
    )
    assert cli("validate", spec).returncode == 0
    proc = cli("build", spec, "--dynamo-version", "0.5.1", "-o", tmp_path / "o")
    assert proc.returncode == 1 and "DYN703" in proc.stderr and "it came with Dynamo 1.5.0" in proc.stderr


def test_unknown_version_family_and_image_mismatch(tmp_path):
    proc = cli("build", EXAMPLES / "agg.yaml", "--dynamo-version", "2.0.0", "-o", tmp_path / "o")
    assert proc.returncode == 1 and "DYN701" in proc.stderr
    proc = cli("build", EXAMPLES / "agg.yaml", "--dynamo-version", "0.5.1", "-o", tmp_path / "o2")
    assert proc.returncode == 0 and "warning DYN704" in proc.stderr


def test_0x_local_scripts_carry_the_2025_flags(tmp_path):
    out = build(EXAMPLES / "disagg_router.yaml", tmp_path / "o", "--dynamo-version", "0.5.1")
    launch = (out / "local" / "launch.sh").read_text()
    prefill = [l for l in worker_lines(launch) if "--disaggregation-mode prefill" in l]
    decode = [l for l in worker_lines(launch) if "--disaggregation-mode decode" in l]
    # KV router: prefill_first, and the events come from the worker the router targets (prefill).
    assert all(
        "--disaggregation-strategy prefill_first --publish-events-and-metrics --migration-limit 3" in l for l in prefill
    )
    assert all("--publish-events-and-metrics" not in l for l in decode)
    frontend = next(l for l in launch.splitlines() if l.startswith("start frontend"))
    assert "--migration-limit" not in frontend
    agg = build(EXAMPLES / "agg_router.yaml", tmp_path / "a", "--dynamo-version", "0.5.1")
    assert all(
        "--disaggregation-mode prefill_and_decode" in l for l in worker_lines((agg / "local" / "launch.sh").read_text())
    )


def _summary_2025(dgd: dict) -> dict:
    """Component type, replicas, GPUs, router mode and worker flags of a v1alpha1 DGD."""
    out = {}
    for _name, svc in dgd["spec"]["services"].items():
        main = svc["extraPodSpec"]["mainContainer"]
        argv = shlex.split(main["args"][0]) if main.get("command") == ["/bin/sh", "-c"] else main.get("args", [])
        entry = {"type": svc["componentType"], "replicas": svc["replicas"]}
        if svc["componentType"] == "frontend":
            env = {e["name"]: e["value"] for e in svc.get("envs", [])}
            entry["router"] = (
                argv[argv.index("--router-mode") + 1]
                if "--router-mode" in argv
                else env.get("DYN_ROUTER_MODE", "round-robin")
            )
        else:
            entry["gpus"] = svc["resources"]["limits"]["gpu"]
            flags = argv[argv.index("dynamo.trtllm") + 1 :]
            entry["mode"] = (
                flags[flags.index("--disaggregation-mode") + 1]
                if "--disaggregation-mode" in flags
                else "prefill_and_decode"
            )
            entry["strategy"] = (
                flags[flags.index("--disaggregation-strategy") + 1] if "--disaggregation-strategy" in flags else None
            )
            entry["events"] = "--publish-events-and-metrics" in flags
            entry["model"] = flags[flags.index("--model-path") + 1]
        out[entry.get("mode", "frontend")] = entry
    return out


@pytest.mark.reference("dynamo-2025-examples/deploy")
@pytest.mark.parametrize("name", ["agg", "agg_router", "disagg", "disagg_router"])
def test_0x_manifests_match_the_2025_examples_field_by_field(name, tmp_path):
    spec = EXAMPLES / f"{name}.yaml"
    if name == "disagg_router":
        # The 2025 example ran 2 prefill workers and 1 decode worker (the 1.6 one runs 2 + 2).
        yaml = YAML()
        data = yaml.load(spec.read_text())
        data["pools"]["decode"]["replicas"] = 1
        spec = tmp_path / "disagg_router_2025.yaml"
        with spec.open("w") as f:
            yaml.dump(data, f)
    out = build(spec, tmp_path / "o", "--dynamo-version", "0.5.1", "-t", "k8s")
    ours = YAML(typ="safe").load((out / "k8s" / "dynamographdeployment.yaml").read_text())
    theirs = YAML(typ="safe").load((TWENTY_25 / f"{name}.yaml").read_text())
    assert _summary_2025(ours) == _summary_2025(theirs)


@pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")
def test_1_6_parser_rejects_what_the_0x_profile_writes(tmp_path):
    """The profiles really differ where it matters: Dynamo 1.6's own parser refuses 0.x worker flags."""
    out = build(EXAMPLES / "disagg_router.yaml", tmp_path / "o", "--dynamo-version", "0.5.1", "-t", "local")
    line = next(l for l in worker_lines((out / "local" / "launch.sh").read_text()) if "prefill" in l)
    argv = shlex.split(line.replace('"$HERE', '"/h').replace('"$PYTHON"', "python3"))
    from dynamo_parsers import ArgvRejected

    with pytest.raises(ArgvRejected):
        parse_trtllm(argv[argv.index("dynamo.trtllm") + 1 :])


@pytest.mark.parametrize("example", VALID_EXAMPLES, ids=lambda p: p.name)
def test_0x_command_lines_parse_with_dynamo_0_5_1s_own_parsers(example):
    from dyncc.api import with_dynamo_version
    from dyncc.compiler import compile_spec
    from dyncc.deployment import load_spec
    from dyncc.targets.local import frontend_command

    loaded = with_dynamo_version(load_spec(example), "0.5.1")
    plan = compile_spec(loaded).plan
    items = [{"kind": "frontend", "argv": [str(a) for a in frontend_command(plan, loaded.spec.local)[3:]]}]
    items += [
        {"kind": "trtllm", "argv": plan_worker_args(plan, pool, model=plan.model_path, engine_dir="")}
        for pool, _ in plan.workers
    ]
    results = parse_with_dynamo_0_5_1(items)
    assert all(r["ok"] for r in results), [r["error"] for r in results if not r["ok"]]
    assert results[0]["router_mode"] == plan.frontend.router_mode
    for (pool, _), parsed in zip(plan.workers, results[1:]):
        assert parsed["disaggregation_mode"] == pool.disaggregation_mode
        assert parsed["publish_events_and_metrics"] == pool.publish_kv_events
        flags = list(pool.flags)
        expected_migration = int(flags[flags.index("--migration-limit") + 1]) if "--migration-limit" in flags else 0
        assert parsed["migration_limit"] == expected_migration
        if pool.role in ("prefill", "decode"):
            assert parsed["disaggregation_strategy"] in ("decode_first", "prefill_first")
        # 0.5.1 builds a BuildConfig from these flags and TRT-LLM 1.1.0rc5 copies it over the engine YAML's
        # top-level limits: the flags must say what the YAML says (absent from the YAML: TRT-LLM's default).
        defaults = {"max_batch_size": 2048, "max_num_tokens": 8192, "max_seq_len": None}
        for key, default in defaults.items():
            assert parsed[key] == pool.engine_config.get(key, default), (example.name, pool.role, key)


def test_0_5_1_parsers_reject_what_the_1_6_profile_writes():
    """The check can fail: 1.6's flags are refused by 0.5.1's parsers."""
    results = parse_with_dynamo_0_5_1(
        [
            {"kind": "trtllm", "argv": ["--model-path", "m", "--namespace", "dynamo"]},
            {"kind": "frontend", "argv": ["--migration-limit", "3"]},
            {"kind": "trtllm", "argv": ["--model-path", "m", "--disaggregation-mode", "agg"]},
        ]
    )
    assert [r["ok"] for r in results] == [False, False, False]


@pytest.mark.e2e
@pytest.mark.slow
def test_0x_agg_router_runs_for_real_on_dynamo_0_5_1(tmp_path):
    """The 0.x profile's launch script on Dynamo 0.5.1 itself: etcd and NATS started by the script,
    0.5.1's frontend and mock engine, a real streaming chat completion, then a clean stop."""
    import shutil
    import signal
    import urllib.request

    from conftest import free_port_block, startup_report

    from dyncc.tools.lifecycle.run import Deployment, chat_completion, streaming_chat_completion

    assert shutil.which("etcd") and shutil.which("nats-server"), "scripts/setup.sh installs etcd-server and nats-server"
    base = free_port_block(8)
    yaml = YAML()
    data = yaml.load((EXAMPLES / "agg_router.yaml").read_text())
    data["local"] = {"http_port": base, "system_port_base": base + 1, "ready_timeout_s": 90}
    spec = tmp_path / "agg_router.yaml"
    with spec.open("w") as f:
        yaml.dump(data, f)
    build(spec, tmp_path / "out", "-t", "local", "--engine", "mocker", "--dynamo-version", "0.5.1")
    deployment = Deployment(tmp_path / "out" / "local" / "launch.sh", env={"DYNCC_PYTHON": str(DYNAMO_05)})
    try:
        assert deployment.wait_ready(120), startup_report(deployment)
        # 0.5.1's frontend can miss workers registering while it starts watching etcd (then it never lists
        # the model: 1 start in 25 here): the script starts it once both workers serve.
        started = [line.split()[2] for line in deployment.lines if line.startswith("dyncc: started ")]
        assert started == ["etcd", "nats", "agg-0", "agg-1", "frontend"], deployment.lines
        with urllib.request.urlopen(deployment.url + "/v1/models", timeout=5) as r:
            assert "Qwen/Qwen3-0.6B" in r.read().decode()
        # ignore_eos (the helpers' default, and the root-level field bench.sh sends) is taken by 0.5.1 too:
        # every reply is max_tokens long. Without it, 0.5.1's mock engine answers HTTP 500 ("Stream ended
        # before generation completed") whenever it samples its end-of-sequence token (seen 1 run in 11).
        reply = chat_completion(deployment.url, "Qwen/Qwen3-0.6B", "hello from 2025", max_tokens=8)
        assert reply["choices"][0]["message"]["content"]  # 0.5.1 gives no usage without streaming
        chunks = streaming_chat_completion(deployment.url, "Qwen/Qwen3-0.6B", "stream it", max_tokens=64)
        assert next(c["usage"] for c in reversed(chunks) if c.get("usage"))["completion_tokens"] == 64
    finally:
        status = deployment.stop()
    assert status == 128 + signal.SIGTERM


def test_0_5_1_mock_engine_has_no_disaggregation_mode(tmp_path):
    proc = cli(
        "build",
        EXAMPLES / "disagg.yaml",
        "-t",
        "local",
        "--engine",
        "mocker",
        "--dynamo-version",
        "0.5.1",
        "-o",
        tmp_path,
    )
    assert proc.returncode == 1 and "DYN503" in proc.stderr and "0.5.1" in proc.stderr
