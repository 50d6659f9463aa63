"""Load a spec from YAML, keeping every value's file:line:col.

The file is read and parsed through :mod:`dyncc.spec.input_gate` (bounded, regular files only), whose
:class:`SourceMap` locates every value, so any later step (pydantic here, graph rules in the compiler) can
point at the exact value it complains about. The tree is converted to plain Python before validation so
pydantic's strict mode sees ordinary ``int``/``str``/``dict`` values.
"""

from __future__ import annotations

import datetime
import difflib
import errno
import json
import math
import os
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union

import msgspec
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from dyncc.diagnostics import Diagnostic, DiagnosticError, YamlPath, format_yaml_path
from dyncc.facts import KnownModel, ModelArch, NotEnoughFacts, arch_from_config, known_model
from dyncc.facts.heads import read_heads
from dyncc.facts.stated import apply_stated_facts
from dyncc.spec.chat_template import read_chat_template
from dyncc.spec.deprecations import upgrade
from dyncc.spec.input_gate import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_SPEC_BYTES,
    MAX_TOKENS,
    MAX_VALUES,
    SPEC,
    SourceMap,
    UnreadableFile,
    load_yaml_data,
    parse_yaml,
    read_input,
    read_regular,
)
from dyncc.spec.model import API_VERSION, DNS_LABEL, CoreSpec

# The bounded reading and parsing live in dyncc.spec.input_gate (every file dyncc reads goes through it);
# these names stay importable from here.
__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_SPEC_BYTES",
    "MAX_TOKENS",
    "MAX_VALUES",
    "LoadedSpec",
    "ModelFacts",
    "SourceMap",
    "load_spec",
    "load_spec_text",
    "load_yaml_data",
    "parse_yaml",
    "read_spec_bytes",
]
MAX_CONFIG_JSON_BYTES = 16 * 1024 * 1024  # a checkpoint's config.json is a few KB

# The caller's choice of the model that validates a spec's (upgraded) data.
ModelFor = Callable[[dict[str, Any]], type[CoreSpec]]

# Keys people bring from other tools; mapped to ours in did-you-mean hints.
KEY_SYNONYMS = {
    "tp": "tensor_parallel",
    "tensor_parallel_size": "tensor_parallel",
    "pp": "pipeline_parallel",
    "pipeline_parallel_size": "pipeline_parallel",
    "ep": "expert_parallel",
    "moe_expert_parallel_size": "expert_parallel",
    "enable_attention_dp": "attention_dp",
    "dp": "attention_dp",
    "served_model_name": "served_name",
    "model_path": "path",
    "num_replicas": "replicas",
    "router_mode": "mode",
    "migration_limit": "limit",
    "cache_transceiver_config": "kv_transfer",
    "disable_overlap_scheduler": "overlap_scheduler",
    "cuda_graph_config": "cuda_graphs",
    "api_version": "apiVersion",
}


class ModelFacts(msgspec.Struct, frozen=True):
    """What rules know of the checkpoint, and where each fact came from (``spec``, ``config.json``)."""

    moe: bool | None = None
    num_experts: int | None = None
    mtp_layers: int | None = None
    # Query and KV heads per layer, and whether attention is MLA: from the spec, else config.json, else dyncc's
    # table of well-known models (dyncc.facts.heads), each naming its origin in ``source``.
    attention_heads: int | None = None
    kv_heads: int | None = None
    mla: bool | None = None
    local_dir: str | None = None  # the checkpoint directory, when model.path names one on this machine
    chat_template: str | None = None  # the text of model.chat_template, read from beside the spec
    source: dict[str, str] = msgspec.field(default_factory=dict)
    # The checkpoint's size and shape for the GPU memory check (DYN140): from config.json, dyncc's table of
    # well-known models, or model.facts; None (with the reason in arch_source) when none says enough.
    arch: ModelArch | None = None
    arch_source: str = ""


class LoadedSpec(msgspec.Struct, frozen=True):
    spec: Any  # an instance of the composed model: CoreSpec plus each target's section
    source: SourceMap
    facts: ModelFacts
    base_dir: Path
    # Warnings from reading the file itself, before any rule: old spec forms read as their new form (DYN021).
    notices: tuple[Diagnostic, ...] = ()
    # Values the command line set over the file's (`--dynamo-version 1.5.1` sets `dynamo`): (path, option).
    given: tuple[tuple[YamlPath, str], ...] = ()

    @property
    def file(self) -> str:
        return self.source.file

    def located(self, diagnostic: Diagnostic) -> Diagnostic:
        """``diagnostic`` at the file:line:col of its spec path; about a value the command line gave, it names
        the option instead and points at no line (the file's line holds another value, or none)."""
        for path, option in self.given:
            if diagnostic.path[: len(path)] == path:
                return msgspec.structs.replace(diagnostic, location=None, message=f"{option}: {diagnostic.message}")
        return diagnostic.located(self.source.locate(diagnostic.path, at_key=diagnostic.about_key))

    def setting(self, path: YamlPath, option: str, **update: Any) -> LoadedSpec:
        """The spec with top-level ``update`` applied, given by the command line's ``option`` at ``path``."""
        spec = self.spec.model_copy(update=update)
        return msgspec.structs.replace(self, spec=spec, given=(*self.given, (path, option)))


def load_spec(path: str | Path, *, model_for: ModelFor) -> LoadedSpec:
    """Read and validate one spec file against the model ``model_for`` gives for its data; raises
    :class:`DiagnosticError` with located diagnostics. The model is the caller's: this package knows what a
    deployment is, not which targets' sections a spec may hold, so the whole model
    (``dyncc.deployment.deployment_model``) is built above it and ``dyncc.deployment.load_spec`` is what the
    rest of dyncc calls."""
    path = Path(path)
    return load_spec_text(read_spec_bytes(path), str(path), base_dir=path.parent, model_for=model_for)


def read_spec_bytes(path: Path) -> bytes:
    """The spec file's bytes, through the input gate: a regular file of at most ``MAX_SPEC_BYTES`` (DYN002
    for one that cannot be read, DYN001 for one too large)."""
    return read_input(path, SPEC)


def load_spec_text(
    raw: bytes | str, file: str = "<string>", base_dir: Path | None = None, *, model_for: ModelFor
) -> LoadedSpec:
    data, source = load_yaml_data(raw, file)
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN003",
                    f"a spec is a YAML mapping; this document is {kind}",
                    hint=f"start from a file in examples/ (first key: `apiVersion: {API_VERSION}`)",
                    location=source.locate(()),
                )
            ]
        )
    upgraded = upgrade(data)
    notices = list(source.notes) + [d.located(source.locate(d.path, at_key=True)) for d in upgraded.diagnostics]
    if any(d.is_error for d in notices):
        raise DiagnosticError(notices)
    model = model_for(upgraded.data)
    try:
        spec = model.model_validate(upgraded.data)
    except ValidationError as exc:
        found = _diagnostics_from_validation(exc, source, model)
        raise DiagnosticError(notices + [_at_old_form(d, upgraded.moves, source) for d in found]) from None
    base = base_dir if base_dir is not None else Path.cwd()
    facts = read_model_facts(spec, base, source)
    return LoadedSpec(spec=spec, source=source, facts=facts, base_dir=base, notices=tuple(notices))


def _at_old_form(diagnostic: Diagnostic, moves: tuple[tuple[YamlPath, YamlPath], ...], source: SourceMap) -> Diagnostic:
    """A problem with a value that an old form supplied, located where the file wrote it."""
    for old, new in moves:
        if diagnostic.path[: len(new)] == new:
            return diagnostic.located(source.locate(old + diagnostic.path[len(new) :]))
    return diagnostic


# --- pydantic errors -> diagnostics ------------------------------------------------------------

# A pattern as the rule it states, for the message and the hint: a reader should not have to decode a regex.
PATTERN_WORDS = {
    DNS_LABEL: "a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit",
}

_RANGE_ERRORS = {
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
    "string_too_short",
    "string_too_long",
    "string_pattern_mismatch",
    "too_short",
    "too_long",
    "value_error",
    "finite_number",
    "multiple_of",
}


def _diagnostics_from_validation(exc: ValidationError, source: SourceMap, model: type[CoreSpec]) -> list[Diagnostic]:
    diagnostics = []
    for error in exc.errors(include_url=False):
        loc = tuple(part for part in error["loc"] if part != "[key]")
        key_error = "[key]" in error["loc"]
        diagnostics.append(_diagnostic_for(error, loc, key_error, source, model))
    return sorted(
        set(diagnostics), key=lambda d: (d.location.line, d.location.column, d.code) if d.location else (0, 0, d.code)
    )


def _diagnostic_for(
    error: ErrorDetails, loc: YamlPath, key_error: bool, source: SourceMap, model: type[CoreSpec]
) -> Diagnostic:
    kind = error["type"]
    msg = error["msg"]
    where = format_yaml_path(loc)
    if kind == "extra_forbidden":
        key = str(loc[-1])
        valid = _valid_keys(model, loc[:-1])
        suggestion = _did_you_mean(key, valid)
        hint = f"did you mean `{suggestion}`?" if suggestion else None
        if valid:
            hint = (hint + " " if hint else "") + "allowed here: " + ", ".join(sorted(valid))
        return Diagnostic(
            "DYN010", f"unknown key `{key}`", path=loc, hint=hint, location=source.locate(loc, at_key=True)
        )
    if kind == "missing":
        parent = loc[:-1]
        return Diagnostic(
            "DYN011",
            f"missing required key `{loc[-1]}`",
            path=loc,
            hint=f"add `{loc[-1]}:` " + (f"under {format_yaml_path(parent)}" if parent else "at the top level"),
            location=source.locate(parent),
        )
    if loc == ("apiVersion",) and kind == "literal_error":
        return Diagnostic(
            "DYN004",
            f"unsupported apiVersion {error.get('input')!r}",
            path=loc,
            hint=f"this dyncc reads `apiVersion: {API_VERSION}`",
            location=source.locate(loc),
        )
    if kind in ("literal_error", "enum"):
        allowed = _literal_values(model, loc)
        value = error.get("input")
        suggestion = _did_you_mean(str(value), [str(a) for a in allowed]) if isinstance(value, str) else None
        hint = f"did you mean `{suggestion}`? " if suggestion else ""
        hint += "one of: " + ", ".join(str(a) for a in allowed) if allowed else msg
        return Diagnostic(
            "DYN014",
            f"{where}: {value!r:.80} is not an accepted value",
            path=loc,
            hint=hint,
            location=source.locate(loc),
        )
    if kind in _RANGE_ERRORS:
        text = msg.removeprefix("Value error, ")
        rule = PATTERN_WORDS.get(str(error.get("ctx", {}).get("pattern")))
        if kind == "string_pattern_mismatch" and rule:
            text = f"{error.get('input')!r:.80} is not {rule}"
        if key_error:
            text = f"key {loc[-1]!r:.80} is invalid: {text}"
        return Diagnostic(
            "DYN013",
            f"{where}: {text}",
            path=loc,
            hint=_range_hint(kind, error),
            location=source.locate(loc, at_key=key_error),
        )
    value = error.get("input")
    got = type(value).__name__ if value is not None else "null"
    return Diagnostic(
        "DYN012",
        f"{where}: {msg.lower()} (got {got})",
        path=loc,
        hint=_type_hint(kind, value),
        location=source.locate(loc),
    )


# pydantic's error type -> what the field takes.
_EXPECTED = {
    "int_type": "whole number",
    "int_parsing": "whole number",
    "int_from_float": "whole number",
    "float_type": "number",
    "float_parsing": "number",
    "string_type": "string",
    "bool_type": "boolean",
    "bool_parsing": "boolean",
    "dict_type": "mapping",
    "model_type": "mapping",
    "model_attributes_type": "mapping",
    "list_type": "list",
}


def _type_hint(kind: str, value: Any) -> str:
    """What to write instead, from what was given and what the field takes: a number written as a string
    loses its quotes, a string YAML read as a number gains them."""
    expected = _EXPECTED.get(kind)
    if value is None:
        return "give a value, or leave the key out for its default"
    if expected in ("whole number", "number"):
        if isinstance(value, str):
            number = _number(value)
            if number is not None and (expected == "number" or isinstance(number, int)):
                return f"remove the quotes: {value.strip()} is a number here, not a string"
            return f"write a {expected} without quotes"
        if isinstance(value, float) and expected == "whole number":
            return f"write {int(value)}" if value.is_integer() else "write a whole number"
        return f"write a {expected}" + (" (true/false are not numbers)" if isinstance(value, bool) else "")
    if expected == "string" and isinstance(value, float):
        return "quote it as written: unquoted, YAML reads it as a number (1.10 would become 1.1)"
    if expected == "string" and isinstance(value, (bool, int, datetime.date)):
        shown = value.isoformat() if isinstance(value, datetime.date) else str(value).lower()
        noun = "a boolean" if isinstance(value, bool) else "a number" if isinstance(value, int) else "a date"
        return f'quote it: "{shown}" (unquoted, YAML reads it as {noun})'
    if expected == "boolean":
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return f"remove the quotes: write {value.strip().lower()}"
        return "write true or false"
    if expected == "mapping":
        return "write a mapping here: `key: value` entries, indented under the key"
    if expected == "list":
        return "write a list here: `[a, b]` or one `- item` per line"
    return "check the value's type" + (f": a {expected} here" if expected else "")


def _number(text: str) -> int | float | None:
    try:
        return int(text.strip())
    except ValueError:
        pass
    try:
        number = float(text.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _range_hint(kind: str, error: ErrorDetails) -> str:
    ctx = error.get("ctx", {})
    bounds = {
        "greater_than": "above {gt}",
        "greater_than_equal": "of at least {ge}",
        "less_than": "below {lt}",
        "less_than_equal": "of at most {le}",
        "string_too_short": "of at least {min_length} character(s)",
        "string_too_long": "of at most {max_length} characters",
        "too_short": "with at least {min_length} item(s)",
        "too_long": "with at most {max_length} items",
        "multiple_of": "that is a multiple of {multiple_of}",
    }
    if kind in bounds:
        return "use a value " + bounds[kind].format(**ctx)
    if kind == "string_pattern_mismatch":
        rule = PATTERN_WORDS.get(str(ctx.get("pattern")))
        if ctx.get("pattern") == DNS_LABEL and isinstance(error.get("input"), str):
            fixed = re.sub(r"[^a-z0-9]+", "-", error["input"].lower()).strip("-")[:63].strip("-")
            if fixed:
                return f"for example {fixed!r}"
        return f"use {rule}" if rule else f"the value must match the pattern {ctx.get('pattern')}"
    if kind == "finite_number":
        return "use a finite number"
    return "change the value as the message says"


def _did_you_mean(word: str, candidates: list[str] | set[str]) -> str | None:
    if word in KEY_SYNONYMS and KEY_SYNONYMS[word] in candidates:
        return KEY_SYNONYMS[word]
    # Compared without case: `KV` -> `kv`, `nixl` -> `NIXL`, `MTP` -> `mtp` (difflib alone scores these 0).
    by_lower = {c.lower(): c for c in sorted(candidates)}
    lower = word.lower()
    if lower in by_lower:
        return by_lower[lower]
    matches = difflib.get_close_matches(lower, sorted(by_lower), n=1, cutoff=0.6)
    if matches:
        return by_lower[matches[0]]
    # `kv-aware` -> `kv`, `tensor` -> `tensor_parallel`: one is the start of the other.
    prefixed = sorted(
        c for c in by_lower if len(c) >= 2 and (lower.startswith(c) or c.startswith(lower)) and len(lower) >= 2
    )
    return by_lower[max(prefixed, key=len)] if prefixed else None


def _field_annotation(model: type[CoreSpec], loc: YamlPath) -> Any:
    """The type annotation reached by following ``loc`` down from the spec ``model``."""
    current: Any = model
    for part in loc:
        current = _unwrap_optional(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) in (dict, list):
            current = typing.get_args(current)[-1]
        else:
            return None
    return _unwrap_optional(current)


def _unwrap_optional(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _valid_keys(spec_model: type[CoreSpec], loc: YamlPath) -> set[str]:
    model = _field_annotation(spec_model, loc)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return {f.alias or n for n, f in model.model_fields.items()}
    return set()


def _literal_values(model: type[CoreSpec], loc: YamlPath) -> list[Any]:
    annotation = _field_annotation(model, loc)
    return list(typing.get_args(annotation)) if typing.get_origin(annotation) is typing.Literal else []


# --- model facts ---------------------------------------------------------------------------------

# config.json keys that different model families use for the same facts.
_EXPERT_KEYS = ("n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts")
_MTP_KEYS = ("num_nextn_predict_layers",)


def read_model_facts(spec: CoreSpec, base_dir: Path, source: SourceMap) -> ModelFacts:
    """Facts from the spec, filled in from ``config.json`` when the model path is a local directory."""
    model = spec.model
    moe, num_experts, mtp_layers = model.moe, model.num_experts, model.mtp_layers
    origin = {
        k: "spec" for k, v in (("moe", moe), ("num_experts", num_experts), ("mtp_layers", mtp_layers)) if v is not None
    }
    model_dir = Path(model.path) if Path(model.path).is_absolute() else base_dir / model.path
    is_dir, has_config = _probe_model_dir(model_dir, source)
    local_dir = str(model_dir.resolve()) if is_dir else None
    config_path = model_dir / "config.json"
    config: dict[str, Any] = {}
    if has_config:
        config = _read_model_config(config_path, source)
        experts = next((config[k] for k in _EXPERT_KEYS if isinstance(config.get(k), int)), None)
        mtp = next((config[k] for k in _MTP_KEYS if isinstance(config.get(k), int)), None)
        if num_experts is None and experts is not None:
            num_experts, origin["num_experts"] = experts, str(config_path)
        if moe is None:
            moe, origin["moe"] = (experts or 0) > 1 if experts is not None else False, str(config_path)
        if mtp_layers is None:
            mtp_layers, origin["mtp_layers"] = mtp if mtp is not None else 0, str(config_path)
    if moe is None and num_experts is not None:
        moe = num_experts > 1
        origin["moe"] = origin["num_experts"]
    arch, arch_source = _model_arch(spec, config if has_config else None, model_dir, config_path, source)
    if num_experts is None and not has_config and arch is not None and arch.experts > 1:
        # dyncc's table knows the routed experts of a well-known MoE model: expert_parallel must divide them
        # (DYN107) as it must a local checkpoint's. Whether a model is MoE at all stays the spec's or its
        # config's to say: that changes the engine configs dyncc writes.
        num_experts, origin["num_experts"] = arch.experts, arch_source
    known = None if has_config else known_model(model.path)
    if mtp_layers is None and known is not None:
        # The table read each well-known checkpoint's num_nextn_predict_layers: mtp on one without MTP layers
        # (Llama, Qwen...) is refused (DYN105) as it is for a local checkpoint, not left to fail at start-up.
        mtp_layers, origin["mtp_layers"] = known.arch.mtp_layers, _from_table(known)
    stated = model.facts
    heads = read_heads(
        stated_heads=model.attention_heads,
        stated_kv_heads=stated.kv_heads if stated is not None else None,
        stated_kv_lora_rank=stated.kv_lora_rank if stated is not None else None,
        config=config if has_config else None,
        config_label=str(config_path),
        model_path=model.path,
    )
    origin.update(heads.source)
    return ModelFacts(
        moe=moe,
        num_experts=num_experts,
        mtp_layers=mtp_layers,
        attention_heads=heads.attention,
        kv_heads=heads.kv,
        mla=heads.mla,
        local_dir=local_dir,
        chat_template=read_chat_template(model.chat_template, base_dir, source.locate),
        source=origin,
        arch=arch,
        arch_source=arch_source,
    )


def _model_arch(
    spec: CoreSpec, config: dict[str, Any] | None, model_dir: Path, config_path: Path, source: SourceMap
) -> tuple[ModelArch | None, str]:
    """The architecture from the local config.json (with a ModelOpt hf_quant_config.json beside it), else from
    dyncc's table of well-known models, with model.facts applied over it."""
    arch: ModelArch | None = None
    why = ""
    if config is not None:
        quant_path = model_dir / "hf_quant_config.json"
        quant = _read_model_config(quant_path, source) if quant_path.is_file() else None
        try:
            arch, why = arch_from_config(config, quant), str(config_path)
        except NotEnoughFacts as exc:
            why = f"{config_path}: {exc}"
    else:
        known = known_model(spec.model.path)
        if known is not None:
            arch, why = known.arch, _from_table(known)
        else:
            why = f"{spec.model.path!r} is not a local checkpoint nor in dyncc's table of well-known models"
    stated = spec.model.facts
    if stated is not None:
        arch, why = apply_stated_facts(arch, stated, spec.model.attention_heads, why)
    if arch is not None and spec.model.attention_heads is not None:  # what DYN124 reads sizes memory too
        arch = msgspec.structs.replace(arch, attention_heads=spec.model.attention_heads)
    return arch, why


def _from_table(known: KnownModel) -> str:
    """How a fact read from dyncc.facts' table of well-known models names its source."""
    return f"dyncc's table of well-known models ({known.hub_id})"


def _probe_model_dir(model_dir: Path, source: SourceMap) -> tuple[bool, bool]:
    """(is a local directory, has a config.json file). A path no file system can hold is an error; one this
    machine may not see (no permission, not mounted here) is a model found elsewhere, as a missing one is."""
    try:
        if _too_long(model_dir):  # checked first: a missing parent directory would hide it (ENOENT)
            raise OSError(errno.ENAMETOOLONG, "File name too long", str(model_dir))
        return model_dir.is_dir(), (model_dir / "config.json").is_file()
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            return False, False
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN019",
                    f"model.path cannot be read: {exc.strerror} ({len(str(model_dir))} characters)",
                    path=("model", "path"),
                    hint="a file name has at most 255 bytes and a path 4096; use the checkpoint's real "
                    "directory or a Hugging Face id",
                    location=source.locate(("model", "path")),
                )
            ]
        ) from None


def _too_long(path: Path) -> bool:
    """Longer than Linux allows anywhere: a name over NAME_MAX bytes, or the path over PATH_MAX."""
    encoded = [os.fsencode(part) for part in path.parts]
    return len(os.fsencode(str(path))) >= 4096 or any(len(part) > 255 for part in encoded)


def _read_model_config(config_path: Path, source: SourceMap) -> dict:
    try:
        config = json.loads(read_regular(config_path, MAX_CONFIG_JSON_BYTES).decode("utf-8"))
    except (UnreadableFile, ValueError, RecursionError) as exc:  # RecursionError: deeply nested JSON
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN015",
                    f"model config {config_path} is unreadable: {reason}",
                    path=("model", "path"),
                    hint="fix the checkpoint's config.json, or state the model facts in the spec",
                    location=source.locate(("model", "path")),
                )
            ]
        ) from None
    return config if isinstance(config, dict) else {}
