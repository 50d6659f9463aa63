"""MTP depth and the other engine keys TensorRT-LLM writes over one another (issue 35).

Each carried key set declares how its TensorRT-LLM reads the MTP depth (``speculative_forms.mtp.depth_key``)
and which keys overwrite which (``overrides``, transcribed from the reference's field_notes). The engine
YAML dyncc writes must mean what the spec says once those validators ran: the effective draft length is
computed from the key set's declared semantics applied to the YAML text dyncc wrote, never from the spec.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from conftest import EXAMPLES, REFERENCE, VALID_EXAMPLES
from ruamel.yaml import YAML

from dyncc.api import render_targets, with_dynamo_version
from dyncc.compiler import check_spec, compile_spec
from dyncc.deployment import load_spec
from dyncc.engines.trtllm.engine_config import engine_yaml, resolve_engine
from dyncc.engines.trtllm.keys import accepted_keys, keys_versions, speculative_form
from dyncc.engines.trtllm.overrides import effective_value, lost_values, overrides
from dyncc.engines.trtllm.release import release_view
from dyncc.releases import release, releases

DRAFT = "speculative_config.max_draft_len"
MTP_EXAMPLE = EXAMPLES / "deepseek_r1_mtp_disagg.yaml"
# The MTP keys mean different things in different TensorRT-LLM releases: one Dynamo release per key set
# dyncc carries exactly (the newest release pinning it).
VERSIONS = list({v.keyset: v.dynamo_version for v in map(release_view, releases()) if v.keyset_exact}.values())


def _yaml(text: str) -> Any:
    return YAML(typ="safe").load(text)


def _spec(tmp_path: Path, body: str, version: str | None = None) -> Path:
    head = "apiVersion: dyncc/v1\nname: t\n" + (f"dynamo: {{version: {version}}}\n" if version else "")
    path = tmp_path / "s.yaml"
    path.write_text(head + body)
    return path


MTP_SPEC = """model: {path: deepseek-ai/DeepSeek-R1, moe: true, num_experts: 256, mtp_layers: 1}
speculative: {mode: mtp, draft_len: DRAFT_LEN}
pools:
  prefill: {tensor_parallel: 4, expert_parallel: 4}
  decode: {tensor_parallel: 4, expert_parallel: 4}
"""


# --- the declared semantics, per carried key set -----------------------------------------------------------


@pytest.mark.parametrize("version", keys_versions())
def test_every_key_set_declares_where_mtp_depth_is_read_and_its_overrides(version: str) -> None:
    form = speculative_form(version, "mtp")
    assert form["depth_key"] in accepted_keys(version)["speculative_config"]["MTP"]
    assert all(p.how in ("always", "when_set", "alias") and p.fact for p in overrides(version))
    # The key dyncc writes the depth under is never one the same version overwrites, drops or deprecates.
    losers = {p.overrides for p in overrides(version) if ("speculative_config.decoding_type", ("MTP",)) in p.when}
    assert f"speculative_config.{form['depth_key']}" not in losers


MTP = {"decoding_type": "MTP"}


@pytest.mark.parametrize(
    "version,speculative,depth",
    [
        # 1.1.0rc5: num_nextn_predict_layers (default 1) is copied over max_draft_len.
        ("1.1.0rc5", {**MTP, "max_draft_len": 3}, 1),
        ("1.1.0rc5", {**MTP, "num_nextn_predict_layers": 3}, 3),
        ("1.1.0rc5", {**MTP, "num_nextn_predict_layers": 2, "max_draft_len": 5}, 2),
        # 1.3.0rc29: num_nextn_predict_layers is a deprecated alias, dropped when max_draft_len is set.
        ("1.3.0rc29", {**MTP, "max_draft_len": 3}, 3),
        ("1.3.0rc29", {**MTP, "num_nextn_predict_layers": 3}, 3),
        ("1.3.0rc29", {**MTP, "num_nextn_predict_layers": 5, "max_draft_len": 2}, 2),
    ],
)
def test_effective_depth_follows_each_versions_validators(version: str, speculative: dict, depth: int) -> None:
    if version not in keys_versions():
        pytest.skip(f"no {version} key set carried")
    assert effective_value({"speculative_config": speculative}, DRAFT, version) == depth


# --- what dyncc writes: the spec's draft length, for every key set and profile ----------------------------


@pytest.mark.parametrize("key_set", keys_versions())
@pytest.mark.parametrize("dynamo", VERSIONS)
@pytest.mark.parametrize("draft_len", [1, 2, 3, 7])
def test_engine_yaml_drafts_the_specs_draft_len(tmp_path: Path, key_set: str, dynamo: str, draft_len: int) -> None:
    """Every carried key set under every profile's facts (a key set added for another release is covered
    before a profile names it): the YAML text read back, the key set's semantics applied."""
    loaded = load_spec(_spec(tmp_path, MTP_SPEC.replace("DRAFT_LEN", str(draft_len))))
    spec = with_dynamo_version(loaded, dynamo).spec
    rel = release(dynamo)
    assert rel is not None
    profile = msgspec.structs.replace(release_view(rel), version=key_set, keyset=key_set)
    for role, pool in spec.pools.declared():
        resolved = resolve_engine(spec, role, pool, True, profile)
        config = _yaml(engine_yaml(role, resolved.config, spec.name, key_set))
        assert effective_value(config, DRAFT, key_set) == spec.speculative.draft_len == draft_len, (role, config)
        assert lost_values(config, key_set) == [], config  # nothing dyncc wrote is overwritten or deprecated


def _engine_configs(files: dict[str, Any]) -> list[tuple[str, dict]]:
    """Every engine config a target wrote: engine/<role>.yaml files and the k8s ConfigMap's entries."""
    found = []
    for name, text in files.items():
        if re.search(r"(^|/)engine/(prefill|decode|agg)\.yaml$", name):
            found.append((name, _yaml(text)))
        elif name.endswith("configmap.yaml"):
            for doc in YAML(typ="safe").load_all(text):
                for key, value in ((doc or {}).get("data") or {}).items():
                    if key.endswith(".yaml"):
                        found.append((f"{name}:{key}", _yaml(value)))
    return found


@pytest.mark.parametrize("version", VERSIONS)
def test_deepseek_r1_mtp_example_drafts_3_under_every_profile(version: str) -> None:
    compiled = compile_spec(with_dynamo_version(load_spec(MTP_EXAMPLE), version))
    rendered, _ = render_targets(compiled, ["all"])
    configs = [(f"{t}/{n}", c) for t, files in rendered.items() for n, c in _engine_configs(files)]
    assert {t for t in rendered} >= {"local", "slurm", "compose", "k8s"}
    assert len(configs) >= 8, [n for n, _ in configs]  # prefill + decode on each of the four targets
    trtllm = compiled.plan.engine_version
    for name, config in configs:
        assert config["speculative_config"]["decoding_type"] == "MTP", name
        assert effective_value(config, DRAFT, trtllm) == 3, (version, name, config["speculative_config"])
        assert lost_values(config, trtllm) == [], name


@pytest.mark.parametrize("example", VALID_EXAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize("version", VERSIONS)
def test_no_example_writes_a_value_its_tensorrt_llm_overwrites(example: Path, version: str) -> None:
    _, _, diagnostics = check_spec(with_dynamo_version(load_spec(example), version))
    assert not [d for d in diagnostics if d.code in ("DYN128", "DYN129")], diagnostics


# --- engine.extra setting a losing key: coded -----------------------------------------------------------


def _codes(path: Path) -> list[tuple[str, str, str]]:
    _, _, diagnostics = check_spec(load_spec(path))
    return [(d.code, d.severity, ".".join(map(str, d.path))) for d in diagnostics if d.code in ("DYN128", "DYN129")]


AGG = "model: {path: deepseek-ai/DeepSeek-R1, moe: true, num_experts: 256, mtp_layers: 1}\npools:\n  agg:\n"
AGG += "    tensor_parallel: 8\n    expert_parallel: 8\n"


@pytest.mark.parametrize(
    "version,body,expected",
    [
        # 1.1.0rc5: max_draft_len alone runs 1 draft token.
        (
            "0.5.1",
            "    engine:\n      extra:\n        speculative_config: {decoding_type: MTP, max_draft_len: 3}\n",
            [("DYN128", "error", "pools.agg.engine.extra.speculative_config.max_draft_len")],
        ),
        # ... also beside the spec's draft length, which dyncc writes as num_nextn_predict_layers.
        (
            "0.5.1",
            "    engine:\n      extra:\n        speculative_config: {max_draft_len: 5}\nspeculative: {mode: mtp, draft_len: 3}\n",
            [("DYN128", "error", "pools.agg.engine.extra.speculative_config.max_draft_len")],
        ),
        # the same value: nothing is lost.
        (
            "0.5.1",
            "    engine:\n      extra:\n        speculative_config: {max_draft_len: 3}\nspeculative: {mode: mtp, draft_len: 3}\n",
            [],
        ),
        # a build_config's limits win over the top-level ones there.
        (
            "0.5.1",
            "    engine:\n      max_batch_size: 128\n      extra:\n        build_config: {max_batch_size: 64}\n",
            [("DYN128", "error", "pools.agg.engine.max_batch_size")],
        ),
        # 1.3.0rc29: a differing num_nextn_predict_layers is dropped for max_draft_len.
        (
            "1.6.1",
            "    engine:\n      extra:\n        speculative_config: {num_nextn_predict_layers: 5}\n"
            "speculative: {mode: mtp, draft_len: 3}\n",
            [("DYN128", "error", "pools.agg.engine.extra.speculative_config.num_nextn_predict_layers")],
        ),
        # ... alone, it is read into max_draft_len: a deprecated spelling, the value holds.
        (
            "1.6.1",
            "    engine:\n      extra:\n        speculative_config: {decoding_type: MTP, num_nextn_predict_layers: 3}\n",
            [("DYN129", "warning", "pools.agg.engine.extra.speculative_config.num_nextn_predict_layers")],
        ),
        # Eagle's num_eagle_layers is overwritten with max_draft_len.
        (
            "1.6.1",
            "    engine:\n      extra:\n        speculative_config: {num_eagle_layers: 2}\n"
            "speculative: {mode: eagle3, draft_len: 3, draft_model: d}\n",
            [("DYN128", "error", "pools.agg.engine.extra.speculative_config.num_eagle_layers")],
        ),
        # mamba_state_cache_interval is migrated into mamba_state_config.periodic_snapshot_interval.
        (
            "1.6.1",
            "    engine:\n      extra:\n        kv_cache_config: {mamba_state_cache_interval: 128}\n",
            [("DYN129", "warning", "pools.agg.engine.extra.kv_cache_config.mamba_state_cache_interval")],
        ),
    ],
)
def test_extra_setting_a_losing_key_is_coded(tmp_path: Path, version: str, body: str, expected: list) -> None:
    assert _codes(_spec(tmp_path, AGG + body, version)) == expected


# --- the audit: every pair a reference file notes is declared (or said not to be one) ----------------------

# Words the reference's field_notes use when a validator writes one key's value over another's.
OVERRIDE_WORDS = re.compile(r"overwr|overrid|copied|copies|remap|migrated|wins|forced|ignored|drop|replac", re.I)


@pytest.mark.reference("trtllm-1.1.0rc5-llm-args-keys.json", "trtllm-1.3.0rc2x-llm-args-keys.json")
@pytest.mark.parametrize("version", keys_versions())
def test_every_override_the_reference_notes_is_declared(version: str) -> None:
    data = accepted_keys(version)
    source = REFERENCE / data["source"].split()[0].removeprefix("shared/reference/")
    notes: dict[str, str] = json.loads(source.read_text())["field_notes"]
    cited = {c for p in overrides(version) for c in re.findall(r"field_notes '([^']+)'", p.fact)}
    assert cited <= set(notes), cited - set(notes)  # each pair names the note it was read from
    declared = " ".join([p.key + " " + p.overrides for p in overrides(version)] + list(data.get("not_overrides", {})))
    for field, note in notes.items():
        if not OVERRIDE_WORDS.search(note):
            continue
        leaf = field.split(" ")[0].rsplit(".", 1)[-1]
        assert field in cited or leaf in declared, f"{version}: field_notes {field!r} notes an override: {note}"


def test_the_overrides_document_lists_every_declared_pair() -> None:
    doc = (EXAMPLES.parent / "docs" / "engine-key-overrides.md").read_text()
    for version in keys_versions():
        section = doc.split(f"### TensorRT-LLM {version} ", 1)
        assert len(section) == 2, f"docs/engine-key-overrides.md has no section for {version}"
        body = section[1].split("\n### ", 1)[0]
        assert f"MTP depth: `{speculative_form(version, 'mtp')['depth_key']}`" in section[1].splitlines()[0]
        for pair in overrides(version):
            assert f"| `{pair.key}`" in body and f"| `{pair.overrides}` |" in body, (version, pair)
