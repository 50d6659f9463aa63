"""Graph, rules, placement and model facts, in process through the library API."""

from __future__ import annotations

import json
import textwrap

import pytest
from conftest import EXAMPLES, VALID_EXAMPLES

from dyncc.compiler import check_spec, compile_spec
from dyncc.compiler.graph import FRONTEND, edges_of_kind
from dyncc.deployment import load_spec, load_spec_text
from dyncc.diagnostics import DiagnosticError


def spec(body: str, pools: str = "pools:\n  agg: {}\n", model: str = "model: {path: Qwen/Qwen3-0.6B, moe: false}\n"):
    text = "apiVersion: dyncc/v1\nname: t\n" + model + textwrap.dedent(body) + pools
    return load_spec_text(text, "t.yaml")


def codes(loaded, severity=None):
    _, _, diagnostics = check_spec(loaded)
    return sorted(d.code for d in diagnostics if severity is None or d.severity == severity)


# --- the graph ------------------------------------------------------------------------------------


def test_graph_has_typed_edges_for_disagg_router():
    graph = compile_spec(load_spec(EXAMPLES / "disagg_router.yaml")).graph
    assert set(edges_of_kind(graph, "requests")) == {(FRONTEND, "pool:prefill"), (FRONTEND, "pool:decode")}
    assert edges_of_kind(graph, "kv_transfer") == [("pool:prefill", "pool:decode")]
    assert edges_of_kind(graph, "kv_events") == [("pool:prefill", FRONTEND)]  # only prefill publishes
    assert {u for u, v in edges_of_kind(graph, "registers")} == {FRONTEND, "pool:prefill", "pool:decode"}


def test_planner_gets_metrics_edges():
    loaded = spec(
        "planner: {enabled: true, mode: sla, ttft_ms: 200, itl_ms: 20}\n", "pools:\n  prefill: {}\n  decode: {}\n"
    )
    graph = compile_spec(loaded).graph
    assert {u for u, v in edges_of_kind(graph, "metrics")} == {FRONTEND, "pool:prefill", "pool:decode"}


# --- rules that only warn or inform ----------------------------------------------------------------


def test_kv_router_turns_on_events_and_says_so():
    result = compile_spec(spec("router: {mode: kv}\n"))
    notes = [d for d in result.diagnostics if d.code == "DYN301"]
    assert notes and notes[0].severity == "info" and "KV events turned on for the agg pool" in notes[0].message
    assert "--publish-kv-events" in result.plan.pools[0].flags


def test_approximate_kv_routing_publishes_no_events():
    result = compile_spec(spec("router: {mode: kv, kv_events: false}\n"))
    assert "--publish-kv-events" not in result.plan.pools[0].flags
    assert "--no-router-kv-events" in result.plan.frontend.flags


def test_attention_dp_with_tp1_warns():
    assert codes(spec("", "pools:\n  agg: {attention_dp: true}\n"), "warning") == ["DYN104"]


def test_extra_override_warns():
    loaded = spec("", "pools:\n  agg:\n    engine:\n      max_batch_size: 8\n      extra: {max_batch_size: 16}\n")
    assert codes(loaded, "warning") == ["DYN109"]
    assert compile_spec(loaded).plan.pools[0].engine_config["max_batch_size"] == 16


def test_default_transfer_backend_warns():
    assert "DYN206" in codes(
        spec("kv_transfer: {backend: DEFAULT}\n", "pools:\n  prefill: {}\n  decode: {}\n"), "warning"
    )


def test_owned_engine_keys_cannot_be_passed_through():
    loaded = spec("", "pools:\n  agg:\n    engine:\n      extra: {tensor_parallel_size: 8}\n")
    assert codes(loaded, "error") == ["DYN108"]


def test_wideep_moe_backend_is_rejected_as_removed():
    loaded = spec("", "pools:\n  agg:\n    engine:\n      extra: {moe_config: {backend: WIDEEP}}\n")
    _, _, diagnostics = check_spec(loaded)
    assert [d.code for d in diagnostics] == ["DYN108"] and "1.3.0rc29" in diagnostics[0].message
    hint = diagnostics[0].hint or ""
    # The hint names the newest release whose own key set still takes WIDEEP (1.4.x: TensorRT-LLM 1.3.0rc22).
    assert "removed" in hint and "CUTEDSL" in hint and "DEEPGEMM" in hint and "--dynamo-version 1.4.2" in hint


def test_lowercase_transceiver_backend_gets_a_suggestion():
    loaded = spec(
        "", "pools:\n  prefill: {}\n  decode:\n    engine:\n      extra: {cache_transceiver_config: {backend: ucx}}\n"
    )
    _, _, diagnostics = check_spec(loaded)
    assert any(d.code == "DYN108" and "UCX" in (d.hint or "") for d in diagnostics)


# --- placement --------------------------------------------------------------------------------------


@pytest.mark.parametrize("example", VALID_EXAMPLES, ids=lambda p: p.name)
def test_no_gpu_is_used_twice_and_every_rank_is_placed(example):
    result = compile_spec(load_spec(example))
    ranks = [r for w in result.placement.workers for r in w.ranks]
    assert len(ranks) == len(set(ranks))
    expected = sum(p.gpus_per_worker * p.replicas for p in result.plan.pools)
    assert len(ranks) == expected
    gpn, nodes = result.placement.gpus_per_node, result.placement.nodes
    assert all(0 <= n < nodes and 0 <= g < gpn for n, g in ranks)


def test_wide_ep_decode_spans_four_whole_nodes_with_sixteen_ranks():
    result = compile_spec(load_spec(EXAMPLES / "wide_ep.yaml"))
    (decode,) = result.placement.for_pool("decode")
    assert len(decode.ranks) == 16 and len(decode.nodes) == 4
    assert all(len(decode.gpus_on(n)) == 4 for n in decode.nodes)
    prefill_nodes = {n for w in result.placement.for_pool("prefill") for n in w.nodes}
    assert not prefill_nodes & set(decode.nodes)


def test_placement_scales_linearly_enough_for_ten_thousand_gpus():
    loaded = spec(
        "cluster: {gpus_per_node: 8, nodes: 1250}\n",
        "pools:\n  prefill: {replicas: 500, tensor_parallel: 4}\n  decode: {replicas: 500, tensor_parallel: 16}\n",
    )
    result = compile_spec(loaded)
    assert result.placement.gpus_used == 10_000 and result.placement.nodes_used == 1250


# --- model facts ---------------------------------------------------------------------------------------


def test_model_facts_come_from_a_local_config_json(tmp_path):
    model_dir = tmp_path / "ckpt"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"n_routed_experts": 256, "num_nextn_predict_layers": 0}))
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(
        "apiVersion: dyncc/v1\nname: t\nmodel: {path: ckpt}\nspeculative: {mode: mtp}\n"
        "pools:\n  agg: {tensor_parallel: 4, expert_parallel: 4}\n"
    )
    loaded = load_spec(spec_file)
    assert loaded.facts.moe is True and loaded.facts.num_experts == 256 and loaded.facts.mtp_layers == 0
    _, _, diagnostics = check_spec(loaded)
    (mtp,) = [d for d in diagnostics if d.code == "DYN105"]
    assert "config.json" in mtp.message


@pytest.mark.parametrize(
    ("hub_id", "layers"),
    [("meta-llama/Llama-4-Maverick-17B-128E-Instruct", 0), ("Qwen/Qwen3-32B", 0), ("deepseek-ai/DeepSeek-R1", 1)],
)
def test_a_well_known_hub_models_mtp_layers_come_from_the_table(tmp_path, hub_id, layers):
    """Its num_nextn_predict_layers, as a local config.json's are: mtp on a model without them would fail when
    the engine loads it, so it is refused (DYN105); the spec's own model.mtp_layers still wins."""
    spec_file = tmp_path / "s.yaml"
    text = f"apiVersion: dyncc/v1\nname: t\nmodel: {{path: {hub_id}}}\nspeculative: {{mode: mtp, draft_len: 1}}\n"
    spec_file.write_text(text + "pools:\n  agg: {tensor_parallel: 8}\n")
    loaded = load_spec(spec_file)
    assert loaded.facts.mtp_layers == layers and hub_id in loaded.facts.source["mtp_layers"]
    refused = [d for d in check_spec(loaded)[2] if d.code == "DYN105"]
    assert len(refused) == (layers == 0)
    spec_file.write_text(
        text.replace("model: {path: " + hub_id, "model: {mtp_layers: 1, path: " + hub_id)
        + "pools:\n  agg: {tensor_parallel: 8}\n"
    )
    stated = load_spec(spec_file)
    assert stated.facts.mtp_layers == 1 and stated.facts.source["mtp_layers"] == "spec"
    assert not [d for d in check_spec(stated)[2] if d.code == "DYN105"]


def test_broken_local_config_json_is_a_coded_error(tmp_path):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{not json")
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text("apiVersion: dyncc/v1\nname: t\nmodel: {path: ckpt}\npools:\n  agg: {}\n")
    with pytest.raises(DiagnosticError) as exc:
        load_spec(spec_file)
    assert exc.value.diagnostics[0].code == "DYN015" and exc.value.diagnostics[0].location.line == 3


def target_check(loaded, name):
    """The diagnostics of one target's own checks (ports, names, managed env) on the compiled spec."""
    from dyncc.targets import load_target

    target = load_target(name)
    return target.check(compile_spec(loaded).plan, target.settings(loaded.spec))


def test_system_ports_past_i16_are_rejected():
    loaded = spec("local: {system_port_base: 32766}\n", "pools:\n  agg: {replicas: 3}\n")
    diagnostics = target_check(loaded, "local")
    assert [d.code for d in diagnostics] == ["DYN402"] and "16-bit" in diagnostics[0].message


def test_slurm_http_port_on_a_worker_port_is_rejected():
    loaded = spec("slurm: {http_port: 8082}\n", "pools:\n  agg: {replicas: 3}\n")
    diagnostics = target_check(loaded, "slurm")
    assert [(d.code, d.path) for d in diagnostics] == [("DYN402", ("slurm", "http_port"))]


def test_mock_bootstrap_ports_skip_the_http_ports():
    from dyncc.api import with_engine
    from dyncc.targets.ports import bootstrap_port

    # Workers on 8081-8084; the HTTP port sits exactly where bootstrap ports would start.
    loaded = spec("slurm: {http_port: 8085}\n", "pools:\n  prefill: {replicas: 2}\n  decode: {replicas: 2}\n")
    plan = with_engine(compile_spec(loaded), "mocker").plan
    ports = [bootstrap_port(plan, w, 8081, 8085) for p, w in plan.workers if p.role == "prefill"]
    system = {8081 + w.index for _, w in plan.workers}
    assert len(set(ports)) == 2 and not set(ports) & (system | {8085})
