"""The k8s target delivers what the spec says (issue 28): model paths and the Eagle draft through the model
cache, the encode endpoint in the operator's Dynamo namespace, image pull policy in every container, env the
operator owns judged by its value, literal secrets refused, and every per-component setting valid without
its k8s.defaults counterpart. Outputs are checked against the strict CRD schema, kubernetes-validate and
Dynamo 1.6.1's own argument parser."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, REFERENCE, assert_no_traceback, cli
from dynamo_parsers import DYNAMO_AVAILABLE, parse_trtllm
from k8s_schemas import core_errors, dgd_errors
from ruamel.yaml import YAML

from dyncc.targets.k8s import crd_schema
from dyncc.targets.k8s.settings import PodSettings
from dyncc.yaml_text import dump_yaml

needs_dynamo = pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")


def spec_file(tmp_path: Path, base: Path, **sections: Any) -> Path:
    data = YAML(typ="safe").load(base.read_text())
    for key, value in sections.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
    path = tmp_path / f"spec-{len(list(tmp_path.glob('spec-*.yaml')))}.yaml"
    path.write_text(dump_yaml(data))
    return path


def build(spec: Path, out: Path, *extra: str) -> dict[str, dict]:
    proc = cli("build", spec, "-t", "k8s", "-o", out, *extra)
    assert proc.returncode == 0, proc.stderr
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted((out / "k8s").glob("*.yaml"))}


def components(dgd: dict) -> dict[str, dict]:
    return {c["name"]: c for c in dgd["spec"]["components"]}


def main_of(component: dict) -> dict:
    (main,) = component["podTemplate"]["spec"]["containers"]
    return main


def arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def check_dgd(dgd: dict) -> None:
    assert crd_schema.errors(dgd) == []
    if REFERENCE.exists():
        assert dgd_errors(dgd) == []


# --- model delivery --------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["v1beta1", "v1alpha1"])
def test_an_absolute_model_path_is_served_as_is_with_no_download_job(tmp_path, api):
    model = {"path": "/model-cache/deepseek-r1-fp4", "moe": False}
    cache = {"mount_path": "/model-cache", "size": "750Gi"}  # download: true is the default
    docs = build(
        spec_file(tmp_path, EXAMPLES / "agg.yaml", model=model, k8s={"model_cache": cache, "api_version": api}),
        tmp_path / "o",
    )
    assert "model-download-job.yaml" not in docs and "pvc.yaml" in docs
    assert "model-download-job.yaml" not in docs["kustomization.yaml"]["resources"]
    dgd = docs["dynamographdeployment.yaml"]
    check_dgd(dgd)
    if api == "v1beta1":
        pod = components(dgd)["worker"]["podTemplate"]["spec"]
        main = main_of(components(dgd)["worker"])
    else:
        pod = dgd["spec"]["services"]["TRTLLMWorker"]["extraPodSpec"]
        main = pod["mainContainer"]
    assert "initContainers" not in pod  # nothing to wait for
    assert {"name": "model-cache", "mountPath": "/model-cache"} in main["volumeMounts"]
    argv = main["args"][0].split() if main["command"] == ["/bin/sh", "-c"] else main["args"]
    assert arg(argv, "--model") == "/model-cache/deepseek-r1-fp4"
    if DYNAMO_AVAILABLE and api == "v1beta1":
        assert parse_trtllm(main["args"]).model == "/model-cache/deepseek-r1-fp4"


def test_a_revision_of_an_absolute_model_path_is_refused(tmp_path):
    model = {"path": "/model-cache/deepseek-r1-fp4", "revision": "v2", "moe": False}
    proc = cli("build", spec_file(tmp_path, EXAMPLES / "agg.yaml", model=model), "-t", "k8s", "-o", tmp_path / "o")
    assert proc.returncode == 1 and "error DYN547" in proc.stderr and "served as is" in proc.stderr


def _run_download(docs: dict[str, dict], tmp_path: Path) -> list[str]:
    """The Job's script and the workers' wait script, run for real with stand-ins for pip and hf."""
    container = docs["model-download-job.yaml"]["spec"]["template"]["spec"]["containers"][0]
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    (bin_dir / "pip").write_text(f'#!/bin/sh\necho pip "$@" >> {calls}\n')
    hf = f'#!/bin/sh\necho hf "$@" >> {calls}\nwhile [ "$1" != --local-dir ]; do shift; done\nmkdir -p "$2"\n'
    (bin_dir / "hf").write_text(hf)
    for tool in ("pip", "hf"):
        (bin_dir / tool).chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    for _ in range(2):  # the second run (a re-created Job) finds every marker and downloads nothing
        run = subprocess.run([*container["command"], *container["args"]], env=env, capture_output=True, timeout=30)
        assert run.returncode == 0, run.stderr
    return calls.read_text().splitlines()


@pytest.mark.parametrize("version, key", [("1.6.1", "speculative_model"), ("0.5.1", "speculative_model_dir")])
def test_the_download_job_fetches_the_eagle_draft_model_too(tmp_path, version, key):
    cache_dir = tmp_path / "cache"
    spec = spec_file(tmp_path, EXAMPLES / "llama4_eagle.yaml", k8s={"model_cache": {"mount_path": str(cache_dir)}})
    docs = build(spec, tmp_path / "o", "--dynamo-version", version)
    target = f"{cache_dir}/hub-models/meta-llama--Llama-4-Maverick-17B-128E-Instruct"
    draft = f"{cache_dir}/hub-models/nvidia--Llama-4-Maverick-17B-128E-Eagle3"
    log = _run_download(docs, tmp_path)
    downloads = [line for line in log if line.startswith("hf ")]
    assert downloads == [
        f"hf download meta-llama/Llama-4-Maverick-17B-128E-Instruct --local-dir {target}",
        f"hf download nvidia/Llama-4-Maverick-17B-128E-Eagle3 --local-dir {draft}",
    ]
    # the workers' engine config names the downloaded draft, not the hub id they could not reach offline
    engine = yaml.safe_load(docs["configmap.yaml"]["data"]["agg.yaml"])
    assert engine["speculative_config"][key] == draft
    dgd = docs["dynamographdeployment.yaml"]
    if "components" in dgd["spec"]:
        worker = components(dgd)["worker"]
        wait = worker["podTemplate"]["spec"]["initContainers"][0]
        assert arg(main_of(worker)["args"], "--model") == target
        check_dgd(dgd)
    else:
        wait = dgd["spec"]["services"]["TRTLLMWorker"]["extraPodSpec"]["initContainers"][0]
    assert subprocess.run([*wait["command"], *wait["args"]], timeout=30).returncode == 0  # both markers there
    assert core_errors(docs["model-download-job.yaml"]) == []


def test_with_an_absolute_model_only_the_draft_is_downloaded(tmp_path):
    model = {"path": "/model-cache/llama4", "moe": True, "num_experts": 128}
    spec = spec_file(
        tmp_path, EXAMPLES / "llama4_eagle.yaml", model=model, k8s={"model_cache": {"mount_path": "/model-cache"}}
    )
    docs = build(spec, tmp_path / "o")
    script = docs["model-download-job.yaml"]["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert "hf download nvidia/Llama-4-Maverick-17B-128E-Eagle3 " in script and "llama4 " not in script
    worker = components(docs["dynamographdeployment.yaml"])["worker"]
    assert arg(main_of(worker)["args"], "--model") == "/model-cache/llama4"
    assert "Eagle3/.dyncc-download-complete" in worker["podTemplate"]["spec"]["initContainers"][0]["args"][0]


def test_without_a_download_the_engine_config_is_every_targets(tmp_path):
    docs = build(spec_file(tmp_path, EXAMPLES / "llama4_eagle.yaml"), tmp_path / "o")
    engine = yaml.safe_load(docs["configmap.yaml"]["data"]["agg.yaml"])
    assert engine["speculative_config"]["speculative_model"] == "nvidia/Llama-4-Maverick-17B-128E-Eagle3"


# --- EPD: the encode endpoint in the operator's namespace ---------------------------------------------------

EPD = {"encode": {}, "prefill": {}, "decode": {}}


def kubelet_expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) substitution in command and args (a reference to an undefined variable stays)."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), text)


@needs_dynamo
def test_epd_prefill_calls_the_encoder_in_the_operators_namespace(tmp_path, monkeypatch):
    spec = spec_file(tmp_path, EXAMPLES / "disagg.yaml", pools=EPD, k8s={"namespace": "llm"})
    dgd = build(spec, tmp_path / "o")["dynamographdeployment.yaml"]
    check_dgd(dgd)
    named = components(dgd)
    operator_env = {"DYN_NAMESPACE": f"llm-{dgd['metadata']['name']}"}  # what the operator injects
    monkeypatch.setenv("DYN_NAMESPACE", operator_env["DYN_NAMESPACE"])
    prefill_args = [kubelet_expand(a, operator_env) for a in main_of(named["prefill"])["args"]]
    prefill = parse_trtllm(prefill_args)
    encoder = parse_trtllm(main_of(named["encode"])["args"])
    assert prefill.encode_endpoint == f"dyn://{encoder.namespace}.{encoder.component}.{encoder.endpoint}"
    assert prefill.encode_endpoint == f"dyn://llm-{dgd['metadata']['name']}.encode.generate"


def test_epd_on_v1alpha1_takes_the_namespace_from_the_pod_too(tmp_path):
    spec = spec_file(tmp_path, EXAMPLES / "disagg.yaml", pools=EPD, k8s={"api_version": "v1alpha1"})
    dgd = build(spec, tmp_path / "o", "--dynamo-version", "0.5.1")["dynamographdeployment.yaml"]
    prefill = dgd["spec"]["services"]["TRTLLMPrefillWorker"]["extraPodSpec"]["mainContainer"]["args"][0]
    assert "--encode-endpoint 'dyn://$(DYN_NAMESPACE).tensorrt_llm_encode.generate'" in prefill
    local = tmp_path / "local"
    assert cli("build", spec, "-t", "local", "-o", local).returncode == 0  # other targets keep the spec's namespace
    assert "--encode-endpoint dyn://dynamo.encode.generate" in (local / "local" / "launch.sh").read_text()


# --- imagePullPolicy ---------------------------------------------------------------------------------------


def _containers(node: Any) -> list[dict]:
    if isinstance(node, dict):
        found = [node] if "image" in node and ("name" in node or "command" in node) else []
        return found + [c for v in node.values() for c in _containers(v)]
    if isinstance(node, list):
        return [c for v in node for c in _containers(v)]
    return []


@pytest.mark.parametrize("api", ["v1beta1", "v1alpha1"])
def test_image_pull_policy_is_written_into_every_container(tmp_path, api):
    k8s = {"image_pull_policy": "IfNotPresent", "api_version": api, "model_cache": {}}
    spec = spec_file(tmp_path, EXAMPLES / "disagg.yaml", k8s=k8s, benchmark={"concurrency": [1]})
    docs = build(spec, tmp_path / "o")
    containers = [c for doc in docs.values() for c in _containers(doc)]
    assert len(containers) >= 7  # frontend, prefill, decode (+ their init containers), download, benchmark
    assert all(c["imagePullPolicy"] == "IfNotPresent" for c in containers), containers
    check_dgd(docs["dynamographdeployment.yaml"])
    for name in ("model-download-job.yaml", "benchmark-job.yaml"):
        assert core_errors(docs[name]) == [], name


def test_an_unknown_image_pull_policy_is_refused_at_its_line(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text((EXAMPLES / "agg.yaml").read_text() + "k8s:\n  image_pull_policy: Sometimes\n")
    proc = cli("validate", spec)
    assert proc.returncode == 1 and f"{spec}:" in proc.stdout + proc.stderr and "Sometimes" in proc.stdout + proc.stderr
    default = build(spec_file(tmp_path, EXAMPLES / "agg.yaml"), tmp_path / "d")
    assert "imagePullPolicy" not in json.dumps(default)  # unset: Kubernetes' own default applies


# --- a per-component setting without its defaults counterpart -----------------------------------------------

# One valid value per pod setting: the test fails when a setting is added without one here.
SAMPLES: dict[str, Any] = {
    "resources": {"requests": {"cpu": "2"}},
    "shared_memory": "16Gi",
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "node_selector": {"nvidia.com/gpu.product": "H100"},
    "affinity": {"nodeAffinity": {}},
    "priority_class": "high",
    "labels": {"team": "llm"},
    "annotations": {"note": "x"},
    "service_account": "dynamo",
    "image_pull_secrets": ["regcred"],
    "startup_probe": {"failure_threshold": 90},
    "readiness_probe": {},
    "liveness_probe": {"period_s": 30},
    "termination_grace_period_s": 60,
    "env": {"LOG_LEVEL": "debug"},
    "env_from": [{"config_map": "site"}],
    "volumes": [{"name": "scratch", "mount_path": "/scratch", "empty_dir": True}],
    "security_context": {"runAsNonRoot": False},
    "pod_security_context": {"fsGroup": 1000},
    "working_dir": "/workspace",
    "topology_pack_domain": "rack",
}


def test_every_pod_setting_has_a_sample():
    assert set(SAMPLES) == set(PodSettings.model_fields)


@pytest.mark.parametrize("field", sorted(SAMPLES))
@pytest.mark.parametrize("section", ["frontend", "pools.agg"])
def test_a_component_setting_without_its_default_validates_and_builds(tmp_path, field, section):
    own: dict[str, Any] = {field: SAMPLES[field]}
    k8s: dict[str, Any] = {"frontend": own} if section == "frontend" else {"pools": {"agg": own}}
    if field == "topology_pack_domain":
        k8s["topology"] = {"cluster_topology_name": "racks"}
    spec = spec_file(tmp_path, EXAMPLES / "agg.yaml", k8s=k8s)
    proc = cli("validate", "-t", "k8s", spec)
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dgd = build(spec, tmp_path / "o")["dynamographdeployment.yaml"]
    check_dgd(dgd)
    if field == "node_selector":  # the crash of issue 28
        target = "frontend" if section == "frontend" else "worker"
        assert components(dgd)[target]["podTemplate"]["spec"]["nodeSelector"] == SAMPLES[field]


# --- env the operator sets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, value, code, severity, rc",
    [
        ("DYN_DISCOVERY_BACKEND", "kubernetes", "DYN555", "info", 0),  # the operator's own value: a note
        ("DYN_DISCOVERY_BACKEND", "etcd", "DYN556", "warning", 0),  # needs an etcd-configured operator
        ("DYN_DISCOVERY_BACKEND", "file", "DYN556", "warning", 0),  # needs a shared DYN_FILE_KV volume
        ("DYN_DISCOVERY_BACKEND", "mem", "DYN548", "error", 1),  # per process: never across pods
        ("DYN_DISCOVERY_BACKEND", "zookeeper", "DYN548", "error", 1),  # Dynamo refuses the name
        ("DYN_NAMESPACE", "shared", "DYN548", "error", 1),  # would merge deployments' namespaces
    ],
)
def test_operator_env_is_judged_by_what_would_fail(tmp_path, name, value, code, severity, rc):
    spec = spec_file(tmp_path, EXAMPLES / "agg.yaml", k8s={"defaults": {"env": {name: value}}})
    proc = cli("validate", "-t", "k8s", "--format", "json", spec)
    found = [(d["code"], d["severity"]) for d in json.loads(proc.stdout)["files"][0]["diagnostics"]]
    assert (code, severity) in found and proc.returncode == rc, found


def test_no_nats_warning_on_k8s(tmp_path):
    spec = spec_file(tmp_path, EXAMPLES / "agg.yaml", request_plane="nats")
    k8s = cli("validate", "-t", "k8s", spec)
    assert k8s.returncode == 0 and "DYN706" not in k8s.stdout + k8s.stderr
    local = cli("validate", "-t", "local", spec)
    assert "warning DYN706" in local.stdout + local.stderr and "k8s" in local.stdout + local.stderr


# --- literal secrets ------------------------------------------------------------------------------------------


def _line(spec: Path, needle: str) -> int:
    return next(i for i, line in enumerate(spec.read_text().splitlines(), 1) if needle in line)


def test_literal_secrets_in_k8s_env_and_patches_are_refused_at_their_lines(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        (EXAMPLES / "agg.yaml").read_text()
        + "k8s:\n  defaults:\n    env: {HF_TOKEN: hf_literal_secret_0123456789}\n"
        + "  frontend:\n    env: {NOTE: ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789}\n"
        + "  pools:\n    agg:\n      patches:\n"
        + "      - {op: add, path: /podTemplate/spec/containers/0/env/-, value: {name: AWS_SECRET_ACCESS_KEY, "
        "value: abcdEFGH1234}}\n"
        + "      merge: {podTemplate: {metadata: {annotations: {token: sk-abcdefghijklmnopqrstuvwx}}}}\n"
    )
    proc = cli("build", spec, "-t", "k8s", "-o", tmp_path / "o")
    assert proc.returncode == 1 and not (tmp_path / "o").exists()
    for needle in ("hf_literal", "ghp_", "AWS_SECRET", "sk-abc"):
        assert f"{spec}:{_line(spec, needle)}:" in proc.stderr and proc.stderr.count("error DYN113") == 4, needle
    assert "hf_literal_secret" not in proc.stdout


def test_secrets_by_reference_build(tmp_path):
    k8s = {
        "defaults": {"env": {"HF_TOKEN": {"secret": "hf-token-secret", "key": "HF_TOKEN"}, "LOG": "debug",
                             "DYN_ROUTER_MAX_TOKENS": "8192", "SERVED": "nvidia/Llama-4-Maverick-17B-128E-Instruct-FP8",
                             "HF_TOKEN_PATH": "/var/run/secrets/hf/token"}},
        "pools": {"agg": {"patches": [{"op": "add", "path": "/podTemplate/spec/containers/0/env/-",
                                       "value": {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}}]}},
    }  # fmt: skip
    docs = build(spec_file(tmp_path, EXAMPLES / "agg.yaml", k8s=k8s), tmp_path / "o")
    check_dgd(docs["dynamographdeployment.yaml"])
