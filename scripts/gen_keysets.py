#!/usr/bin/env python3
"""Regenerate dyncc's TensorRT-LLM key sets for the versions the reference transcribed but dyncc did not
(dyncc/engines/trtllm/data/trtllm_<version>_keys.json, the format dyncc/engines/trtllm/keys.py reads).

Input: ../shared/reference/trtllm-<version>-llm-args-keys.json (each version's llm_args.py, read from that
version's rendered docs source) and the reference README's §10 table (which Dynamo releases pin it, how far
to trust it). The key lists are the reference's, mechanically: ``top``, ``nested`` (variant sections as the
union of their classes' keys), ``speculative_config`` per decoding type, and the enums the reference calls a
closed set. The curated parts (engine-key overrides, what is not an override, the MTP and Eagle forms, enum
renames) are claims below: each names the field note that must say it, and is written only where that
version's note does. A claim dyncc's nearest existing key set makes (1.1.0rc5 for 1.2.x, 1.3.0rc29 for 1.3.x)
that this version's reference neither confirms nor contradicts is written to ``uncertain`` instead.
Every file names its source, its trust level and what remains uncertain. Run after the reference changes:

    .venv/bin/python scripts/gen_keysets.py [--reference DIR] [--check]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "dyncc" / "engines" / "trtllm" / "data"
REFERENCE = ROOT.parent / "shared" / "reference"
VERSIONS = ("1.2.0rc2", "1.2.0rc3", "1.2.0rc6.post1", "1.3.0rc11", "1.3.0rc14", "1.3.0rc22")
# dyncc's existing key set the curated claims are checked against: the older neighbour for 1.2 (1.1.0rc5 shares
# its build_config, MTP and Eagle forms), the same line for 1.3.
NEAREST = {"1.2": "1.1.0rc5", "1.3": "1.3.0rc29"}

# The words the reference's field notes use when a validator writes one key's value over another's (the same
# words tests/test_mtp.py audits): every note that uses one is cited by a declared pair or a non-override.
OVERRIDE_WORDS = re.compile(r"overwr|overrid|copied|copies|remap|migrated|wins|forced|ignored|drop|replac", re.I)
# An enum note saying values outside the list pass too, or that matching ignores case: not a closed set, so
# dyncc must not refuse a value the list lacks.
OPEN_ENUM = re.compile(
    r"other strings (pass|are not rejected)|does not reject other strings|any key of _str_to_torch_dtype_dict"
    r"|after lower\(\)|lower-cases|not enforced"
)
EAGLE_TYPES = ("Eagle", "Eagle3")
# Decoding-type spellings across versions: a version lacking one but having the other gets the rename.
SPELLINGS = (("Draft_Target", "DraftTarget"), ("User_Provided", "UserProvided"), ("Eagle3", "Eagle"))
LIMITS = ("max_batch_size", "max_num_tokens", "max_seq_len", "max_beam_width", "max_input_len")


@dataclasses.dataclass(frozen=True)
class Claim:
    """A curated fact, written for a version whose field note (key matching ``notes``) says ``says``."""

    notes: str  # regex over field_notes keys
    says: str  # regex the note's text must match
    value: dict[str, Any]  # an overrides entry, or {"key": ..., "text": ...} for not_overrides
    group: str = ""  # alternatives: one confirmed, the others do not hold
    refuted_by: tuple[str, str] = ("", "")  # (notes key regex, text regex) saying this version does otherwise
    also: tuple[tuple[str, str], ...] = ()  # further notes (key regex, text regex) the fact cites when present


def _pair(key: str, overrides: str, how: str, fact: str, default: Any = "-", when: str = "") -> dict[str, Any]:
    entry: dict[str, Any] = {"key": key, "overrides": overrides, "how": how}
    if default != "-":
        entry["default"] = default
    if when:
        entry["when"] = when  # "MTP" or "Eagle": resolved per version to the decoding types it has
    entry["fact"] = fact
    return entry


SPEC = "speculative_config."
# rc22 on: num_nextn_predict_layers is only a deprecated spelling of max_draft_len, copied nowhere else.
MTP_ALIAS_ONLY = (
    r"^speculative_config\.num_nextn_predict_layers \(MTP\)$",
    r"remaps a user-supplied value to max_draft_len",
)
PAIRS = [
    Claim(
        r"^speculative_config \(MTP\)$",
        r"(sets max_draft_len = num_nextn_predict_layers|copied into max_draft_len)[^.]*",
        _pair(SPEC + "num_nextn_predict_layers", SPEC + "max_draft_len", "always",
              "num_nextn_predict_layers (default 1) is copied over max_draft_len: a YAML max_draft_len alone "
              "becomes 1", default=1, when="MTP"),
        group="mtp-depth",
    ),
    Claim(
        r"^speculative_config\.num_nextn_predict_layers \(MTP\)$",
        r"remaps a user-supplied value to max_draft_len.*drops it if max_draft_len is also set",
        _pair(SPEC + "max_draft_len", SPEC + "num_nextn_predict_layers", "alias",
              "a before-validator remaps num_nextn_predict_layers to max_draft_len with a deprecation warning and "
              "drops it if max_draft_len is also set", when="MTP"),
        group="mtp-depth",
    ),
    Claim(
        r"^speculative_config \(MTP\)$",
        r"copies it into max_draft_len and max_total_draft_tokens when the key is given",
        _pair(SPEC + "num_nextn_predict_layers", SPEC + "max_total_draft_tokens", "when_set",
              "MTPDecodingConfig.__init__ copies a given num_nextn_predict_layers into max_total_draft_tokens",
              when="MTP"),
        group="mtp-total",
        refuted_by=MTP_ALIAS_ONLY,
    ),
    Claim(
        r"^speculative_config \(MTP\)$",
        r"copied into max_draft_len and max_total_draft_tokens",
        _pair(SPEC + "num_nextn_predict_layers", SPEC + "max_total_draft_tokens", "always",
              "num_nextn_predict_layers (default 1) is copied into max_total_draft_tokens too", default=1,
              when="MTP"),
        group="mtp-total",
        refuted_by=MTP_ALIAS_ONLY,
    ),
    Claim(
        r"^speculative_config(\.num_eagle_layers)? \(Eagle(/Eagle3)?\)$",
        r"copies it into num_eagle_layers|num_eagle_layers( and max_total_draft_tokens)? (is|are) overwritten with "
        r"max_draft_len|^deprecated TensorRT-only; overwritten with max_draft_len",
        _pair(SPEC + "max_draft_len", SPEC + "num_eagle_layers", "always",
              "num_eagle_layers is overwritten with max_draft_len (Eagle needs max_draft_len)", default=None,
              when="Eagle"),
    ),
    Claim(
        r"^speculative_config \(Eagle(/Eagle3)?\)$",
        r"copies it into num_eagle_layers and max_total_draft_tokens|num_eagle_layers and max_total_draft_tokens "
        r"are overwritten with max_draft_len",
        _pair(SPEC + "max_draft_len", SPEC + "max_total_draft_tokens", "always",
              "max_total_draft_tokens is overwritten with max_draft_len", default=None, when="Eagle"),
    ),
    *(
        Claim(
            r"^build_config$",
            r"A TorchLlmArgs FIELD at this version.*copied over the top-level one",
            _pair(f"build_config.{limit}", limit, "when_set",
                  f"set_runtime_knobs_from_build_config (backend pytorch) copies build_config's {limit} over the "
                  "top-level one whenever it is not None, with only a warning"),
            also=((rf"^{limit}$", rf"overwritten by build_config\.{limit}"),),
        )
        for limit in LIMITS
    ),
    Claim(
        r"^kv_cache_config\.mamba_state_cache_interval$",
        r"migrated into mamba_state_config",
        _pair("kv_cache_config.mamba_state_config.periodic_snapshot_interval",
              "kv_cache_config.mamba_state_cache_interval", "alias",
              "mamba_state_cache_interval is deprecated and migrated into mamba_state_config.periodic_snapshot_interval"),
        refuted_by=(r"^kv_cache_config\.mamba_state_cache_interval$", r"no mamba_state_config"),
    ),
]  # fmt: skip


def _not(key: str, text: str) -> dict[str, str]:
    return {"key": key, "text": text}


CUDA_PAIR = "cuda_graph_config.batch_sizes / cuda_graph_config.max_batch_size"
NOT_OVERRIDES = [
    Claim(r"^cuda_graph_config$", r"must equal the generated list",
          _not(CUDA_PAIR, "both set: ValueError unless batch_sizes is the generated list (a start-up failure, "
               "DYN121), not an override; batch_sizes alone sets max_batch_size to their largest")),
    Claim(r"^cuda_graph_config$", r"max_batch_size must equal max\(batch_sizes\)",
          _not(CUDA_PAIR, "both set: max_batch_size must equal max(batch_sizes) or ValueError (DYN110), not an "
               "override; batch_sizes alone sets max_batch_size to their largest")),
    Claim(r"^checkpoint_format", r"checkpoint_loader is dropped",
          _not("checkpoint_format / checkpoint_loader", "checkpoint_loader is an object (no YAML value), dropped "
               "when checkpoint_format is also given; checkpoint_format becomes HF when both are unset (a default)")),
    Claim(r"^lora_config$", r"enable_lora ignored when lora_config is given",
          _not("enable_lora / lora_config", "enable_lora is ignored (a warning) when lora_config is given: "
               "lora_config decides, no value is copied")),
    Claim(r"^max_batch_size$", r"copies BuildConfig's own default back",
          _not("max_batch_size", "unset, it takes BuildConfig's default back (a default, nothing set is lost); a "
               "set build_config.max_batch_size wins (the build_config pair)")),
    Claim(r"^build_config$", r"NOT a TorchLlmArgs or BaseLlmArgs field",
          _not("build_config", "no TorchLlmArgs field here (DYN108 refuses it): the YAML loader still builds one "
               "and copies the top-level max_* keys into it ('ignored in PyTorch backend'), so those keep their "
               "values; whether llm.py drops the key or TorchLlmArgs refuses it is unverified")),
    Claim(r"^build_config / quant_config", r"TrtLlmArgs fields only",
          _not("build_config / quant_config / calib_config / enable_build_cache", "TrtLlmArgs fields only (DYN108 "
               "refuses them): the loader's copies of the top-level max_* keys into build_config are 'ignored in "
               "PyTorch backend', so those keep their values")),
    Claim(r"^backend$", r"TorchLlmArgs overrides it as",
          _not("backend", "'overrides' is TorchLlmArgs redeclaring the field as Literal['pytorch']: no value is "
               "replaced")),
    Claim(r"^custom_tokenizer$", r"ignored when skip_tokenizer_init",
          _not("custom_tokenizer", "ignored when skip_tokenizer_init is set: no other key takes its value")),
    Claim(r"^model_kwargs$", r"overrides model config values",
          _not("model_kwargs", "overrides the checkpoint's config.json values, not engine keys")),
    Claim(r"^speculative_config\.acceptance_window", r"drops below the threshold",
          _not("speculative_config.acceptance_window / acceptance_length_threshold", "'drops' is the acceptance "
               "length falling below the threshold (speculation turns off): no key's value is replaced")),
    Claim(r"^sparse_attention_config \(skip_softmax\)$", r"target_sparsity is ignored if threshold_scale_factor",
          _not("sparse_attention_config.target_sparsity / threshold_scale_factor", "target_sparsity is left "
               "unused when threshold_scale_factor is set: nothing is copied, so no pair (DYN128 does not report "
               "it)")),
    Claim(r"^telemetry_config$", r"drops a non-dict YAML value",
          _not("telemetry_config", "the loader deep-merges it with the CLI's, drops a non-mapping YAML value and "
               "pops usage_context: no engine key's value is written over another")),
    Claim(r"^speculative_config(\.mtp_eagle_one_model / eagle3_one_model| \(Eagle/Eagle3\))$",
          r"not forced back to True|False only warns",
          _not("speculative_config.eagle3_one_model / mtp_eagle_one_model", "false is honoured with a "
               "deprecation warning (two-model), not forced back to true")),
    Claim(r"^kv_cache_config\.sink_token_length$", r"ignored on the PyTorch backend",
          _not("kv_cache_config.sink_token_length", "deprecated and ignored on PyTorch: nothing else takes its "
               "value")),
    Claim(r"^kv_cache_config\.block_reuse_policy$", r"replaced it with block_reuse_config",
          _not("kv_cache_config.block_reuse_policy", "'replaced' is a later version's block_reuse_config; an "
               "ordinary field here")),
    Claim(r"^speculative_config \(UserProvided\)$", r"no supports_backend override",
          _not("speculative_config (UserProvided)", "'override' is a method (supports_backend), not a key")),
]  # fmt: skip

# The MTP and Eagle forms: which note says whether eagle3_one_model: false is honoured (two-model Eagle runs).
TWO_MODEL_HONOURED = (
    r"^speculative_config(\.decoding_type|\.mtp_eagle_one_model / eagle3_one_model| \(Eagle/Eagle3\))$",
    r"EAGLE3_ONE_MODEL when eagle3_one_model else EAGLE3|spec_dec_mode EAGLE3 / EAGLE3_ONE_MODEL"
    r"|False only warns 'Eagle3 2-model|not forced back to True",
)
TWO_MODEL_FORCED = r"(?<!not )forced back to true"


def cite(notes: list[str]) -> str:
    return "(" + ", ".join(f"field_notes '{n}'" for n in notes) + ")"


class Version:
    """One version's reference file and what the generator derives from it."""

    def __init__(self, version: str, reference: Path) -> None:
        self.version = version
        self.file = f"trtllm-{version}-llm-args-keys.json"
        self.ref: dict[str, Any] = json.loads((reference / self.file).read_text(encoding="utf-8"))
        self.line = ".".join(version.split(".")[:2])
        self.uncertain: list[str] = []

    def note_matches(self, claim: Claim) -> list[str]:
        return [
            k
            for k, text in self.ref["field_notes"].items()
            if re.search(claim.notes, k) and re.search(claim.says, text)
        ]

    def refuted(self, claim: Claim) -> bool:
        keys, says = claim.refuted_by
        return bool(says) and any(re.search(keys, k) and re.search(says, t) for k, t in self.ref["field_notes"].items())


def keys_of(ref: dict[str, Any]) -> dict[str, Any]:
    """top, nested, speculative_config and the variant sections, in dyncc's shape."""
    nested: dict[str, list[str]] = {}
    speculative: dict[str, list[str]] = {}
    unlisted: dict[str, str] = {}
    encode: list[str] = []
    for section, keys in ref["nested"].items():
        if section == "speculative_config":
            for form, fields in keys.items():
                if form.startswith("_sa_config"):
                    nested["speculative_config.sa_config"] = sorted(fields)
                elif not form.startswith("_"):  # _DecodingBaseConfig_inherited: already in every form
                    speculative[form.split(" (")[0]] = sorted(fields)
        elif section == "cuda_graph_config(mode=encode)":
            encode = keys  # one section whose before-validator picks decode or encode mode from the keys given
        elif isinstance(keys, dict):  # a section whose class a discriminator picks: any class's keys
            nested[section] = sorted({k for fields in keys.values() for k in fields})
        elif isinstance(keys, list):
            nested[section] = sorted(keys)
        else:
            unlisted[section] = keys
    if encode:
        nested["cuda_graph_config"] = sorted(set(nested["cuda_graph_config"]) | set(encode))
    top = sorted(ref["top"])
    return {"top": top, "nested": dict(sorted(nested.items())), "speculative": speculative, "unlisted": unlisted}


def has_key(shape: dict[str, Any], dotted: str, forms: list[str]) -> bool:
    """Whether ``dotted`` names a key this version's lists hold (a section they do not list counts as holding)."""
    parts = dotted.split(".")
    if parts[0] == "speculative_config":
        return any(parts[1] in shape["speculative"].get(f, []) for f in forms)
    if parts[0] not in shape["top"]:
        return False
    for depth in range(1, len(parts)):
        listed = shape["nested"].get(".".join(parts[:depth]))
        if listed is None:
            return True
        if parts[depth] not in listed:
            return False
    return True


def enums_of(v: Version, shape: dict[str, Any]) -> tuple[dict[str, list], dict[str, str]]:
    """The closed enums (dyncc refuses other values) and the rest with why dyncc does not check them."""
    closed: dict[str, list] = {}
    unchecked: dict[str, str] = {}
    notes, enum_notes = v.ref["field_notes"], v.ref.get("enum_notes", {})
    for name, values in v.ref["enums"].items():
        key = name.removesuffix(" (TorchLlmArgs)")  # TorchLlmArgs' own type for the field
        section, _, leaf = key.rpartition(".")
        said = " ".join(filter(None, [enum_notes.get(name), notes.get(key)]))
        if re.search(r"Union\[str, ", notes.get(key, "")):
            said += " (typed Union[str, ...]: any string passes pydantic)"
        parent = notes.get(section, "")
        if leaf and "case-insensitive" in parent and leaf in parent:
            said += f" ({section}: {leaf} is case-insensitive)"
        if key == "load_format":
            unchecked[name] = "matched in any case (upper()-cased before lookup): " + str(values)
        elif " " in key or "[" in key:
            unchecked[name] = f"not a plain key's closed set (the reference qualifies it): {values}"
        elif OPEN_ENUM.search(said) or "any string passes" in said or "case-insensitive)" in said:
            unchecked[name] = f"the reference names {values}, not a closed set: {said.strip()}"
        else:
            closed[key] = list(values)
    return dict(sorted(closed.items())), unchecked


def pytorch_refused(v: Version) -> list[str]:
    """Decoding types that parse but TorchLlmArgs refuses on the PyTorch backend (the only one Dynamo runs)."""
    text = " ".join([*v.ref["field_notes"].values(), *v.ref.get("enum_notes", {}).values()])
    said = re.search(r"(Medusa and Lookahead|Lookahead and Medusa)[^.]*fail supports_backend on PyTorch", text)
    return ["Lookahead", "Medusa"] if said else []


def _forms(entry: dict[str, Any], shape: dict[str, Any]) -> list[str]:
    """The decoding types a pair's ``when`` names in this version ("MTP"; "Eagle": Eagle and Eagle3 if present)."""
    when = entry.get("when", "")
    return {"MTP": ["MTP"], "Eagle": [t for t in EAGLE_TYPES if t in shape["speculative"]], "": []}[when]


def confirmed(v: Version, shape: dict[str, Any]) -> list[tuple[Claim, list[str]]]:
    """The pair claims this version's notes say (first of each group), with the notes that say them."""
    found, groups = [], set()
    for claim in PAIRS:
        entry = claim.value
        notes = v.note_matches(claim)
        if not notes or (claim.group and claim.group in groups):
            continue
        if not all(has_key(shape, k, _forms(entry, shape)) for k in (entry["key"], entry["overrides"])):
            continue  # a key this version does not have: the pair cannot hold
        groups.add(claim.group)
        found.append((claim, notes[:1] + [k for p, says in claim.also for k in v.note_matches(Claim(p, says, {}))]))
    return found


def ident(entry: dict[str, Any]) -> tuple[str, str, str]:
    return entry["key"], entry["overrides"], entry["how"]


def derive_pairs(v: Version, shape: dict[str, Any], nearest: dict[str, Any], siblings: list[Version]) -> tuple:
    """The overrides entries this version's notes confirm, the non-overrides, and the notes each cites."""
    said = confirmed(v, shape)
    written, cited = [], []
    for claim, notes in said:
        entry = dict(claim.value)
        forms = _forms(entry, shape)
        if forms:
            entry["when"] = {"speculative_config.decoding_type": forms}
        entry["fact"] = f"{entry['fact']} {cite(notes)}"
        written.append(entry)
        cited += notes
    # A pair the nearest dyncc key set declares, or another version of this line confirms, that this version's
    # notes neither say nor contradict (no group alternative said, both keys exist, no refuting note): uncertain.
    assert {ident(p) for p in nearest.get("overrides", [])} <= {ident(c.value) for c in PAIRS}, v.version
    elsewhere = {f"dyncc's TensorRT-LLM {nearest['version']} key set": {ident(p) for p in nearest.get("overrides", [])}}
    for sibling in siblings:
        elsewhere[f"TensorRT-LLM {sibling.version}'s reference"] = {
            ident(c.value) for c, _ in confirmed(sibling, keys_of(sibling.ref))
        }
    groups = {c.group for c, _ in said if c.group}
    for claim in PAIRS:
        entry = claim.value
        keys_exist = all(has_key(shape, k, _forms(entry, shape)) for k in (entry["key"], entry["overrides"]))
        if claim in [c for c, _ in said] or not keys_exist or v.refuted(claim) or claim.group in groups - {""}:
            continue
        where = [name for name, idents in elsewhere.items() if ident(entry) in idents]
        if where:
            v.uncertain.append(
                f"not declared: `{entry['key']}` {entry['how']} over `{entry['overrides']}`, which "
                f"{' and '.join(where)} declare{'s' if len(where) == 1 else ''}; this version's reference does not "
                "say so"
            )
    not_overrides: dict[str, str] = {}
    for claim in NOT_OVERRIDES:
        found = v.note_matches(claim)
        if found and claim.value["key"] not in not_overrides:
            not_overrides[claim.value["key"]] = f"{claim.value['text']} {cite(found[:1])}"
            cited += found[:1]
    return written, not_overrides, cited


def audit(v: Version, cited: list[str]) -> None:
    """Every field note describing an override is cited by a declared pair or a non-override."""
    loose = [k for k, text in v.ref["field_notes"].items() if OVERRIDE_WORDS.search(text) and k not in cited]
    if loose:
        raise SystemExit(f"{v.version}: field notes that read like overrides are not declared: {loose}")


def forms_of(v: Version, shape: dict[str, Any], pairs: list[dict], closed: dict[str, list]) -> dict[str, Any]:
    """How this version spells MTP and Eagle speculation (what dyncc writes for a spec's `speculative`)."""
    types = closed["speculative_config.decoding_type"]
    eagle = "Eagle3" if "Eagle3" in types else "Eagle"
    fields = shape["speculative"][eagle]
    model_key = "speculative_model" if "speculative_model" in fields else "speculative_model_dir"
    if not {model_key, "eagle3_one_model", "max_draft_len"} <= set(fields):
        raise SystemExit(f"{v.version}: {eagle} lacks a key dyncc writes for Eagle: {sorted(fields)}")
    notes = v.ref["field_notes"]
    keys, says = TWO_MODEL_HONOURED
    honoured = [k for k, t in notes.items() if re.search(keys, k) and re.search(says, t)]
    forced = [k for k, t in notes.items() if re.search(TWO_MODEL_FORCED, t, re.I) and "one_model" in t]
    if bool(honoured) == bool(forced):
        raise SystemExit(f"{v.version}: the notes do not say whether eagle3_one_model: false is honoured")
    mtp_pairs = [p for p in pairs if "MTP" in p.get("when", {}).get("speculative_config.decoding_type", [])]
    depth = next(p for p in mtp_pairs if SPEC + "max_draft_len" in (p["key"], p["overrides"]))
    depth_key = depth["key"].removeprefix(SPEC)
    mtp_fields = shape["speculative"]["MTP"]
    return {
        "eagle": {
            "decoding_type": eagle,
            "model_key": model_key,
            "one_model_key": "eagle3_one_model",
            "two_model_honoured": bool(honoured),
            "fact": f"decoding_type {eagle} (the types are {', '.join(types)}); eagle3_one_model: false "
            f"{'runs two-model Eagle3' if honoured else 'is forced back to true'} {cite(honoured or forced)}",
        },
        "mtp": {
            "depth_key": depth_key,
            "fact": depth["fact"],
            "thinking_token_keys": sorted(k for k in mtp_fields if "thinking_phase_token" in k.lower()),
        },
    }


def trust_of(reference: Path, v: Version) -> tuple[str, list[str]]:
    """The README §10 row for this file: its trust level and the Dynamo releases that pin this version."""
    for line in (reference / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1] == v.version and f"`{v.file}`" in cells[2]:
            return cells[2].split(" — ", 1)[1], [r.strip() for r in cells[0].split(",")]
    raise SystemExit(f"README.md §10 has no row for {v.file}")


def build(version: str, reference: Path) -> dict[str, Any]:
    v = Version(version, reference)
    nearest_version = NEAREST[v.line]
    nearest = json.loads((DATA / f"trtllm_{nearest_version}_keys.json").read_text(encoding="utf-8"))
    shape = keys_of(v.ref)
    closed, unchecked = enums_of(v, shape)
    refused = pytorch_refused(v)
    types = closed["speculative_config.decoding_type"]
    closed["speculative_config.decoding_type"] = [t for t in types if t not in refused]
    speculative = {k: shape["speculative"][k] for k in sorted(shape["speculative"]) if k not in refused}
    siblings = [Version(x, reference) for x in VERSIONS if x != version and x.startswith(v.line + ".")]
    pairs, not_overrides, cited = derive_pairs(v, shape, nearest, siblings)
    audit(v, cited)
    forms = forms_of(v, shape, pairs, closed)
    trust, pinned_by = trust_of(reference, v)
    source = v.ref["source"]
    footer = re.search(r"generated by TensorRT-LLM commit (\w+)", source["version_claim"])
    aliases = {k: t.split(" (")[0] for k, t in v.ref.get("nested_aliases", {}).items()}
    if "setdefault('revision', llm_args_dict.pop('hf_revision'))" in v.ref.get("yaml_loader_renames", {}).get(
        "hf_revision", ""
    ):
        aliases["hf_revision"] = "revision"  # the --extra-engine-args loader renames it before validation
    renamed = {old: new for a, b in SPELLINGS for old, new in ((a, b), (b, a)) if new in types and old not in types}
    removed = {
        t: "parses, but TorchLlmArgs refuses it on the PyTorch backend ('Speculation type ... does not support "
        "backend pytorch'), the only one Dynamo runs (reference enum_notes 'speculative_config.decoding_type')"
        for t in refused
    }
    data: dict[str, Any] = {
        "version": version,
        "source": f"shared/reference/{v.file} (scripts/gen_keysets.py)",
        "trust": f"reference README §10: {trust}",
        "pinned_by_dynamo": pinned_by,
        "checked_against": f"TensorRT-LLM {version}: llm_args.py as the Sphinx-rendered source of the {version} docs "
        f"build ({source['path'].split(' ')[0]}, index commit {source['commit']}"
        + (f"; page footer: TensorRT-LLM commit {footer.group(1)}" if footer else "")
        + ")",
        "note": f"Keys TensorRT-LLM {version}'s TorchLlmArgs accepts (extra=forbid), the TensorRT-LLM ai-dynamo "
        f"{', '.join(pinned_by)} pin{'s' if len(pinned_by) == 1 else ''}; generated, not edited by hand.",
        "curated": "top, nested, speculative_config and enums are the reference's lists: a section whose class a "
        "discriminator picks (sparse_attention_config, cuda_graph_config's decode/encode modes) holds every "
        "class's keys, speculative_config.sa_config is SAEnhancerConfig, decoding types TorchLlmArgs refuses on "
        "PyTorch are removed_enum_values, and an enum the reference says is open (other values pass, case "
        "ignored) is in enums_not_checked. overrides, not_overrides, speculative_forms and "
        "cuda_graph_sizes_and_max_exclusive are claims in scripts/gen_keysets.py, each written only where this "
        "version's field note says it (the fact cites the note); renamed_enum_values follow the decoding types "
        "this version lists.",
        "top": shape["top"],
        "nested": shape["nested"],
        "enums": closed,
        "enums_not_checked": unchecked,
        "speculative_config": speculative,
        "speculative_forms": forms,
        "aliases": dict(sorted(aliases.items())),
        "renamed_enum_values": {"speculative_config.decoding_type": renamed} if renamed else {},
        "removed_enum_values": {"speculative_config.decoding_type": removed} if removed else {},
    }
    exclusive = v.note_matches(Claim(r"^cuda_graph_config$", r"must equal the generated list", {}))
    if exclusive:
        data["cuda_graph_sizes_and_max_exclusive"] = (
            "CudaGraphConfig's validator: with batch_sizes and a non-zero max_batch_size both set, batch_sizes "
            f"must equal the list it generates for that max_batch_size, else ValueError {cite(exclusive)}"
        )
    data["overrides"] = pairs
    data["not_overrides"] = not_overrides
    data["nearest_key_set"] = nearest_version
    data["uncertain"] = uncertain(v, shape, unchecked, nearest, data)
    return data


def uncertain(v: Version, shape: dict, unchecked: dict, nearest: dict, data: dict) -> list[str]:
    found = list(v.uncertain)
    for section, text in shape["unlisted"].items():
        found.append(f"{section}: its keys are not listed by the reference ({text}); dyncc does not check them")
    for name, why in unchecked.items():
        found.append(f"enum {name}: dyncc does not refuse other values; {why}")
    carried = set(data) | {"types", "types_defaults", "types_notes", "types_source", "types_uncertain"}
    if "types" in nearest:
        found.append(
            "value types (types, types_defaults, ...) were transcribed by hand for 1.1.0rc5 and 1.3.0rc29 only: "
            "none here, so DYN114 checks this version's engine values against the nearest typed key set's types, "
            "as a warning naming that version"
        )
    for field in sorted(set(nearest) - carried - {"types_variants", "types_placeholders", "types_fallbacks"}):
        value = nearest[field]
        shown = f" ({', '.join(map(str, value))})" if isinstance(value, list) else ""
        found.append(
            f"{field}{shown}, in dyncc's TensorRT-LLM {nearest['version']} key set, is not stated by this reference: "
            "not carried (the rules reading it do not apply to this version)"
        )
    found += [f"reference uncertain.{k}: {text}" for k, text in v.ref.get("uncertain", {}).items()]
    return found


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=REFERENCE, help="the reference folder (README.md §10)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a file differs from what would be written")
    args = parser.parse_args(argv)
    stale = []
    for version in VERSIONS:
        path = DATA / f"trtllm_{version}_keys.json"
        text = render(build(version, args.reference))
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"out of date (run scripts/gen_keysets.py): {', '.join(stale)}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
