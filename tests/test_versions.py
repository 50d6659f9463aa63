"""Each supported Dynamo version with the TensorRT-LLM it ships (issue 18): key sets, speculative forms, MoE
backends, placement on separate nodes, CUDA-graph sizes, image tags and the request plane (issue 21)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from command_lines import plan_worker_args
from conftest import EXAMPLES, REFERENCE, VALID_EXAMPLES, cli
from dynamo_parsers import DYNAMO_AVAILABLE, parse_frontend, parse_trtllm
from ruamel.yaml import YAML

from dyncc.api import with_dynamo_version
from dyncc.compiler import check_spec, compile_spec
from dyncc.compiler.placement import PlacementError, place_ranks
from dyncc.compiler.profiles import profile_for
from dyncc.compiler.rules.versions import image_tag, release_of
from dyncc.deployment import load_spec
from dyncc.engines.trtllm.keys import accepted_keys, check_engine_config, keys_versions
from dyncc.engines.trtllm.release import TrtllmRelease, release_view
from dyncc.releases import release, releases

# The two releases every example is checked under in depth (the oldest and newest exact key sets that
# the tests also run for real); tests/test_releases.py covers every release file.
VERSIONS = ["1.6.1", "0.5.1"]


def write_spec(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text("apiVersion: dyncc/v1\nname: t\n" + text)
    return path


def diagnostics_of(path: Path, version: str | None = None) -> list:
    _, _, diagnostics = check_spec(with_dynamo_version(load_spec(path), version))
    return diagnostics


def codes(diagnostics: list, severity: str | None = None) -> list[str]:
    return [d.code for d in diagnostics if severity is None or d.severity == severity]


def engine_files(example: Path, version: str) -> dict[str, dict]:
    """The engine YAMLs of ``example`` under ``version``, read back from their text."""
    plan = compile_spec(with_dynamo_version(load_spec(example), version)).plan
    return {p.role: YAML(typ="safe").load(p.engine_yaml) for p in plan.pools}


def effective_draft_len(speculative: dict, trtllm: str) -> int:
    """The draft length TensorRT-LLM's validators end with (FACTS D): 1.1.0rc5's MTP copies
    num_nextn_predict_layers (default 1) over max_draft_len; 1.3 keeps max_draft_len and maps the
    deprecated num_nextn_predict_layers onto it only when max_draft_len is unset."""
    if speculative["decoding_type"] == "MTP":
        if trtllm.startswith("1.1."):
            return int(speculative.get("num_nextn_predict_layers", 1))
        return int(speculative.get("max_draft_len", speculative.get("num_nextn_predict_layers", 1)))
    return int(speculative["max_draft_len"])


# --- a profile names exactly what it deploys ------------------------------------------------------------


def test_every_profile_checks_engine_configs_with_a_carried_key_set():
    for view in map(release_view, releases()):
        assert view.keyset in keys_versions()
        data = accepted_keys(view.keyset)
        assert data["version"] == view.keyset and data["checked_against"].startswith("TensorRT-LLM 1.")
    assert _view("1.6.1").keyset == "1.3.0rc29" and _view("0.5.1").keyset == "1.1.0rc5"


def _view(version: str) -> TrtllmRelease:
    rel = release(version)
    assert rel is not None
    return release_view(rel)


def test_no_version_is_guessed_from_another():
    assert profile_for("1.5") is None and profile_for("1.6.2") is None and profile_for("1.7.0") is None


@pytest.mark.parametrize("version", ["1.6.2", "1.7.0", "2.0.0"])
def test_a_dynamo_version_without_a_release_file_is_refused_with_the_known_list(version, tmp_path):
    proc = cli("build", EXAMPLES / "agg.yaml", "--dynamo-version", version, "-o", tmp_path / "o")
    assert proc.returncode == 1 and "DYN701" in proc.stderr
    assert "0.4.0 to 1.6.1" in proc.stderr and "1.3.1" in proc.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("version", "said"),
    [
        ("1.7.0", "the newest release dyncc has is 1.6.1"),  # newer than every file: no other release is it
        ("1.3.0", "did you mean `1.3.0.post1` or `1.3.1`?"),  # a release of a known line without its own file
    ],
)
def test_a_version_without_a_file_is_answered_with_the_releases_near_it(version, said, tmp_path):
    proc = cli("validate", EXAMPLES / "agg.yaml", "--dynamo-version", version)
    assert proc.returncode == 1 and said in proc.stderr, proc.stderr
    assert "did you mean `1.6.0`" not in proc.stderr and "scripts/" not in proc.stderr


def test_a_trtllm_version_other_than_the_pinned_one_is_refused(tmp_path):
    spec = write_spec(tmp_path, "dynamo: {version: 1.6.1, trtllm: 1.3.0rc29}\nmodel: {path: m}\npools: {agg: {}}\n")
    assert codes(diagnostics_of(spec), "error") == []
    spec.write_text(spec.read_text().replace("1.3.0rc29", "1.1.0rc5"))
    (error,) = [d for d in diagnostics_of(spec) if d.severity == "error"]
    assert error.code == "DYN705" and error.path == ("dynamo", "trtllm") and "1.3.0rc29" in (error.hint or "")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("example", VALID_EXAMPLES, ids=lambda p: p.name)
def test_every_example_under_every_supported_version_passes_that_versions_key_set(example, version):
    pinned = _view(version).version
    plan = compile_spec(with_dynamo_version(load_spec(example), version)).plan
    assert f"TensorRT-LLM {pinned}" in plan.header
    for pool in plan.pools:
        assert pool.engine_yaml.startswith(f"# TensorRT-LLM {pinned} engine config")
        config = YAML(typ="safe").load(pool.engine_yaml)
        assert check_engine_config(config, pinned) == [], (example.name, pool.role)


def test_the_key_set_check_can_fail_the_1_3_forms_are_refused_by_1_1():
    eagle_1_3 = {"speculative_config": {"decoding_type": "Eagle3", "speculative_model": "d", "max_draft_len": 3}}
    assert [p.path for p in check_engine_config(eagle_1_3, "1.1.0rc5")] == [("speculative_config", "decoding_type")]
    eagle_1_1 = {"speculative_config": {"decoding_type": "Eagle", "speculative_model": "d", "max_draft_len": 3}}
    assert [p.path for p in check_engine_config(eagle_1_1, "1.1.0rc5")] == [("speculative_config", "speculative_model")]
    assert [p.path for p in check_engine_config({"moe_config": {"backend": "AUTO"}}, "1.1.0rc5")] == [
        ("moe_config", "backend")
    ]
    assert [p.path for p in check_engine_config({"moe_config": {"backend": "WIDEEP"}}, "1.3.0rc29")] == [
        ("moe_config", "backend")
    ]


# --- speculative decoding in the form each version reads ------------------------------------------------


def test_eagle_with_draft_len_3_under_each_version():
    eagle = EXAMPLES / "llama4_eagle.yaml"
    old = engine_files(eagle, "0.5.1")["agg"]["speculative_config"]
    assert old == {
        "decoding_type": "Eagle",
        "max_draft_len": 3,
        "speculative_model_dir": "nvidia/Llama-4-Maverick-17B-128E-Eagle3",
        "eagle3_one_model": True,
    }
    new = engine_files(eagle, "1.6.1")["agg"]["speculative_config"]
    assert new["decoding_type"] == "Eagle3" and new["speculative_model"] == "nvidia/Llama-4-Maverick-17B-128E-Eagle3"
    assert effective_draft_len(old, "1.1.0rc5") == effective_draft_len(new, "1.3.0rc29") == 3


def test_mtp_with_draft_len_3_means_3_under_each_version():
    mtp = EXAMPLES / "deepseek_r1_mtp_disagg.yaml"
    for version, trtllm in (("0.5.1", "1.1.0rc5"), ("1.6.1", "1.3.0rc29")):
        for role, config in engine_files(mtp, version).items():
            assert effective_draft_len(config["speculative_config"], trtllm) == 3, (version, role)
    old = engine_files(mtp, "0.5.1")["prefill"]["speculative_config"]
    assert old["num_nextn_predict_layers"] == 3  # without it, 1.1.0rc5 runs one draft token
    assert "num_nextn_predict_layers" not in engine_files(mtp, "1.6.1")["prefill"]["speculative_config"]


@pytest.mark.parametrize("version", VERSIONS)
def test_speculative_model_dir_and_backend_pytorch_pass_through_under_every_version(version, tmp_path):
    spec = write_spec(
        tmp_path,
        "model: {path: m, moe: false}\npools:\n  agg:\n    engine:\n      extra:\n        backend: pytorch\n"
        "        speculative_config: {decoding_type: Eagle, speculative_model_dir: d, max_draft_len: 3}\n",
    )
    assert codes(diagnostics_of(spec, version), "error") == []
    spec.write_text(spec.read_text().replace("backend: pytorch", "backend: tensorrt"))
    assert codes(diagnostics_of(spec, version), "error") == ["DYN108"]


# --- MoE section -----------------------------------------------------------------------------------------

MOE = "model: {path: deepseek-ai/DeepSeek-R1, moe: true, num_experts: 256}\npools:\n  agg:\n"
MOE += "    tensor_parallel: 8\n    expert_parallel: 8\n"


def test_moe_section_is_written_into_the_engine_config(tmp_path):
    spec = write_spec(
        tmp_path, MOE + "    moe: {backend: CUTEDSL, load_balancer: {num_slots: 288, updates_per_iter: 1}}\n"
    )
    config = engine_files(spec, "1.6.1")["agg"]
    assert config["moe_config"] == {
        "backend": "CUTEDSL",
        "load_balancer": {"num_slots": 288, "layer_updates_per_iter": 1},
    }
    assert check_engine_config(config, "1.3.0rc29") == []


def test_wideep_names_the_profile_that_has_it_and_the_1_3_backends(tmp_path):
    spec = write_spec(tmp_path, MOE + "    moe: {backend: WIDEEP}\n")
    (error,) = diagnostics_of(spec, "1.6.1")
    assert error.code == "DYN108" and error.path == ("pools", "agg", "moe", "backend")
    hint = error.hint or ""
    assert "CUTEDSL" in hint and "DEEPGEMM" in hint
    named = re.search(r"Dynamo (\S+) \(TensorRT-LLM \S+\) accepts it", hint)
    assert named is not None  # the newest release whose own key set still has WIDEEP
    assert codes(diagnostics_of(spec, named[1]), "error") == []
    assert codes(diagnostics_of(spec, "0.5.1"), "error") == []
    spec.write_text(spec.read_text().replace("WIDEEP", "MEGAMOE_DEEPGEMM"))
    (error,) = [d for d in diagnostics_of(spec, "0.5.1") if d.severity == "error"]
    assert error.code == "DYN108" and "Dynamo 1.6.1" in (error.hint or "")


def test_extra_moe_config_still_works_and_its_override_is_reported(tmp_path):
    spec = write_spec(
        tmp_path, MOE + "    moe: {backend: CUTLASS}\n    engine: {extra: {moe_config: {backend: TRTLLM}}}\n"
    )
    diagnostics = diagnostics_of(spec)
    assert codes(diagnostics, "warning") == ["DYN109"]
    assert engine_files(spec, "1.6.1")["agg"]["moe_config"]["backend"] == "TRTLLM"


def test_load_balancer_slots_not_divisible_point_at_the_moe_section(tmp_path):
    spec = write_spec(tmp_path, MOE + "    moe: {load_balancer: {num_slots: 290}}\n")
    (error,) = diagnostics_of(spec)
    assert error.code == "DYN112" and error.path == ("pools", "agg", "moe", "load_balancer", "num_slots")
    assert error.location is not None and error.location.line == 8  # the `num_slots: 290` line


# --- placement -------------------------------------------------------------------------------------------

P3D5 = "model: {path: Qwen/Qwen3-32B, moe: false}\ncluster: {gpus_per_node: 8, nodes: 5%s}\n"
P3D5 += "pools:\n  prefill: {replicas: 3, tensor_parallel: 4}\n  decode: {replicas: 5, tensor_parallel: 4}\n"


def test_pools_on_separate_nodes_take_the_five_declared_nodes_and_sbatch_asks_for_five(tmp_path):
    spec = write_spec(tmp_path, P3D5 % ", pool_nodes: separate")
    result = compile_spec(load_spec(spec))
    assert result.placement.nodes_used == 5 and not result.diagnostics
    nodes = {role: {n for w in result.placement.for_pool(role) for n in w.nodes} for role in ("prefill", "decode")}
    assert nodes == {"prefill": {0, 1}, "decode": {2, 3, 4}}
    proc = cli("build", spec, "-t", "slurm", "-o", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    assert "#SBATCH --nodes=5\n" in (tmp_path / "o" / "slurm" / "job.sbatch").read_text()


def test_shared_pools_say_why_the_job_asks_for_fewer_nodes(tmp_path):
    spec = write_spec(tmp_path, P3D5 % "")
    result = compile_spec(load_spec(spec))
    assert result.placement.nodes_used == 4
    (warning,) = [d for d in result.diagnostics if d.severity == "warning"]
    assert warning.code == "DYN409" and "share node 1" in warning.message and "4 of the 5" in warning.message
    assert "pool_nodes: separate" in (warning.hint or "") and "(5 nodes)" in (warning.hint or "")


def test_idle_declared_nodes_are_a_warning_and_too_few_nodes_for_separate_pools_an_error(tmp_path):
    spec = write_spec(tmp_path, (P3D5 % ", pool_nodes: separate").replace("nodes: 5", "nodes: 7"))
    (warning,) = compile_spec(load_spec(spec)).diagnostics
    assert (
        warning.code == "DYN409" and warning.path == ("cluster", "nodes") and "cluster.nodes: 5" in (warning.hint or "")
    )
    spec.write_text(spec.read_text().replace("nodes: 7", "nodes: 4"))
    (error,) = diagnostics_of(spec)
    assert error.code == "DYN405" and "pool_nodes: shared" in (error.hint or "")


def test_single_node_disagg_shares_its_node_without_a_warning():
    result = compile_spec(load_spec(EXAMPLES / "disagg.yaml"))
    assert result.placement.nodes_used == 1 and "DYN409" not in codes(list(result.diagnostics))


@pytest.mark.parametrize("example", VALID_EXAMPLES, ids=lambda p: p.name)
def test_separate_placement_never_puts_two_pools_on_a_node(example):
    graph, placement, _ = check_spec(load_spec(example))
    assert placement is not None
    try:
        separate = place_ranks(graph.pools(), placement.gpus_per_node, placement.nodes, separate=True)
    except PlacementError as exc:  # a cluster too small for separate pools is a coded error, never a crash
        assert exc.diagnostic.code == "DYN405"
        return
    owners: dict[int, set[str]] = {}
    for w in separate.workers:
        for node, _gpu in w.iter_ranks():
            owners.setdefault(node, set()).add(w.role)
    assert all(len(roles) == 1 for roles in owners.values())
    ranks = [r for w in separate.workers for r in w.ranks]
    assert len(ranks) == len(set(ranks))


# --- CUDA graphs over the token budget -------------------------------------------------------------------

GRAPHS = "model: {path: m, moe: true, num_experts: 8, mtp_layers: 1}\nspeculative: {mode: mtp, draft_len: 3}\n"
GRAPHS += "pools:\n  agg:\n    engine:\n      max_num_tokens: 256\n      cuda_graphs: {batch_sizes: [1, 8, %d]}\n"


def test_cuda_graph_sizes_over_max_num_tokens_per_request_are_a_warning(tmp_path):
    spec = write_spec(tmp_path, GRAPHS % 64)  # 256 / (1 + 3) = 64: fits exactly
    assert "DYN119" not in codes(diagnostics_of(spec))
    spec = write_spec(tmp_path, GRAPHS % 65)
    (warning,) = [d for d in diagnostics_of(spec) if d.code == "DYN119"]
    assert warning.severity == "warning" and "batches of 64" in warning.message
    assert warning.path == ("pools", "agg", "engine", "cuda_graphs")


# --- image tags and the request plane (issue 21) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "release"),
    [("0.8.1.post2", ("0.8.1", "")), ("0.8.0rc5-arm64", ("0.8.0", "rc5")), ("1.6.1", ("1.6.1", "")), ("latest", None)],
)
def test_image_tags_are_read_as_dynamo_releases(tag, release):
    assert release_of(tag) == release
    assert image_tag(f"nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:{tag}") == tag
    assert image_tag("localhost:5000/runtime") is None and image_tag("repo/runtime@sha256:ab") is None


@pytest.mark.parametrize(
    ("tag", "warns"), [("1.6.1-arm64", False), ("1.6.1.post2", False), ("1.6.1rc5", True), ("1.6.0", True)]
)
def test_image_version_check_reads_suffixed_tags(tag, warns, tmp_path):
    spec = write_spec(
        tmp_path,
        f"image: nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:{tag}\nmodel: {{path: m}}\npools: {{agg: {{}}}}\n",
    )
    assert ("DYN704" in codes(diagnostics_of(spec))) is warns


def test_request_plane_is_written_on_the_frontend_and_every_worker_in_1x_only(tmp_path):
    spec = write_spec(tmp_path, "request_plane: nats\nmodel: {path: m, moe: false}\npools: {prefill: {}, decode: {}}\n")
    plan = compile_spec(load_spec(spec)).plan
    flags = [list(plan.frontend.flags)] + [list(p.flags) for p in plan.pools]
    assert all(f[f.index("--request-plane") + 1] == "nats" for f in flags)
    (error,) = [d for d in diagnostics_of(spec, "0.5.1") if d.severity == "error"]
    assert error.code == "DYN703" and error.path == ("request_plane",)


@pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")
@pytest.mark.parametrize("plane", ["tcp", "nats"])
def test_request_plane_flags_pass_dynamo_1_6_1s_own_parsers(plane, tmp_path):
    spec = write_spec(tmp_path, f"request_plane: {plane}\nmodel: {{path: m, moe: false}}\npools: {{agg: {{}}}}\n")
    plan = compile_spec(load_spec(spec)).plan
    assert parse_frontend(list(plan.frontend.flags)).request_plane == plane
    worker = parse_trtllm(plan_worker_args(plan, plan.pools[0], model=plan.model_path, engine_dir=""))
    assert plane in json.dumps(vars(worker), default=str)


# --- the bundled key set is the reference's ---------------------------------------------------------------


@pytest.mark.reference("trtllm-1.1.0rc5-llm-args-keys.json")
def test_bundled_1_1_key_set_matches_the_reference():
    ref = json.loads((REFERENCE / "trtllm-1.1.0rc5-llm-args-keys.json").read_text())
    ours = accepted_keys("1.1.0rc5")
    assert ours["top"] == sorted(ref["top"])
    assert ours["nested"] == {k: sorted(v) for k, v in ref["nested"].items() if k != "speculative_config"}
    spec = ref["nested"]["speculative_config"]
    assert ours["speculative_config"] == {k: sorted(v) for k, v in spec.items() if not k.startswith("_")}
    enums = {k.replace(" (TorchLlmArgs)", ""): v for k, v in ref["enums"].items() if not k.startswith("load_format")}
    assert ours["enums"] == enums
    assert ref["source"]["commit"] in ours["checked_against"]


def test_load_balancer_on_a_backend_without_one_is_refused_under_1_3(tmp_path):
    spec = write_spec(tmp_path, MOE + "    moe: {backend: TRITON, load_balancer: {num_slots: 288}}\n")
    (error,) = diagnostics_of(spec, "1.6.1")
    assert error.code == "DYN120" and error.path == ("pools", "agg", "moe", "backend")
    spec.write_text(spec.read_text().replace("TRITON", "CUTEDSL"))
    assert diagnostics_of(spec, "1.6.1") == []


def test_plan_names_the_request_plane_for_targets_that_must_provide_nats(tmp_path):
    spec = write_spec(tmp_path, "request_plane: nats\nmodel: {path: m, moe: false}\npools: {agg: {}}\n")
    assert compile_spec(load_spec(spec)).plan.request_plane == "nats"


def test_nats_request_plane_warns_where_no_nats_server_is_provided_and_tcp_does_not(tmp_path):
    from dyncc.api import validate

    spec = write_spec(tmp_path, "request_plane: nats\nmodel: {path: m, moe: false}\npools: {agg: {}}\n")
    assert codes(validate(spec, ["local"]).diagnostics, "warning") == ["DYN706"]
    assert "DYN706" not in codes(validate(spec, ["k8s"]).diagnostics)  # the platform provides NATS there
    spec.write_text(spec.read_text().replace("nats", "tcp"))
    assert codes(diagnostics_of(spec)) == [] and codes(validate(spec, ["local"]).diagnostics) == []


def test_cuda_graph_sizes_with_their_maximum_are_refused_only_where_trtllm_refuses_them(tmp_path):
    spec = write_spec(
        tmp_path,
        "model: {path: m, moe: false}\npools:\n  agg:\n    engine:\n"
        "      cuda_graphs: {batch_sizes: [1, 2, 4, 8], max_batch_size: 8}\n",
    )
    (error,) = diagnostics_of(spec, "0.5.1")
    assert error.code == "DYN121" and error.path == ("pools", "agg", "engine", "cuda_graphs", "max_batch_size")
    assert diagnostics_of(spec, "1.6.1") == []
    spec.write_text(spec.read_text().replace(", max_batch_size: 8", ""))
    assert diagnostics_of(spec, "0.5.1") == []


def test_two_model_eagle_is_refused_where_trtllm_forces_one_model(tmp_path):
    spec = write_spec(
        tmp_path,
        "model: {path: m, moe: false}\nspeculative: {mode: eagle3, draft_model: d, draft_len: 3, one_model: false}\n"
        "pools: {agg: {}}\n",
    )
    (error,) = diagnostics_of(spec, "1.6.1")
    assert error.code == "DYN122" and error.path == ("speculative", "one_model")
    assert diagnostics_of(spec, "0.5.1") == []
    assert engine_files(spec, "0.5.1")["agg"]["speculative_config"]["eagle3_one_model"] is False


def test_moe_section_on_a_dense_model_is_refused(tmp_path):
    spec = write_spec(tmp_path, "model: {path: m, moe: false}\npools:\n  agg:\n    moe: {backend: CUTLASS}\n")
    (error,) = diagnostics_of(spec)
    assert error.code == "DYN123" and error.path == ("pools", "agg", "moe")


def test_a_decoding_type_spelled_for_another_version_gets_this_versions_spelling(tmp_path):
    spec = write_spec(
        tmp_path,
        "model: {path: m, moe: false}\npools:\n  agg:\n    engine:\n      extra:\n"
        "        speculative_config: {decoding_type: Eagle3, speculative_model_dir: d, max_draft_len: 3}\n",
    )
    (error,) = diagnostics_of(spec, "0.5.1")
    assert error.code == "DYN108" and "did you mean `Eagle`?" in (error.hint or "")
    assert "Dynamo 1.6.1 (TensorRT-LLM 1.3.0rc29) accepts it" in (error.hint or "")
