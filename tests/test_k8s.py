"""The k8s target against the real CRD schema, Kubernetes' core schemas and Dynamo's own manifests."""

from __future__ import annotations

import copy
import json
import re

import pytest
from conftest import EXAMPLES, REFERENCE, VALID_EXAMPLES, cli
from dynamo_parsers import DYNAMO_AVAILABLE, parse_frontend, parse_trtllm
from k8s_schemas import CRD_ENTRY, core_errors, dgd_errors
from ruamel.yaml import YAML

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
needs_crd = pytest.mark.reference(CRD_ENTRY)


def load_docs(directory):
    docs = {}
    for path in sorted(directory.glob("*.yaml")):
        (doc,) = [d for d in YAML(typ="safe").load_all(path.read_text()) if d]
        docs[doc["kind"]] = doc
    return docs


def build_k8s(spec_path, out, extra: dict | None = None):
    if extra:
        yaml = YAML()
        data = yaml.load(spec_path.read_text())
        data.setdefault("k8s", {}).update(extra)
        spec_path = out.parent / f"{out.name}-{spec_path.name}"
        with spec_path.open("w") as f:
            yaml.dump(data, f)
    proc = cli("build", spec_path, "-t", "k8s", "-o", out)
    assert proc.returncode == 0, proc.stderr
    return load_docs(out / "k8s")


@pytest.fixture(scope="module")
def all_manifests(tmp_path_factory):
    """Every example, under both DGD API versions and with every optional object turned on."""
    root = tmp_path_factory.mktemp("k8s")
    built = {}
    variants = {
        "v1beta1": None,
        "v1alpha1": {"api_version": "v1alpha1"},
        "full": {
            "namespace": "llm",
            "image_pull_secret": "regcred",
            "model_cache": {"pvc": "models", "size": "500Gi", "storage_class": "shared-fs"},
        },
    }
    for example in VALID_EXAMPLES:
        for variant, extra in variants.items():
            built[(example.stem, variant)] = build_k8s(example, root / f"{example.stem}-{variant}", extra)
    return built


@needs_crd
def test_every_dgd_passes_the_strict_crd_schema(all_manifests):
    checked = 0
    for key, docs in all_manifests.items():
        assert dgd_errors(docs["DynamoGraphDeployment"]) == [], key
        checked += 1
    assert checked == 3 * len(VALID_EXAMPLES)


@needs_crd
def test_the_strict_schema_rejects_what_the_crd_does_not_define(all_manifests):
    dgd = copy.deepcopy(all_manifests[("agg", "v1beta1")]["DynamoGraphDeployment"])
    dgd["spec"]["components"][0]["gpus"] = 1
    assert dgd_errors(dgd)
    del dgd["spec"]["components"][0]["gpus"]
    dgd["spec"]["components"][1]["type"] = "aggregated"
    assert dgd_errors(dgd)
    alpha = copy.deepcopy(all_manifests[("agg", "v1alpha1")]["DynamoGraphDeployment"])
    alpha["spec"]["services"]["Frontend"]["components"] = []
    assert dgd_errors(alpha)


def test_core_objects_pass_kubernetes_strict_schemas(all_manifests):
    kinds = set()
    for key, docs in all_manifests.items():
        for kind in ("ConfigMap", "PersistentVolumeClaim", "Job"):
            if kind in docs:
                assert core_errors(docs[kind]) == [], (key, kind)
                kinds.add(kind)
    assert kinds == {"ConfigMap", "PersistentVolumeClaim", "Job"}
    bad = dict(copy.deepcopy(all_manifests[("agg", "v1beta1")]["ConfigMap"]), binaryDataz={})
    assert core_errors(bad), "kubernetes-validate must reject unknown fields in strict mode"


def test_names_are_dns_labels_and_env_values_strings(all_manifests):
    for key, docs in all_manifests.items():
        for doc in docs.values():
            if doc["kind"] != "Kustomization":  # a kustomize file, not an object
                assert DNS_LABEL.match(doc["metadata"]["name"]), key
        dgd = docs["DynamoGraphDeployment"]
        components = dgd["spec"].get("components") or [dict(s, name=n) for n, s in dgd["spec"]["services"].items()]
        assert len({c["name"] for c in components}) == len(components)
        for env in _all_env(dgd):
            assert isinstance(env["value"], str) if "value" in env else set(env) == {"name", "valueFrom"}, (key, env)


def _all_env(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("env", "envs") and isinstance(v, list):
                yield from v
            else:
                yield from _all_env(v)
    elif isinstance(node, list):
        for v in node:
            yield from _all_env(v)


def test_wide_ep_gets_four_nodes_of_four_gpus(all_manifests):
    docs = all_manifests[("wide_ep", "v1beta1")]
    decode = next(c for c in docs["DynamoGraphDeployment"]["spec"]["components"] if c["type"] == "decode")
    assert decode["multinode"] == {"nodeCount": 4}
    (main,) = decode["podTemplate"]["spec"]["containers"]
    assert main["resources"]["limits"]["nvidia.com/gpu"] == "4"
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env["OMPI_ALLOW_RUN_AS_ROOT"] == "1" and env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] == "1"
    # GB200: every worker pool joins an NVLink ComputeDomain sized for the deployment: 2 prefill nodes + 4 decode.
    assert docs["ComputeDomain"]["spec"]["numNodes"] == 6
    for c in docs["DynamoGraphDeployment"]["spec"]["components"][1:]:
        assert c["podTemplate"]["spec"]["resourceClaims"][0]["resourceClaimTemplateName"].endswith("-channel")
    alpha = all_manifests[("wide_ep", "v1alpha1")]["DynamoGraphDeployment"]["spec"]["services"]
    assert alpha["TRTLLMDecodeWorker"]["multinode"] == {"nodeCount": 4}
    assert alpha["TRTLLMDecodeWorker"]["resources"]["limits"]["gpu"] == "4"


def _frontend_router_mode(container) -> str:
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    args = container.get("args", [])
    if "--router-mode" in args:
        return args[args.index("--router-mode") + 1]
    return env.get("DYN_ROUTER_MODE", "round-robin")


def _summary(dgd) -> dict:
    """What must agree with Dynamo's example: per component type, replicas, GPUs and worker flags."""
    out = {}
    for c in dgd["spec"]["components"]:
        (main,) = c["podTemplate"]["spec"]["containers"]
        entry = {"replicas": c.get("replicas", 1)}
        if c["type"] == "frontend":
            entry["router_mode"] = _frontend_router_mode(main)
        else:
            argv = [a for a in main.get("args", []) if a not in ("-m", "dynamo.trtllm")]
            entry["gpus"] = main["resources"]["limits"]["nvidia.com/gpu"]
            if DYNAMO_AVAILABLE:
                config = parse_trtllm(argv)
                entry.update(
                    mode=config.disaggregation_mode.name,
                    kv_events=bool(config.publish_kv_events),
                    model=config.model,
                    served=config.served_model_name,
                )
        out[c["type"]] = entry
    return out


@pytest.mark.reference("dynamo-examples/deploy")
@pytest.mark.parametrize("name", ["agg", "agg_router", "disagg", "disagg_router"])
def test_matches_dynamos_own_example_field_by_field(name, all_manifests):
    theirs = YAML(typ="safe").load((REFERENCE / "dynamo-examples" / "deploy" / f"{name}.yaml").read_text())
    ours = all_manifests[(name, "v1beta1")]["DynamoGraphDeployment"]
    assert _summary(ours) == _summary(theirs)


@pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")
def test_frontend_args_parse_and_worker_args_equal_the_local_targets(all_manifests, tmp_path):
    for example in VALID_EXAMPLES:
        dgd = all_manifests[(example.stem, "v1beta1")]["DynamoGraphDeployment"]
        frontend = next(c for c in dgd["spec"]["components"] if c["type"] == "frontend")
        parse_frontend(frontend["podTemplate"]["spec"]["containers"][0]["args"])
    assert cli("build", EXAMPLES / "disagg_router.yaml", "-t", "local", "-o", tmp_path).returncode == 0
    launch = (tmp_path / "local" / "launch.sh").read_text()
    dgd = all_manifests[("disagg_router", "v1beta1")]["DynamoGraphDeployment"]
    for c in dgd["spec"]["components"][1:]:
        args = c["podTemplate"]["spec"]["containers"][0]["args"]
        local_line = next(l for l in launch.splitlines() if f"--disaggregation-mode {c['type']}" in l)
        local_args = local_line.split("dynamo.trtllm ", 1)[1].split()
        # Only the engine path and the Dynamo namespace differ: on k8s the operator's DYN_NAMESPACE applies.
        if "--namespace" in local_args:
            at = local_args.index("--namespace")
            del local_args[at : at + 2]
        assert [a for a in local_args if "engine/" not in a] == [a for a in args if "/etc/dyncc/engine" not in a]


def test_disagg_router_output_applies_as_is(tmp_path):
    proc = cli("build", EXAMPLES / "disagg_router.yaml", "-t", "k8s", "-o", tmp_path)
    assert proc.returncode == 0
    for path in (tmp_path / "k8s").glob("*.yaml"):
        text = path.read_text()
        assert not re.search(r"my-registry|my-tag|CHANGEME|TODO|<[a-z-]+>", text), path
    header = (tmp_path / "k8s" / "dynamographdeployment.yaml").read_text()
    assert "# Requires: Secret 'hf-token-secret'" in header  # what the spec leaves to the cluster, named


def test_model_cache(all_manifests):
    docs = all_manifests[("disagg", "full")]
    assert docs["PersistentVolumeClaim"]["spec"]["resources"]["requests"]["storage"] == "500Gi"
    worker = next(c for c in docs["DynamoGraphDeployment"]["spec"]["components"] if c["type"] == "decode")
    (main,) = worker["podTemplate"]["spec"]["containers"]
    assert {"name": "HF_HOME", "value": "/models"} in main["env"]
    assert {"name": "model-cache", "mountPath": "/models"} in main["volumeMounts"]
    assert docs["DynamoGraphDeployment"]["metadata"]["namespace"] == "llm"


@pytest.fixture(scope="module")
def planner_dgd(tmp_path_factory) -> dict:
    """disagg with an SLA planner: the DGD it compiles to."""
    root = tmp_path_factory.mktemp("planner")
    spec = root / "planner.yaml"
    spec.write_text((EXAMPLES / "disagg.yaml").read_text() + "planner: {enabled: true, ttft_ms: 200, itl_ms: 20}\n")
    return build_k8s(spec, root / "out")["DynamoGraphDeployment"]


def test_planner_component_carries_its_config(planner_dgd):
    planner = next(c for c in planner_dgd["spec"]["components"] if c["type"] == "planner")
    (main,) = planner["podTemplate"]["spec"]["containers"]
    assert main["image"].endswith("dynamo-planner:1.6.1")
    config = json.loads(main["args"][main["args"].index("--config") + 1])
    assert config["ttft_ms"] == 200 and config["optimization_target"] == "sla" and config["mode"] == "disagg"


@needs_crd
def test_planner_dgd_passes_the_strict_crd_schema(planner_dgd):
    assert dgd_errors(planner_dgd) == []


def test_too_long_a_name_is_an_error_not_a_truncation(tmp_path):
    spec = tmp_path / "long.yaml"
    long_name = "a" * 60
    spec.write_text((EXAMPLES / "agg.yaml").read_text().replace("name: qwen3-agg", f"name: {long_name}"))
    proc = cli("build", spec, "-t", "k8s", "-o", tmp_path / "out")
    assert proc.returncode == 1 and "DYN504" in proc.stderr and "63" in proc.stderr
    assert not (tmp_path / "out").exists()
