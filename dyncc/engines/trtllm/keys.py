"""TensorRT-LLM's accepted engine-config keys, per TRT-LLM version, and a checker for engine YAML dicts.

TRT-LLM rejects unknown keys at start-up (``extra="forbid"``) — on a GPU node, minutes into a job.
Each TRT-LLM version's key set ships as one data file, ``data/trtllm_<version>_keys.json`` (top-level
keys, nested keys, enums, aliases, the speculative forms that version reads, enum values it removed,
and the TRT-LLM version the file was checked against), so dyncc catches the same mistakes before
anything is deployed. Adding a version is adding its file; the code is shared.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import msgspec
from packaging.version import Version

# Keys TRT-LLM 1.x removed; named so the error can say "removed" rather than "unknown".
REMOVED_KEYS = {
    "build_config": "removed with the TensorRT engine-build path; the PyTorch backend has no build step",
    "pytorch_backend_config": "flattened into top-level keys",
    "enable_overlap_scheduler": "replaced by `disable_overlap_scheduler` (the overlap scheduler is on by default)",
    "cuda_graph_padding_enabled": "moved to `cuda_graph_config.enable_padding`",
    "cuda_graph_batch_sizes": "moved to `cuda_graph_config.batch_sizes`",
    "use_cuda_graph": "replaced by `cuda_graph_config` (null disables CUDA graphs)",
}

DEFAULT_KEYS_VERSION = "1.3.0rc29"


class KeyProblem(msgspec.Struct, frozen=True):
    """One key or enum value a TRT-LLM version would reject."""

    path: tuple[str, ...]
    message: str
    suggestion: str | None = None  # the closest accepted spelling, if any
    reason: str | None = None  # why a value is gone (e.g. WIDEEP) and what replaced it
    kind: str = "key"  # "key" or "value"


def keys_versions() -> list[str]:
    """The TRT-LLM versions dyncc has a key set for (one ``data/trtllm_<version>_keys.json`` each)."""
    names = [p.name for p in resources.files(__package__).joinpath("data").iterdir()]
    return sorted(n.removeprefix("trtllm_").removesuffix("_keys.json") for n in names if n.endswith("_keys.json"))


def nearest_version(trtllm: str, known: list[str]) -> str:
    """Of the TRT-LLM versions ``known`` (not empty), the one that stands for ``trtllm``: itself where known;
    else the newest of the same TRT-LLM line not newer than it (an older set may refuse a key it added,
    which is said; a newer one could pass a key it lacks, which is not), else that line's oldest, else the
    nearest of another line."""
    if trtllm in known:
        return trtllm
    pinned = Version(trtllm)
    line = [v for v in known if Version(v).release[:2] == pinned.release[:2]]
    older = [v for v in line if Version(v) <= pinned]
    if older:
        return max(older, key=Version)
    if line:
        return min(line, key=Version)
    return min(known, key=lambda v: (abs(_line_number(Version(v)) - _line_number(pinned)), Version(v)))


def _line_number(version: Version) -> int:
    major, minor = (version.release + (0, 0))[:2]
    return major * 1000 + minor


@functools.lru_cache(maxsize=8)
def accepted_keys(version: str = DEFAULT_KEYS_VERSION) -> dict[str, Any]:
    text = resources.files(__package__).joinpath("data", f"trtllm_{version}_keys.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def speculative_form(version: str, mode: str) -> dict[str, Any]:
    """How ``version`` spells a speculative mode (``eagle`` or ``mtp``): decoding type, model key, draft keys."""
    form: dict[str, Any] = accepted_keys(version)["speculative_forms"][mode]
    return form


def enum_values(version: str, dotted: str) -> list[Any]:
    values: list[Any] = accepted_keys(version)["enums"].get(dotted, [])
    return values


def accepts(version: str, dotted: str, value: Any = None) -> bool:
    """Whether ``version`` accepts the key ``dotted`` (and, if given, ``value`` for it)."""
    data = accepted_keys(version)
    parent, _, leaf = dotted.rpartition(".")
    if parent == "speculative_config" and leaf != "decoding_type":
        # Speculative keys depend on the decoding type: accepted if some type of this version takes the key.
        known = {k for keys in data["speculative_config"].values() for k in keys}
        enum = data["enums"].get(dotted)
        if value is not None and enum is not None and value not in enum:
            return False  # e.g. eagle3_model_arch: a value outside its Literal
        return leaf in known or dotted in data.get("aliases", {})
    problems = check_engine_config(
        _nest(dotted, value if value is not None else _placeholder(version, dotted)), version
    )
    return not any(".".join(p.path) == dotted for p in problems)


def _placeholder(version: str, dotted: str) -> Any:
    enum = enum_values(version, dotted)
    return enum[0] if enum else 0


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    *parents, leaf = dotted.split(".")
    node: dict[str, Any] = {leaf: value}
    for part in reversed(parents):
        node = {part: node}
    return node


def check_engine_config(config: dict[str, Any], version: str = DEFAULT_KEYS_VERSION) -> list[KeyProblem]:
    """Every key or enum value TRT-LLM ``version`` would reject in ``config``."""
    data = accepted_keys(version)
    return list(_check_mapping(config, (), set(data["top"]), data))


def _check_mapping(mapping: dict, prefix: tuple[str, ...], allowed: set[str], data: dict) -> Iterator[KeyProblem]:
    aliases: dict[str, str] = data.get("aliases", {})
    for key, value in mapping.items():
        path = prefix + (key,)
        dotted = ".".join(path)
        if key not in allowed and dotted not in aliases:
            yield _unknown_key(path, allowed, data)
            continue
        enum = data["enums"].get(dotted)
        if enum is not None and value is not None and value not in enum:
            yield _bad_value(path, value, enum, data)
        if isinstance(value, dict):
            nested = _nested_keys(dotted, value, data)
            if nested is not None:
                yield from _check_mapping(value, path, nested, data)


def _unknown_key(path: tuple[str, ...], allowed: set[str], data: dict) -> KeyProblem:
    dotted = ".".join(path)
    if len(path) == 1 and path[0] in REMOVED_KEYS:
        return KeyProblem(path, f"`{dotted}` was removed from TensorRT-LLM: {REMOVED_KEYS[path[0]]}")
    match = difflib.get_close_matches(path[-1], sorted(allowed), n=1, cutoff=0.6)
    return KeyProblem(
        path, f"`{dotted}` is not a TensorRT-LLM {data['version']} engine key", match[0] if match else None
    )


def _bad_value(path: tuple[str, ...], value: Any, enum: list, data: dict) -> KeyProblem:
    dotted = ".".join(path)
    removed = data.get("removed_enum_values", {}).get(dotted, {}).get(str(value))
    message = f"`{dotted}: {value}` is not one of TensorRT-LLM {data['version']}'s {', '.join(map(str, enum))}"
    renamed = data.get("renamed_enum_values", {}).get(dotted, {}).get(str(value))
    match = [e for e in enum if isinstance(e, str) and isinstance(value, str) and e.lower() == value.lower()]
    suggestion = renamed or (match[0] if match else None)  # this version's spelling of the same thing
    return KeyProblem(path, message, suggestion, removed, kind="value")


def _nested_keys(dotted: str, value: dict, data: dict) -> set[str] | None:
    if dotted == "speculative_config":
        per_type = data["speculative_config"].get(str(value.get("decoding_type")))
        # An unknown decoding type is reported on `decoding_type` itself (its enum); its keys cannot be judged.
        return set(per_type) if per_type is not None else set(value)
    if dotted == "cuda_graph_config":
        # 1.3: a before-validator picks decode or encode mode from the keys given; accept either shape.
        encoder = data["nested"].get("encoder_cuda_graph_config", [])
        return set(data["nested"]["cuda_graph_config"]) | set(encoder)
    discriminator = data.get("types_variants", {}).get(dotted)
    if discriminator is not None:
        # A section whose class its discriminator picks (sparse_attention_config.algorithm: dsa, ...): `nested`
        # lists the classes, `types` each class's fields. An unknown class is reported on the discriminator.
        chosen = str(value.get(discriminator))
        prefix = f"{dotted}.{chosen}."
        fields = {k[len(prefix) :].split(".", 1)[0] for k in data.get("types", {}) if k.startswith(prefix)}
        return fields | {discriminator} if fields else set(value)
    keys = data["nested"].get(dotted)
    return set(keys) if keys is not None else None
