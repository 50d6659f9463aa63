"""`dyncc import`: a DynamoGraphDeployment (v1beta1 or v1alpha1) -> a spec, and back.

The round trip builds the imported spec for Kubernetes with `dyncc.api.build` and compares the rebuilt DGD
with the original, fact by fact (per role: replicas, GPUs, image, worker and frontend flags as sets, engine
config keys and values, environment): whatever differs must be accounted for by one of the import's coded
warnings. Run over every example manifest Dynamo ships (../shared/reference), and over manifests written here.
"""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest
import yaml
from conftest import REFERENCE

from dyncc.codes import registry
from dyncc.diagnostics import DiagnosticError
from dyncc.engines import engines
from dyncc.tools.importer import Difference, compare, covered, facts, import_dgd, read_sources, round_trip

DEPLOY_DIRS = ("dynamo-examples/deploy", "dynamo-2025-examples/deploy")
MANIFESTS = sorted(p for d in DEPLOY_DIRS for p in (REFERENCE / d).glob("*.yaml")) or [REFERENCE / "missing"]


def _rel(path: Path) -> str:
    return str(path.relative_to(REFERENCE)) if path.is_relative_to(REFERENCE) else path.name


@pytest.mark.reference(*DEPLOY_DIRS)
@pytest.mark.parametrize("manifest", MANIFESTS, ids=_rel)
def test_round_trip_of_dynamos_examples_differs_only_by_coded_warnings(manifest, tmp_path):
    result = import_dgd([manifest])
    for warning in result.warnings:
        assert re.fullmatch(r"DYN9[56]\d", warning.code) and warning.severity == "warning", warning
        assert warning.code in registry(), warning.code
    unexplained = round_trip(result, tmp_path)
    assert unexplained == [], "\n".join(map(str, unexplained))
    # The spec names what was lost at its top, so a reader of the file sees it too.
    assert all(w.message in result.text for w in result.warnings)
    # A warning about a part of the manifest says where it is there: file:line:col of that part.
    for warning in result.warnings:
        if warning.path[:1] == ("spec",):
            assert warning.location is not None and warning.location.file == str(manifest), warning
            line = manifest.read_text().splitlines()[warning.location.line - 1]
            assert line.strip(), warning


@pytest.mark.reference("dynamo-examples/deploy")
def test_with_its_configmap_the_engine_config_is_carried_over(tmp_path):
    result = import_dgd([REFERENCE / "dynamo-examples/deploy/agg-with-config.yaml"])
    assert "DYN953" not in {w.code for w in result.warnings}
    agg = result.spec["pools"]["agg"]
    assert agg["engine"]["max_batch_size"] == 16 and agg["engine"]["free_gpu_memory_fraction"] == 0.95
    assert agg["engine"]["overlap_scheduler"] is False
    assert result.spec["model"]["trust_remote_code"] is True
    original = result.facts.roles["agg"].engine
    assert original and original["kv_cache_config.free_gpu_memory_fraction"] == 0.95


@pytest.mark.reference("dynamo-2025-examples/deploy")
def test_a_v1alpha1_manifest_becomes_a_0x_spec_and_builds_v1alpha1(tmp_path):
    result = import_dgd([REFERENCE / "dynamo-2025-examples/deploy/disagg_router.yaml"])
    assert result.spec["dynamo"] == {"version": "0.5.1"}
    assert result.spec["router"] == {"mode": "kv", "disaggregation_strategy": "prefill_first"}
    assert result.spec["pools"]["prefill"]["replicas"] == 2 and result.spec["pools"]["decode"]["replicas"] == 1
    assert round_trip(result, tmp_path) == []
    rebuilt = yaml.safe_load((tmp_path / "build" / "k8s" / "dynamographdeployment.yaml").read_text())
    assert rebuilt["apiVersion"] == "nvidia.com/v1alpha1"


# --- manifests written here: the round trip without ../shared/reference ---------------------------

DGD = """\
apiVersion: nvidia.com/v1beta1
kind: DynamoGraphDeployment
metadata: {name: my-llm}
spec:
  env: [{name: HF_HOME, value: /cache}]
  components:
  - name: Frontend
    type: frontend
    replicas: 1
    podTemplate:
      spec:
        containers:
        - name: main
          image: registry.example/trtllm:1.6.1
          command: [python3, -m, dynamo.frontend]
          args: [--http-port, "8000", --router-mode, kv, --router-temperature, "0.5", --some-new-flag, x]
          env: [{name: LOG_LEVEL, value: debug}]
  - name: prefill
    type: prefill
    replicas: 2
    podTemplate:
      spec:
        containers:
        - name: main
          image: registry.example/trtllm:1.6.1
          command: [python3, -m, dynamo.trtllm]
          args: [--model-path, org/model, --extra-engine-args, /cfg/prefill.yaml, --disaggregation-mode, prefill,
                 --modality, text]
          resources: {limits: {nvidia.com/gpu: "2"}}
          readinessProbe: {httpGet: {path: /health, port: 9090}}
  - name: decode
    type: decode
    replicas: 1
    podTemplate:
      spec:
        containers:
        - name: main
          image: registry.example/trtllm:1.6.1
          command: [python3, -m, dynamo.trtllm]
          args: [--model-path, org/model, --extra-engine-args, /cfg/decode.yaml, --disaggregation-mode, decode]
          resources: {limits: {nvidia.com/gpu: "2"}}
"""

PREFILL = """\
tensor_parallel_size: 2
max_num_tokens: 4096
disable_overlap_scheduler: true
kv_cache_config: {free_gpu_memory_fraction: 0.7, enable_partial_reuse: false}
cache_transceiver_config: {backend: UCX}
print_iter_log: true
"""
DECODE = """\
tensor_parallel_size: 2
max_batch_size: 64
cuda_graph_config: {max_batch_size: 64, enable_padding: true}
cache_transceiver_config: {backend: UCX}
"""


@pytest.fixture
def manifests(tmp_path: Path) -> list[Path]:
    (tmp_path / "in").mkdir()
    dgd = tmp_path / "in" / "dgd.yaml"
    dgd.write_text(DGD)
    (tmp_path / "in" / "prefill.yaml").write_text(PREFILL)
    (tmp_path / "in" / "decode.yaml").write_text(DECODE)
    return [dgd, tmp_path / "in" / "prefill.yaml", tmp_path / "in" / "decode.yaml"]


def test_engine_files_given_beside_the_dgd_are_imported(manifests, tmp_path):
    result = import_dgd(manifests)
    spec = result.spec
    prefill, decode = spec["pools"]["prefill"], spec["pools"]["decode"]
    assert prefill["tensor_parallel"] == 2 and prefill["engine"]["max_num_tokens"] == 4096
    assert prefill["engine"]["extra"] == {"kv_cache_config": {"enable_partial_reuse": False}, "print_iter_log": True}
    assert decode["engine"]["cuda_graphs"] == {"max_batch_size": 64, "padding": True}
    assert spec["kv_transfer"] == {"backend": "UCX"}
    assert spec["router"] == {"mode": "kv", "temperature": 0.5}
    assert prefill["env"] == {"HF_HOME": "/cache"}
    codes = {w.code: w for w in result.warnings}
    assert set(codes) == {"DYN954", "DYN955", "DYN956", "DYN959", "DYN964"}, codes
    assert codes["DYN964"].path == ("pools", "prefill")  # the KV router needs the prefill pool's KV events
    assert "--modality" in codes["DYN954"].message and "--some-new-flag" in codes["DYN955"].message
    assert "LOG_LEVEL" in codes["DYN959"].message and "HF_HOME" in codes["DYN959"].message
    assert round_trip(result, tmp_path / "rt") == []


def test_the_comparison_finds_what_changed(manifests, tmp_path):
    """The round trip's comparison is not blind: an edit to the imported spec shows as a difference."""
    result = import_dgd(manifests)
    edited = result.text.replace("replicas: 2", "replicas: 3").replace(
        "max_batch_size: 64\n", "max_batch_size: 32\n", 1
    )
    assert edited != result.text
    changed = msgspec.structs.replace(result, text=edited)
    keys = {d.key for d in round_trip(changed, tmp_path)}
    assert ("prefill", "replicas") in keys and ("decode", "engine", "max_batch_size") in keys


def test_a_lost_flag_is_a_difference_until_a_warning_covers_it(manifests):
    sources = read_sources(manifests)
    original = facts(sources)
    rebuilt = facts(sources)
    del rebuilt.roles["prefill"].flags["--modality"]
    (diff,) = compare(original, rebuilt)
    assert diff == Difference(("prefill", "flag", "--modality"), "text", None)
    assert not covered(diff, [])
    assert covered(diff, import_dgd(manifests).notes)


def test_without_engine_files_the_gpu_limit_sets_tensor_parallel(manifests, tmp_path):
    result = import_dgd(manifests[:1])
    assert result.spec["pools"]["prefill"]["tensor_parallel"] == 2
    assert [w.code for w in result.warnings].count("DYN953") == 2
    assert round_trip(result, tmp_path) == []


def test_an_engine_key_dyncc_refuses_is_dropped_with_a_warning(manifests, tmp_path):
    manifests[1].write_text(PREFILL + "max_batch_size: fast\nbuild_config: {}\n")  # DYN012 and DYN108
    result = import_dgd(manifests)
    dropped = sorted((w.path, w.message) for w in result.warnings if w.code == "DYN961")
    assert [path for path, _ in dropped] == [
        ("pools", "prefill", "engine", "extra", "build_config"),
        ("pools", "prefill", "engine", "max_batch_size"),
    ]
    assert "DYN108" in dropped[0][1] and "DYN012" in dropped[1][1]
    engine = result.spec["pools"]["prefill"]["engine"]
    assert "max_batch_size" not in engine and "build_config" not in engine["extra"]
    assert round_trip(result, tmp_path) == []  # both keys are differences, both covered by the warnings


def test_a_worker_is_found_and_read_by_the_engine_its_command_runs(manifests):
    """The import asks the engine registry, not a list of its own: a component running an engine's module is
    a worker whatever its type, that engine reads its config, and a backendFramework of no engine is named
    against the engines dyncc deploys."""
    readers = [e for e in engines() if e.configures]
    assert readers
    text = manifests[0].read_text().replace("spec:\n", "spec:\n  backendFramework: elsewhere\n", 1)
    manifests[0].write_text(text.replace("type: decode", "type: other"))
    result = import_dgd(manifests)
    assert result.spec["pools"]["decode"]["engine"]["max_batch_size"] == 64
    (framework,) = [w.message for w in result.warnings if w.path == ("spec", "backendFramework")]
    assert framework == f"backendFramework elsewhere: dyncc deploys {' or '.join(e.label for e in readers)}"
    manifests[0].write_text(text.replace("type: decode", "type: other").replace(readers[0].module, "dynamo.other"))
    assert set(facts(read_sources(manifests)).roles) == {"frontend", "prefill", "other"}  # not a worker


def test_not_one_dgd_or_not_yaml_is_a_coded_error(manifests, tmp_path):
    with pytest.raises(DiagnosticError) as none:
        import_dgd(manifests[1:])
    assert [d.code for d in none.value.diagnostics] == ["DYN951"]
    with pytest.raises(DiagnosticError) as two:
        import_dgd([manifests[0], manifests[0]])
    assert [d.code for d in two.value.diagnostics] == ["DYN951"]
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: [unclosed\n")
    with pytest.raises(DiagnosticError) as exc:
        import_dgd([broken])
    (syntax,) = exc.value.diagnostics  # the spec loader's own YAML error, located in the manifest
    assert syntax.code == "DYN001" and str(syntax.location) == f"{broken}:1:7", syntax
    with pytest.raises(DiagnosticError) as exc:
        import_dgd([tmp_path / "absent.yaml"])
    assert [d.code for d in exc.value.diagnostics] == ["DYN952"]


def test_a_deployment_dyncc_refuses_is_a_coded_error(manifests):
    """A router block size the workers' engine config contradicts (DYN302) cannot be imported as is."""
    manifests[0].write_text(DGD.replace("--router-temperature", "--kv-cache-block-size, '64', --router-temperature"))
    with pytest.raises(DiagnosticError) as exc:
        import_dgd(manifests)
    (error,) = exc.value.diagnostics
    assert error.code == "DYN969" and "DYN302" in error.message
