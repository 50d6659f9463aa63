"""Version profiles: Dynamo 1.6 (default) and the 2025 stack (0.x) from one spec."""

from __future__ import annotations

import json
import shlex

import pytest
from ruamel.yaml import YAML

from conftest import EXAMPLES, REFERENCE, VALID_EXAMPLES, run_dyncc
from dynamo_parsers import DYNAMO_AVAILABLE, parse_trtllm
from k8s_schemas import dgd_errors

TWENTY_25 = REFERENCE / "dynamo-2025-examples" / "deploy"


def build(spec, out, *extra):
    proc = run_dyncc("build", spec, "-o", out, *extra)
    assert proc.returncode == 0, proc.stderr
    return out


def worker_lines(launch: str) -> list[str]:
    return [l for l in launch.splitlines() if l.startswith("start ") and "dynamo.trtllm" in l]


@pytest.mark.parametrize("example", VALID_EXAMPLES, ids=lambda p: p.name)
def test_every_example_builds_under_both_profiles(example, tmp_path):
    for version in ("1.6.1", "0.5.1"):
        out = build(example, tmp_path / version, "--dynamo-version", version, "-t", "k8s", "-t", "slurm")
        dgd = YAML(typ="safe").load((out / "k8s" / "dynamographdeployment.yaml").read_text())
        assert dgd["apiVersion"] == ("nvidia.com/v1alpha1" if version == "0.5.1" else "nvidia.com/v1beta1")
        assert dgd_errors(dgd) == [], (example, version)


def test_disagg_under_0x_gets_decode_first_and_a_v1alpha1_dgd(tmp_path):
    out = build(EXAMPLES / "disagg.yaml", tmp_path / "old", "--dynamo-version", "0.5.1")
    launch = (out / "local" / "launch.sh").read_text()
    for line in worker_lines(launch):
        assert "--disaggregation-strategy decode_first" in line
    assert "ETCD_ENDPOINTS" in launch and "nats-server" in launch and "DYN_DISCOVERY_BACKEND=file" not in launch
    dgd = YAML(typ="safe").load((out / "k8s" / "dynamographdeployment.yaml").read_text())
    assert dgd["apiVersion"] == "nvidia.com/v1alpha1" and dgd_errors(dgd) == []
    assert "--disaggregation-strategy decode_first" in dgd["spec"]["services"]["TRTLLMDecodeWorker"]["extraPodSpec"]["mainContainer"]["args"][0]
    assert "backend: ucx" not in (out / "local" / "engine" / "prefill.yaml").read_text()  # the spec says NIXL
    assert "backend: nixl" in (out / "local" / "engine" / "prefill.yaml").read_text()     # 2025 spelling


def test_disagg_under_1_6_gets_neither(tmp_path):
    out = build(EXAMPLES / "disagg.yaml", tmp_path / "new")
    launch = (out / "local" / "launch.sh").read_text()
    assert "--disaggregation-strategy" not in launch and "DYN_DISCOVERY_BACKEND=file" in launch
    dgd = YAML(typ="safe").load((out / "k8s" / "dynamographdeployment.yaml").read_text())
    assert dgd["apiVersion"] == "nvidia.com/v1beta1"


def test_decode_first_under_1_6_is_a_coded_error_that_explains(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text((EXAMPLES / "disagg.yaml").read_text() + "router:\n  disaggregation_strategy: decode_first\n")
    proc = run_dyncc("validate", "--format", "json", spec)
    assert proc.returncode == 1
    (error,) = [d for d in json.loads(proc.stdout)["files"][0]["diagnostics"] if d["severity"] == "error"]
    assert error["code"] == "DYN702" and "removed in Dynamo 1.0" in error["message"]
    assert "frontend now drives prefill, then decode" in error["message"] and error["line"] > 1
    assert run_dyncc("build", spec, "--dynamo-version", "0.5.1", "-o", tmp_path / "o").returncode == 0


def test_conditional_disagg_under_0_5_names_the_version_that_has_it(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text((EXAMPLES / "disagg_router.yaml").read_text().replace("  mode: kv\n", "  mode: kv\n  conditional_disagg: true\n"))
    assert run_dyncc("validate", spec).returncode == 0
    proc = run_dyncc("build", spec, "--dynamo-version", "0.5.1", "-o", tmp_path / "o")
    assert proc.returncode == 1 and "DYN703" in proc.stderr and "Dynamo 1.6.1" in proc.stderr


def test_unknown_version_family_and_image_mismatch(tmp_path):
    proc = run_dyncc("build", EXAMPLES / "agg.yaml", "--dynamo-version", "2.0.0", "-o", tmp_path / "o")
    assert proc.returncode == 1 and "DYN701" in proc.stderr
    proc = run_dyncc("build", EXAMPLES / "agg.yaml", "--dynamo-version", "0.5.1", "-o", tmp_path / "o2")
    assert proc.returncode == 0 and "warning DYN704" in proc.stderr


def test_0x_local_scripts_carry_the_2025_flags(tmp_path):
    out = build(EXAMPLES / "disagg_router.yaml", tmp_path / "o", "--dynamo-version", "0.5.1")
    launch = (out / "local" / "launch.sh").read_text()
    prefill = [l for l in worker_lines(launch) if "--disaggregation-mode prefill" in l]
    decode = [l for l in worker_lines(launch) if "--disaggregation-mode decode" in l]
    # KV router: prefill_first, and the events come from the worker the router targets (prefill).
    assert all("--disaggregation-strategy prefill_first --publish-events-and-metrics --migration-limit 3" in l for l in prefill)
    assert all("--publish-events-and-metrics" not in l for l in decode)
    frontend = next(l for l in launch.splitlines() if l.startswith("start frontend"))
    assert "--migration-limit" not in frontend and "--namespace" not in frontend
    agg = build(EXAMPLES / "agg_router.yaml", tmp_path / "a", "--dynamo-version", "0.5.1")
    assert all("--disaggregation-mode prefill_and_decode" in l for l in worker_lines((agg / "local" / "launch.sh").read_text()))


def _summary_2025(dgd: dict) -> dict:
    """Component type, replicas, GPUs, router mode and worker flags of a v1alpha1 DGD."""
    out = {}
    for name, svc in dgd["spec"]["services"].items():
        main = svc["extraPodSpec"]["mainContainer"]
        argv = shlex.split(main["args"][0]) if main.get("command") == ["/bin/sh", "-c"] else main.get("args", [])
        entry = {"type": svc["componentType"], "replicas": svc["replicas"]}
        if svc["componentType"] == "frontend":
            env = {e["name"]: e["value"] for e in svc.get("envs", [])}
            entry["router"] = argv[argv.index("--router-mode") + 1] if "--router-mode" in argv else env.get("DYN_ROUTER_MODE", "round-robin")
        else:
            entry["gpus"] = svc["resources"]["limits"]["gpu"]
            flags = argv[argv.index("dynamo.trtllm") + 1:]
            entry["mode"] = flags[flags.index("--disaggregation-mode") + 1] if "--disaggregation-mode" in flags else "prefill_and_decode"
            entry["strategy"] = flags[flags.index("--disaggregation-strategy") + 1] if "--disaggregation-strategy" in flags else None
            entry["events"] = "--publish-events-and-metrics" in flags
            entry["model"] = flags[flags.index("--model-path") + 1]
        out[entry.get("mode", "frontend")] = entry
    return out


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
        parse_trtllm(argv[argv.index("dynamo.trtllm") + 1:])
