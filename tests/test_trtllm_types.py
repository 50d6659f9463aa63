"""Value types of every TensorRT-LLM engine key, per carried version (issue 28).

The key-set files carry a ``types`` section transcribed from each version's ``llm_args.py``;
``dyncc/engines/trtllm/types.py`` parses those type strings (no eval) and checks values with pydantic in lax
mode, as TensorRT-LLM's own models do. These tests hold the section to the key lists (every key has a
type), to the grammar (every type parses and builds), to the reference's own field notes (spot checks
of facts read independently), to the curated enum lists, and to NVIDIA's real engine configs (none
refused).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from conftest import REFERENCE
from ruamel.yaml import YAML

from dyncc.engines.trtllm.keys import accepted_keys, keys_versions
from dyncc.engines.trtllm.types import TypeGrammarError, describe, parse, type_of, value_problem, value_problems

# The key sets whose value types were transcribed (1.1.0rc5, 1.3.0rc29); the generated ones (scripts/gen_keysets.py)
# carry none and say so in their `uncertain` list.
VERSIONS = [version for version in keys_versions() if "types" in accepted_keys(version)]
REFERENCE_FILES = {"1.1.0rc5": "trtllm-1.1.0rc5-llm-args-keys.json", "1.3.0rc29": "trtllm-1.3.0rc2x-llm-args-keys.json"}


def _literals(text: str) -> set[Any]:
    """Every Literal value anywhere in a type string."""
    found: set[Any] = set()
    stack = [parse(text)]
    while stack:
        node = stack.pop()
        found.update(node.literals)
        stack.extend(node.args)
    return found


def test_both_carried_versions_have_types() -> None:
    assert VERSIONS == ["1.1.0rc5", "1.3.0rc29"]
    for version in VERSIONS:
        assert len(accepted_keys(version)["types"]) > 150, version


@pytest.mark.parametrize("version", VERSIONS)
def test_every_listed_key_has_a_type(version: str) -> None:
    data = accepted_keys(version)
    types, variants = data["types"], data["types_variants"]
    missing = [key for key in data["top"] if key not in types]
    for section, keys in data["nested"].items():
        for key in keys:
            if section in variants:  # the entries name the classes a discriminator picks
                if f"{section}.{key}.{variants[section]}" not in types:
                    missing.append(f"{section}.{key}.{variants[section]}")
            elif f"{section}.{key}" not in types:
                missing.append(f"{section}.{key}")
    for form, keys in data["speculative_config"].items():
        missing += [
            f"speculative_config.{form}.{key}" for key in keys if f"speculative_config.{form}.{key}" not in types
        ]
    assert missing == []


@pytest.mark.parametrize("version", VERSIONS)
def test_every_type_parses_and_builds(version: str) -> None:
    data = accepted_keys(version)
    for key, text in data["types"].items():
        assert describe(parse(text)), key
        # Builds the pydantic validator; a bare object is no YAML value, so only Any may take it.
        assert (value_problem(version, key, object()) is None) == (text == "Any"), key
    for key in data["types_uncertain"]:
        assert key in data["types"], f"types_uncertain names {key}, which has no type"
    for key, text in data["types"].items():
        if text == "Any":  # never a silent Any: an object field (notes say which) or a listed unknown
            assert key in data["types_uncertain"] or key in data["types_notes"], key


@pytest.mark.parametrize("version", VERSIONS)
def test_types_were_read_from_the_reference_sources_commit(version: str) -> None:
    source = accepted_keys(version)["types_source"]
    reference = json.loads((REFERENCE / REFERENCE_FILES[version]).read_text())["source"]
    assert source["repo"] == reference["repo"] == "NVIDIA/TensorRT-LLM"
    assert reference["commit"] in (source["commit"], source.get("source_commit"))


@pytest.mark.parametrize(
    "text",
    ["__import__('os')", "List[int", "int(foo=1)", "str(ge=1)", "Literal[x]", "Dict[int]", "Optional[]", "Tuple[int]"],
)
def test_grammar_refuses_what_it_does_not_define(text: str) -> None:
    with pytest.raises(TypeGrammarError):
        parse(text)


# (version, reference field_notes key, words the note says, engine key, accepted, refused, default)
FIELD_NOTES = [
    ("1.1.0rc5", "stream_interval", "must be > 0", "stream_interval", [1, 10, "8"], [0, -1, "fast", 1.5], 1),
    ("1.1.0rc5", "batch_wait_timeout_ms", "must be >= 0", "batch_wait_timeout_ms", [0, 2.5], [-1, "soon"], 0),
    (
        "1.1.0rc5",
        "speculative_config.num_nextn_predict_layers (MTP)",
        "int, default 1",
        "speculative_config.MTP.num_nextn_predict_layers",
        [1, 3],
        [0, "two"],
        1,
    ),
    (
        "1.1.0rc5",
        "kv_cache_config.free_gpu_memory_fraction",
        "Optional[float], default None",
        "kv_cache_config.free_gpu_memory_fraction",
        [None, 0.9, 1.5],
        ["most"],
        None,
    ),
    ("1.1.0rc5", "cp_config", "Optional[dict]", "cp_config", [None, {}, {"cp_type": "ULYSSES"}], [[1], "x"], {}),
    ("1.1.0rc5", "sampler_type", "default 'auto'", "sampler_type", ["auto", "TRTLLMSampler"], [3], "auto"),
    ("1.1.0rc5", "attn_backend", "default 'TRTLLM'", "attn_backend", ["TRTLLM", "FLASHINFER"], [None], "TRTLLM"),
    ("1.1.0rc5", "allreduce_strategy", "default 'AUTO'", "allreduce_strategy", ["NCCL", None], ["FAST"], "AUTO"),
    ("1.1.0rc5", "kv_cache_config.dtype", "str, default 'auto'", "kv_cache_config.dtype", ["fp8"], [8], "auto"),
    ("1.1.0rc5", "enable_attention_dp", "bool, default False", "enable_attention_dp", [True, "true"], ["maybe"], False),
    ("1.1.0rc5", "moe_config", "backend default 'CUTLASS'", "moe_config.backend", ["WIDEEP"], ["AUTO"], "CUTLASS"),
    ("1.1.0rc5", "cuda_graph_config", "null disables", "cuda_graph_config", [None, {}], [7], {}),
    (
        "1.1.0rc5",
        "speculative_config (NGram)",
        "max_matching_ngram_size > 0",
        "speculative_config.NGram.max_matching_ngram_size",
        [2],
        [0],
        0,
    ),
    (
        "1.1.0rc5",
        "speculative_config (Eagle)",
        "eagle3_one_model: Optional[bool], default True",
        "speculative_config.Eagle.eagle3_one_model",
        [False, None],
        ["two"],
        True,
    ),
    ("1.3.0rc29", "cuda_graph_config", "null disables", "cuda_graph_config", [None, {"enable_padding": True}], [1], {}),
    (
        "1.3.0rc29",
        "moe_config.load_balancer",
        "a dict, or a str path",
        "moe_config.load_balancer",
        [None, {"num_slots": 8}, "lb.yaml"],
        [3],
        None,
    ),
]


@pytest.mark.reference(*REFERENCE_FILES.values())
@pytest.mark.parametrize(("version", "note", "says", "key", "accepted", "refused", "default"), FIELD_NOTES)
def test_types_agree_with_the_reference_field_notes(
    version: str, note: str, says: str, key: str, accepted: list[Any], refused: list[Any], default: Any
) -> None:
    reference = json.loads((REFERENCE / REFERENCE_FILES[version]).read_text())
    assert says in reference["field_notes"][note], "the reference no longer says this; re-read the source"
    for value in accepted:
        assert value_problem(version, key, value) is None, (key, value)
    for value in refused:
        assert value_problem(version, key, value), (key, value)
    assert accepted_keys(version)["types_defaults"][key] == default


@pytest.mark.reference(*REFERENCE_FILES.values())
def test_enum_defaults_match_the_reference_enum_notes() -> None:
    notes = json.loads((REFERENCE / REFERENCE_FILES["1.3.0rc29"]).read_text())["enum_notes"]
    assert "default 'AUTO'" in notes["moe_config.backend"]
    assert accepted_keys("1.3.0rc29")["types_defaults"]["moe_config.backend"] == "AUTO"
    assert "null is also allowed" in notes["cache_transceiver_config.backend"]
    assert value_problem("1.3.0rc29", "cache_transceiver_config.backend", None) is None


def test_the_issue_28_cases() -> None:
    # The engine.extra that validated and then killed the worker at start-up:
    assert value_problem("1.3.0rc29", "stream_interval", "fast") == "must be an integer > 0 (PositiveInt)"
    # The Kimi disagg recipe NVIDIA ships: max_tokens_in_buffer 0 (Optional[int], no bound in TRT-LLM).
    for version in VERSIONS:
        assert type_of(version, "cache_transceiver_config.max_tokens_in_buffer") == "Optional[int]"
        for value in (0, -1, None, 65536, "4096"):
            assert value_problem(version, "cache_transceiver_config.max_tokens_in_buffer", value) is None
        assert value_problem(version, "cache_transceiver_config.max_tokens_in_buffer", 1.5)


def test_lax_mode_coerces_as_tensorrt_llm_does() -> None:
    v = "1.3.0rc29"
    assert value_problem(v, "max_num_tokens", "8192") is None  # YAML "8192" quoted is still an int to pydantic
    assert value_problem(v, "max_num_tokens", 8192.0) is None
    assert value_problem(v, "max_num_tokens", 8192.5)
    assert value_problem(v, "enable_chunked_prefill", "yes") is None
    assert value_problem(v, "kv_cache_config.free_gpu_memory_fraction", 1.5) == (
        "must be a number >= 0 and <= 1 (float(ge=0, le=1))"
    )
    assert value_problem(v, "kv_cache_config.free_gpu_memory_fraction", None)  # its validator compares None: fails
    assert value_problem(v, "checkpoint_loader", object()) is None  # Any: an object field, never refused
    assert value_problem(v, "no_such_key", "anything") is None  # unknown keys are keys.py's to report


@pytest.mark.parametrize("version", VERSIONS)
def test_literal_types_equal_the_curated_enums(version: str) -> None:
    data = accepted_keys(version)
    for dotted, enum in data["enums"].items():
        text = type_of(version, dotted)
        if text is None:  # a speculative key of some forms only: check it on each form that has it
            forms = [f"speculative_config.{form}.{dotted.split('.', 1)[1]}" for form in data["speculative_config"]]
            typed = [key for key in forms if type_of(version, key)]
            assert typed, dotted
            assert all(value_problem(version, key, value) is None for key in typed for value in enum), dotted
            continue
        assert [value for value in enum if value_problem(version, dotted, value)] == [], dotted
        # A Literal names no value the enum lacks (the enum may add values another member type takes,
        # e.g. true/false for Union[bool, Literal['auto']]).
        assert _literals(text) <= set(enum), dotted


@pytest.mark.reference("dynamo-examples/engine_configs")
def test_nvidias_engine_configs_pass() -> None:
    configs = sorted((REFERENCE / "dynamo-examples" / "engine_configs").rglob("*.yaml"))
    assert len(configs) >= 5
    for path in configs:
        config = YAML(typ="safe").load(path.read_text())
        assert value_problems("1.3.0rc29", config) == [], path


def test_value_problems_walks_variants_and_placeholders() -> None:
    config = {
        "stream_interval": 0,
        "speculative_config": {"decoding_type": "MTP", "max_draft_len": 0, "sa_config": {"threshold": 0}},
        "sparse_attention_config": {"algorithm": "dsa", "index_topk": "many"},
        "kv_cache_compression_config": {"algorithm": "triattention", "budget": 0},
        "multimodal_config": {"encoder_cuda_graph": {"image": {"buckets": [[0, 1]], "warmup_steps": 2}}},
        "cuda_graph_config": {"num_tokens": [128, 256], "max_seq_len": -1},
        "kv_cache_config": {"enable_block_reuse": True, "kv_events_config": {"hwm": 0}},
        "model_kwargs": {"deep": {"deeper": "anything goes here"}},
    }
    found = dict(value_problems("1.3.0rc29", config))
    assert set(found) == {
        ("stream_interval",),
        ("speculative_config", "max_draft_len"),
        ("speculative_config", "sa_config", "threshold"),
        ("sparse_attention_config", "index_topk"),
        ("kv_cache_compression_config", "budget"),
        ("multimodal_config", "encoder_cuda_graph", "image", "buckets"),
        ("cuda_graph_config", "max_seq_len"),
        ("kv_cache_config", "kv_events_config", "hwm"),
    }
    # Same config for 1.1.0rc5: its MTP reads num_nextn_predict_layers and accepts max_draft_len 0.
    old = dict(value_problems("1.1.0rc5", {"speculative_config": {"decoding_type": "MTP", "max_draft_len": 0}}))
    assert old == {}
    # An unknown decoding type is the enum check's to report, not a type problem.
    assert value_problems("1.3.0rc29", {"speculative_config": {"decoding_type": "Nope", "x": 1}}) == []


def test_value_problems_is_bounded_on_deep_untyped_values() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5000):
        node["k"] = {}
        node = node["k"]
    start = time.monotonic()
    assert value_problems("1.3.0rc29", {"model_kwargs": deep, "kv_cache_config": {"x": deep}}) == []
    assert time.monotonic() - start < 2.0


# --- wired into validate (DYN114) ------------------------------------------------------------------------


def _diagnostics(tmp_path, extra: str, version: str = "1.6.1") -> list[dict]:
    import json

    from conftest import assert_no_traceback, cli

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"apiVersion: dyncc/v1\nname: x\ndynamo: {{version: {version}}}\nmodel: {{path: Qwen/Qwen3-0.6B, moe: false}}\n"
        f"pools:\n  agg:\n    engine:\n      extra:\n{extra}"
    )
    proc = cli("validate", "--format", "json", spec)
    assert_no_traceback(proc)
    return json.loads(proc.stdout)["files"][0]["diagnostics"]


def _validate_extra(tmp_path, extra: str, version: str = "1.6.1") -> list[dict]:
    return [d for d in _diagnostics(tmp_path, extra, version) if d["severity"] == "error"]


@pytest.mark.parametrize("version", ["1.6.1", "0.5.1"])
def test_a_value_trtllm_refuses_by_type_is_dyn114_at_its_line(tmp_path, version):
    errors = _validate_extra(tmp_path, "        stream_interval: fast\n", version)
    assert [(e["code"], e["path"], e["line"]) for e in errors] == [
        ("DYN114", "pools.agg.engine.extra.stream_interval", 9)
    ]
    assert "PositiveInt" in errors[0]["message"]


@pytest.mark.parametrize(
    "extra",
    [
        "        stream_interval: '8'\n",  # coerced as TensorRT-LLM's pydantic models coerce YAML
        "        cache_transceiver_config: {max_tokens_in_buffer: 0}\n",  # NVIDIA's Kimi-K2 recipe
        "        sparse_attention_config: {algorithm: dsa, index_topk: 2048}\n",  # a DeepSeek-V3.2 config
    ],
)
def test_values_trtllm_accepts_validate(tmp_path, extra):
    assert _validate_extra(tmp_path, extra) == []


@pytest.mark.parametrize(("dynamo", "typed"), [("1.5.1", "1.3.0rc29"), ("0.8.1", "1.1.0rc5")])
def test_a_release_whose_types_were_not_read_is_checked_by_the_nearest_typed_one_as_a_warning(tmp_path, dynamo, typed):
    """1.5.1's TensorRT-LLM (key set 1.3.0rc22) and 0.8.1's (1.2.0rc6.post1) carry keys but no types: a value
    the nearest typed release refuses is a warning naming that release, at its line; a good value says nothing."""
    from dyncc.engines.trtllm.release import keyset_for, pin
    from dyncc.engines.trtllm.types import typed_version
    from dyncc.releases import release

    rel = release(dynamo)
    assert rel is not None
    keyset = keyset_for(pin(rel))
    assert typed_version(keyset) == typed != keyset
    found = [d for d in _diagnostics(tmp_path, "        stream_interval: fast\n", dynamo) if d["code"] == "DYN114"]
    assert [(d["severity"], d["path"], d["line"]) for d in found] == [
        ("warning", "pools.agg.engine.extra.stream_interval", 9)
    ]
    assert f"TensorRT-LLM {typed} refuses it" in found[0]["message"] and keyset in found[0]["message"]
    assert not [d for d in _diagnostics(tmp_path, "        stream_interval: 4\n", dynamo) if d["code"] == "DYN114"]


def test_an_unknown_engine_key_is_pointed_at_by_its_key_and_a_bad_value_by_its_value(tmp_path):
    """DYN108's caret sits on the key it does not know (as DYN010's does in the spec) and on the value it
    refuses; the newcomer saw the unknown key's caret under its value."""
    found = _diagnostics(tmp_path, "        print_iter_logs: false\n        moe_config: {backend: NOPE}\n")
    located = {d["path"]: (d["line"], d["column"]) for d in found if d["code"] == "DYN108"}
    assert located == {
        "pools.agg.engine.extra.print_iter_logs": (9, 9),
        "pools.agg.engine.extra.moe_config.backend": (10, 31),
    }
