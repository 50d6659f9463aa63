"""The TensorRT-LLM key sets scripts/gen_keysets.py generates from the reference (issue 31).

Each file loads through dyncc.engines.trtllm.keys and every key and enum value it lists is accepted through the same
checks the compiler runs; the generator re-run writes the same bytes; the per-version facts the reference
README and files state hold on the loaded data (build_config, WIDEEP/AUTO, MTP thinking-token case, Eagle vs
Eagle3, the KV transfer backends); and the engine configs dyncc writes for a spec's MTP and Eagle sections,
and for every example, use only keys and values the version accepts.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from conftest import EXAMPLES, REFERENCE, ROOT, VALID_EXAMPLES

from dyncc.deployment import load_spec
from dyncc.engines.trtllm.engine_config import resolve_engine
from dyncc.engines.trtllm.keys import accepted_keys, accepts, check_engine_config, enum_values, keys_versions
from dyncc.engines.trtllm.overrides import effective_value
from dyncc.engines.trtllm.release import release_view
from dyncc.releases import releases

GENERATED = ["1.2.0rc2", "1.2.0rc3", "1.2.0rc6.post1", "1.3.0rc11", "1.3.0rc14", "1.3.0rc22"]
REFERENCE_FILES = [f"trtllm-{v}-llm-args-keys.json" for v in GENERATED]


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_keysets", ROOT / "scripts" / "gen_keysets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_keysets"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _problems(version: str, config: dict[str, Any]) -> list[str]:
    return [".".join(p.path) for p in check_engine_config(config, version)]


# --- every file loads and is self-consistent through dyncc.engines.trtllm.keys -------------------------------------


def test_every_generated_version_is_carried() -> None:
    assert set(GENERATED) <= set(keys_versions())
    assert _generator().VERSIONS == tuple(GENERATED)


@pytest.mark.parametrize("version", GENERATED)
def test_a_generated_file_names_its_source_trust_and_what_is_uncertain(version: str) -> None:
    data = accepted_keys(version)
    assert data["version"] == version
    assert data["source"].split()[0] == f"shared/reference/trtllm-{version}-llm-args-keys.json"
    assert data["trust"].startswith("reference README §10: high")
    assert data["checked_against"].startswith(f"TensorRT-LLM {version}: ")
    assert data["pinned_by_dynamo"] and all(isinstance(r, str) for r in data["pinned_by_dynamo"])
    assert data["uncertain"] and all(isinstance(line, str) and line for line in data["uncertain"])
    # No value types were transcribed for these versions, and the file says so rather than borrowing some.
    assert "types" not in data and any("against the nearest typed key set" in line for line in data["uncertain"])


@pytest.mark.parametrize("version", keys_versions())
def test_every_listed_key_and_enum_value_is_accepted_and_a_stranger_is_not(version: str) -> None:
    data = accepted_keys(version)
    variants = set(data.get("types_variants", {})) - {"speculative_config"}
    for key in data["top"]:
        assert accepts(version, key), key
    for section, keys in data["nested"].items():
        if section in variants or "<" in section:  # class names / placeholders, not keys (the typed sets)
            continue
        for key in keys:
            assert accepts(version, f"{section}.{key}"), f"{section}.{key}"
        assert not accepts(version, f"{section}.no_such_key_here"), section
    for form, keys in data["speculative_config"].items():
        if form.startswith("_"):  # 1.3.0rc29 lists the inherited base fields and sa_config's beside the types
            continue
        values = {key: (data["enums"].get(f"speculative_config.{key}") or [1])[0] for key in keys}
        config = {"speculative_config": values | {"decoding_type": form}}
        assert _problems(version, config) == [], form
    for dotted, values in data["enums"].items():
        assert enum_values(version, dotted) == values
        for value in values:
            assert accepts(version, dotted, value), (dotted, value)
        assert not accepts(version, dotted, "NO_SUCH_VALUE"), dotted
    assert not accepts(version, "no_such_top_level_key")


@pytest.mark.parametrize("version", GENERATED)
def test_an_enum_the_reference_calls_open_is_never_refused(version: str) -> None:
    data = accepted_keys(version)
    assert "kv_cache_config.dtype" in data["enums_not_checked"] and "kv_cache_config.dtype" not in data["enums"]
    for dtype in ("auto", "fp8", "nvfp4", "bfloat16", "FP8"):  # 1.3: lower-cased, any torch dtype name passes
        assert accepts(version, "kv_cache_config.dtype", dtype), dtype
    assert accepts(version, "sampler_type", "TorchSampler") and accepts(version, "sampler_type", "auto")


# --- the generator -------------------------------------------------------------------------------------------


@pytest.mark.reference(*REFERENCE_FILES, "README.md")
def test_the_generator_rewrites_every_file_byte_for_byte() -> None:
    gen = _generator()
    for version in GENERATED:
        written = (ROOT / "dyncc" / "engines" / "trtllm" / "data" / f"trtllm_{version}_keys.json").read_text(
            encoding="utf-8"
        )
        assert gen.render(gen.build(version, REFERENCE)) == written, f"{version}: run scripts/gen_keysets.py"
    assert gen.main(["--check", "--reference", str(REFERENCE)]) == 0


@pytest.mark.reference(*REFERENCE_FILES, "README.md")
def test_the_generator_refuses_a_reference_whose_override_note_no_claim_covers(tmp_path: Path) -> None:
    """A field note that reads like an override and that no pair or non-override cites stops the generator."""
    gen = _generator()
    for name in [*REFERENCE_FILES, "README.md"]:
        (tmp_path / name).write_bytes((REFERENCE / name).read_bytes())
    changed = tmp_path / "trtllm-1.3.0rc22-llm-args-keys.json"
    data = json.loads(changed.read_text(encoding="utf-8"))
    data["field_notes"]["stream_interval"] = "PositiveInt default 1; overwritten by max_batch_size when unset."
    changed.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(SystemExit, match="not declared: \\['stream_interval'\\]"):
        gen.build("1.3.0rc22", tmp_path)


# --- per-version facts (reference README §10 and each file's notes) ------------------------------------------

README_FACTS = [
    "81 top-level keys; **no `build_config` on TorchLlmArgs**",
    "`moe_config.backend` still has WIDEEP and no AUTO",
    "`cache_transceiver_config` = backend {DEFAULT,UCX,NIXL,MPI} + `max_tokens_in_buffer`",
    "(no `Eagle3` key; Medusa/Lookahead fail on\n  PyTorch); MTP thinking tokens are lower-case",
    "1.2.0rc2 (76 top keys; MTP thinking-token keys upper-case), 1.2.0rc3 (77; `build_config` still a field), "
    "1.3.0rc11 (90), 1.3.0rc14 (95), 1.3.0rc22 (106; WIDEEP still accepted there)",
]


@pytest.mark.reference("README.md")
def test_the_reference_readme_still_states_the_facts_checked_below() -> None:
    readme = (REFERENCE / "README.md").read_text(encoding="utf-8")
    for fact in README_FACTS:
        assert fact in readme, "the README no longer says this; re-read it and the tests below"


@pytest.mark.parametrize(
    ("version", "top_keys", "build_config"),
    [
        ("1.2.0rc2", 76, True),
        ("1.2.0rc3", 77, True),
        ("1.2.0rc6.post1", 81, False),
        ("1.3.0rc11", 90, False),
        ("1.3.0rc14", 95, False),
        ("1.3.0rc22", 106, False),
    ],
)
def test_top_level_keys_and_build_config(version: str, top_keys: int, build_config: bool) -> None:
    assert len(accepted_keys(version)["top"]) == top_keys
    problems = check_engine_config({"build_config": {"max_batch_size": 8}}, version)
    assert (problems == []) is build_config
    if not build_config:
        assert "removed from TensorRT-LLM" in problems[0].message


@pytest.mark.parametrize(
    ("version", "has_auto", "wideep"),
    [(v, False, True) for v in GENERATED[:3]] + [(v, True, True) for v in GENERATED[3:]] + [("1.3.0rc29", True, False)],
)
def test_moe_backends(version: str, has_auto: bool, wideep: bool) -> None:
    backends = enum_values(version, "moe_config.backend")
    assert ("AUTO" in backends) is has_auto and ("WIDEEP" in backends) is wideep
    assert accepts(version, "moe_config.backend", "CUTLASS")


@pytest.mark.parametrize(
    ("version", "backends", "sender_timeout"),
    [
        ("1.2.0rc2", ["DEFAULT", "UCX", "NIXL", "MPI"], False),
        ("1.2.0rc3", ["DEFAULT", "UCX", "NIXL", "MPI"], True),
        ("1.2.0rc6.post1", ["DEFAULT", "UCX", "NIXL", "MPI"], True),
        ("1.3.0rc11", ["DEFAULT", "UCX", "NIXL", "MOONCAKE", "MPI"], True),
        ("1.3.0rc14", ["DEFAULT", "UCX", "NIXL", "MOONCAKE", "MPI"], True),
        ("1.3.0rc22", ["DEFAULT", "UCX", "NIXL", "MOONCAKE", "MPI"], True),
    ],
)
def test_cache_transceiver_backends(version: str, backends: list[str], sender_timeout: bool) -> None:
    assert enum_values(version, "cache_transceiver_config.backend") == backends
    assert not accepts(version, "cache_transceiver_config.backend", "nixl")  # a case-sensitive Literal
    assert accepts(version, "cache_transceiver_config.kv_transfer_sender_future_timeout_ms") is sender_timeout


@pytest.mark.parametrize("version", GENERATED)
def test_mtp_thinking_token_keys_are_upper_case_only_in_1_2_0rc2(version: str) -> None:
    upper = version == "1.2.0rc2"
    names = ["BEGIN_THINKING_PHASE_TOKEN", "END_THINKING_PHASE_TOKEN"]
    expected = names if upper else [n.lower() for n in names]
    assert accepted_keys(version)["speculative_forms"]["mtp"]["thinking_token_keys"] == expected
    for name in names:
        for spelling, accepted in ((name, upper), (name.lower(), not upper)):
            config = {"speculative_config": {"decoding_type": "MTP", spelling: 128798}}
            assert (_problems(version, config) == []) is accepted, spelling


@pytest.mark.parametrize("version", GENERATED)
def test_decoding_types_eagle_or_eagle3_and_the_other_spellings(version: str) -> None:
    line_1_3 = version.startswith("1.3.")
    eagle = accepted_keys(version)["speculative_forms"]["eagle"]
    assert eagle["decoding_type"] == ("Eagle3" if line_1_3 else "Eagle")
    assert eagle["model_key"] == ("speculative_model" if line_1_3 else "speculative_model_dir")
    assert eagle["two_model_honoured"] is True  # forced back to one model only from the rc2x line (1.3.0rc29)
    eagle3 = check_engine_config({"speculative_config": {"decoding_type": "Eagle3"}}, version)
    if line_1_3:
        assert eagle3 == []
        (old,) = check_engine_config({"speculative_config": {"decoding_type": "DraftTarget"}}, version)
        assert old.suggestion == "Draft_Target"
        # speculative_model_dir is read into speculative_model (validation alias).
        config = {"speculative_config": {"decoding_type": "Eagle3", "speculative_model_dir": "d", "max_draft_len": 3}}
        assert _problems(version, config) == []
    else:
        assert [p.suggestion for p in eagle3] == ["Eagle"]
        config = {"speculative_config": {"decoding_type": "Eagle", "speculative_model": "d"}}
        assert _problems(version, config) == ["speculative_config.speculative_model"]
    (medusa,) = check_engine_config({"speculative_config": {"decoding_type": "Medusa"}}, version)
    assert medusa.kind == "value" and "PyTorch backend" in (medusa.reason or "")


@pytest.mark.parametrize(
    ("version", "depth_key", "max_draft_len_alone"),
    [(v, "num_nextn_predict_layers", 1) for v in GENERATED[:5]] + [("1.3.0rc22", "max_draft_len", 3)],
)
def test_mtp_depth_key_and_what_a_lone_max_draft_len_drafts(version: str, depth_key: str, max_draft_len_alone: int):
    assert accepted_keys(version)["speculative_forms"]["mtp"]["depth_key"] == depth_key
    config = {"speculative_config": {"decoding_type": "MTP", "max_draft_len": 3}}
    assert effective_value(config, "speculative_config.max_draft_len", version) == max_draft_len_alone
    config["speculative_config"] = {"decoding_type": "MTP", depth_key: 4}
    assert effective_value(config, "speculative_config.max_draft_len", version) == 4


# --- what dyncc writes is what each version accepts ----------------------------------------------------------


def _profile(version: str) -> Any:
    """A real release's TensorRT-LLM view whose key set (and TensorRT-LLM) is ``version``: only the engine
    side matters here."""
    base = next(v for v in map(release_view, releases()) if v.transfer_default == "NIXL")
    return msgspec.structs.replace(base, version=version, keyset=version)


SPECULATIVE = {
    "mtp": "model: {path: deepseek-ai/DeepSeek-R1, moe: true, num_experts: 256, mtp_layers: 1}\n"
    "speculative: {mode: mtp, draft_len: 3}\n",
    "eagle3": "model: {path: m, moe: false}\nspeculative: {mode: eagle3, draft_model: d, draft_len: 3}\n",
    "eagle3-two-model": "model: {path: m, moe: false}\n"
    "speculative: {mode: eagle3, draft_model: d, draft_len: 3, one_model: false}\n",
    "eagle": "model: {path: m, moe: false}\nspeculative: {mode: eagle, draft_model: d, draft_len: 2}\n",
}
POOLS = "pools:\n  prefill: {tensor_parallel: 2}\n  decode: {tensor_parallel: 2}\nkv_transfer: {max_tokens_in_buffer: 8192}\n"


def _engine_configs(path: Path, version: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    spec = load_spec(path).spec
    configs = []
    for role, pool in spec.pools.declared():
        resolved = resolve_engine(spec, role, pool, spec.model.moe, _profile(version))
        configs.append((role, resolved.config, resolved.sources))
    return configs


@pytest.mark.parametrize("version", GENERATED)
@pytest.mark.parametrize("mode", list(SPECULATIVE))
def test_the_speculative_config_dyncc_writes_is_accepted(tmp_path: Path, version: str, mode: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("apiVersion: dyncc/v1\nname: t\n" + SPECULATIVE[mode] + POOLS)
    forms = accepted_keys(version)["speculative_forms"]
    for role, config, _ in _engine_configs(path, version):
        assert _problems(version, config) == [], (role, config)
        speculative = config["speculative_config"]
        if mode == "mtp":
            assert speculative == {"decoding_type": "MTP", forms["mtp"]["depth_key"]: 3}
            assert effective_value(config, "speculative_config.max_draft_len", version) == 3
        else:
            eagle = forms["eagle"]
            assert speculative["decoding_type"] == eagle["decoding_type"]
            assert speculative[eagle["model_key"]] == "d" and speculative["max_draft_len"] in (2, 3)
            assert speculative["eagle3_one_model"] is (mode != "eagle3-two-model")


@pytest.mark.parametrize("version", GENERATED)
@pytest.mark.parametrize("example", VALID_EXAMPLES, ids=lambda p: p.name)
def test_every_key_dyncc_writes_for_an_example_is_accepted(version: str, example: Path) -> None:
    """Keys dyncc writes from first-class fields; a spec's own engine.extra may name a newer key (DYN108)."""
    for role, config, sources in _engine_configs(example, version):
        problems = check_engine_config(config, version)
        ours = [p for p in problems if ".engine.extra." not in _source_of(sources, p.path)]
        assert ours == [], (example.name, role, [(p.path, p.message) for p in ours])


def _source_of(sources: dict[str, Any], path: tuple[str, ...]) -> str:
    for depth in range(len(path), 0, -1):
        source = sources.get(".".join(path[:depth]))
        if source is not None:
            return f"{source.kind}:{source.detail}"
    return ""


def test_the_examples_are_there() -> None:
    assert EXAMPLES.is_dir() and len(VALID_EXAMPLES) >= 5
