"""DYN124: tensor parallelism must split a layer's attention heads as TensorRT-LLM does, with the head counts
taken from the model facts every rule reads (the spec, else config.json, else dyncc's table of well-known
models), and the message naming where they came from."""

from __future__ import annotations

import json

import pytest

from dyncc.compiler import check_spec
from dyncc.deployment import load_spec, load_spec_text


def findings(model: str, pool: str, pools: str = "agg") -> list:
    text = f"apiVersion: dyncc/v1\nname: t\nmodel: {model}\npools:\n  {pools}: {pool}\n"
    _, _, diagnostics = check_spec(load_spec_text(text, "t.yaml"))
    return [d for d in diagnostics if d.code == "DYN124"]


def test_a_known_model_without_stated_heads_is_checked_against_dyncc_table():
    (found,) = findings("{path: meta-llama/Llama-3.1-8B-Instruct}", "{tensor_parallel: 3}")
    assert "32 attention heads" in found.message
    assert "dyncc's table of well-known models (meta-llama/Llama-3.1-8B-Instruct)" in found.message
    assert found.path == ("pools", "agg", "tensor_parallel") and "[1, 2, 4, 8, 16, 32]" in (found.hint or "")


@pytest.mark.parametrize(
    ("path", "tp"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", 4),
        ("meta-llama/Llama-3.1-8B-Instruct", 16),  # 8 KV heads, each copied to two ranks
        ("Qwen/Qwen3-235B-A22B", 8),  # 4 KV heads at TP8: copied, as TensorRT-LLM does
        ("deepseek-ai/DeepSeek-R1", 8),
    ],
)
def test_splits_tensorrt_llm_accepts_are_not_refused(path, tp):
    assert findings(f"{{path: {path}}}", f"{{tensor_parallel: {tp}}}") == []


def test_attention_dp_keeps_every_head_on_every_rank():
    assert findings("{path: deepseek-ai/DeepSeek-R1}", "{tensor_parallel: 3, attention_dp: true}") == []
    (found,) = findings("{path: deepseek-ai/DeepSeek-R1}", "{tensor_parallel: 3}")
    assert "128 attention heads" in found.message


@pytest.mark.parametrize("tp", [6, 12])
def test_kv_heads_that_neither_divide_nor_are_divided_by_tp_are_refused(tp):
    # Qwen3-Coder-480B: 96 query heads (TP6 and TP12 divide them) but 8 KV heads.
    (found,) = findings("{path: Qwen/Qwen3-Coder-480B-A35B-Instruct}", f"{{tensor_parallel: {tp}}}")
    assert "8 KV heads" in found.message and "Qwen3-Coder-480B-A35B-Instruct" in found.message
    assert "[1, 2, 4, 8, 16, 24, 32, 48]" in (found.hint or "")


def test_stated_facts_override_the_table_and_are_named():
    # model.attention_heads 48 divides over TP3; the table's 8 KV heads do not.
    (found,) = findings("{path: meta-llama/Llama-3.1-8B-Instruct, attention_heads: 48}", "{tensor_parallel: 3}")
    assert "8 KV heads" in found.message and "table of well-known models" in found.message
    (found,) = findings("{path: meta-llama/Llama-3.1-8B-Instruct, attention_heads: 36}", "{tensor_parallel: 8}")
    assert "36 attention heads" in found.message and "[from model.attention_heads]" in found.message
    assert findings("{path: Qwen/Qwen3-Coder-480B-A35B-Instruct, facts: {kv_heads: 12}}", "{tensor_parallel: 6}") == []


def test_an_unknown_hub_model_without_stated_heads_is_not_checked():
    assert findings("{path: acme/unknown-model}", "{tensor_parallel: 3}") == []


def _local(tmp_path, config: dict, tp: int) -> list:
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(config))
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(
        f"apiVersion: dyncc/v1\nname: t\nmodel: {{path: ckpt}}\npools:\n  agg: {{tensor_parallel: {tp}}}\n"
    )
    _, _, diagnostics = check_spec(load_spec(spec_file))
    return [d for d in diagnostics if d.code == "DYN124"]


def test_a_multimodal_config_json_is_read_under_text_config(tmp_path):
    text = {"hidden_size": 5120, "num_attention_heads": 40, "num_key_value_heads": 8}
    (found,) = _local(tmp_path, {"architectures": ["Llama4ForConditionalGeneration"], "text_config": text}, 3)
    assert "40 attention heads" in found.message and "config.json" in found.message


def test_a_config_json_without_kv_heads_has_one_per_query_head(tmp_path):
    (found,) = _local(tmp_path, {"hidden_size": 4096, "num_attention_heads": 12}, 8)
    assert "12 attention heads" in found.message


def test_mla_splits_only_the_query_heads(tmp_path):
    # Multi-head latent attention caches one latent per token: its num_key_value_heads is not split.
    config = {"hidden_size": 7168, "num_attention_heads": 48, "num_key_value_heads": 16, "kv_lora_rank": 512}
    assert _local(tmp_path, config, 6) == []


def test_a_well_known_moe_models_experts_come_from_the_table_for_dyn107(tmp_path):
    """DeepSeek-R1's 256 routed experts, from dyncc's table when the spec and a local config say nothing:
    expert_parallel 6 does not divide them; 8 does; whether the model is MoE is left to the spec."""
    from conftest import cli

    spec = tmp_path / "s.yaml"
    text = (
        "apiVersion: dyncc/v1\nname: ds\nmodel: {path: deepseek-ai/DeepSeek-R1}\n"
        "cluster: {gpus_per_node: 8, nodes: 1, gpu_type: B300}\npools:\n  agg: {tensor_parallel: 8, expert_parallel: EP}\n"
    )
    spec.write_text(text.replace("EP", "4"))
    ok = cli("validate", spec)
    assert "DYN107" not in ok.stdout + ok.stderr
    spec.write_text(text.replace("tensor_parallel: 8", "tensor_parallel: 6").replace("EP", "6"))
    refused = cli("validate", spec)
    assert "error DYN107: 256 experts do not divide over expert_parallel 6 (from dyncc's table" in refused.stderr
