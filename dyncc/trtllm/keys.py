"""TensorRT-LLM's accepted engine-config keys, and a checker for engine YAML dicts.

TRT-LLM rejects unknown keys at start-up (``extra="forbid"``) — on a GPU node, minutes into a job.
Each TRT-LLM version's key set ships as one data file, ``data/trtllm_<version>_keys.json`` (top-level
keys, nested keys, enums, speculative forms), so dyncc catches the same mistakes before anything is
deployed. Adding a version is adding its file; :data:`DEFAULT_KEYS_VERSION` is the one checked today.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

# Keys TRT-LLM 1.x removed; named so the error can say "removed" rather than "unknown".
REMOVED_KEYS = {
    "build_config": "removed with the TensorRT engine-build path; the PyTorch backend has no build step",
    "pytorch_backend_config": "flattened into top-level keys",
    "enable_overlap_scheduler": "replaced by `disable_overlap_scheduler` (the overlap scheduler is on by default)",
    "cuda_graph_padding_enabled": "moved to `cuda_graph_config.enable_padding`",
    "cuda_graph_batch_sizes": "moved to `cuda_graph_config.batch_sizes`",
    "use_cuda_graph": "replaced by `cuda_graph_config` (null disables CUDA graphs)",
}
REMOVED_ENUM_VALUES = {("moe_config", "backend", "WIDEEP"): "the WIDEEP MoE backend was removed in 1.3.0rc2x"}


DEFAULT_KEYS_VERSION = "1.3.0rc29"


def keys_versions() -> list[str]:
    """The TRT-LLM versions dyncc has a key set for (one ``data/trtllm_<version>_keys.json`` each)."""
    names = [p.name for p in resources.files(__package__).joinpath("data").iterdir()]
    return sorted(n.removeprefix("trtllm_").removesuffix("_keys.json") for n in names if n.endswith("_keys.json"))


@functools.lru_cache(maxsize=8)
def accepted_keys(version: str = DEFAULT_KEYS_VERSION) -> dict[str, Any]:
    text = resources.files(__package__).joinpath("data", f"trtllm_{version}_keys.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def check_engine_config(
    config: dict[str, Any],
    enum_overrides: dict[str, list] | None = None,
) -> Iterator[tuple[tuple[str, ...], str, str | None]]:
    """Yield ``(key path, problem, suggestion)`` for each key or enum value TRT-LLM would reject.

    ``enum_overrides`` replaces accepted enum values for an older TRT-LLM (a version profile's)."""
    data = accepted_keys()
    if enum_overrides:
        data = {**data, "enums": {**data["enums"], **enum_overrides}}
    yield from _check_mapping(config, (), set(data["top"]), data)


def _check_mapping(mapping: dict, prefix: tuple[str, ...], allowed: set[str], data: dict):
    for key, value in mapping.items():
        path = prefix + (key,)
        dotted = ".".join(path)
        if key not in allowed:
            if not prefix and key in REMOVED_KEYS:
                yield path, f"`{dotted}` was removed from TensorRT-LLM: {REMOVED_KEYS[key]}", None
            else:
                match = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
                yield (
                    path,
                    f"`{dotted}` is not a TensorRT-LLM {data['version']} engine key",
                    (match[0] if match else None),
                )
            continue
        enum = data["enums"].get(dotted)
        if enum is not None and value is not None and value not in enum:
            removed = REMOVED_ENUM_VALUES.get(path + (str(value),))
            reason = removed or f"`{dotted}: {value}` is not one of {', '.join(map(str, enum))}"
            match = [e for e in enum if isinstance(e, str) and isinstance(value, str) and e.lower() == value.lower()]
            yield path, reason, (match[0] if match else None)
        if isinstance(value, dict):
            nested = _nested_keys(dotted, value, data)
            if nested is not None:
                yield from _check_mapping(value, path, nested, data)


def _nested_keys(dotted: str, value: dict, data: dict) -> set[str] | None:
    if dotted == "speculative_config":
        per_type = data["speculative_config"].get(str(value.get("decoding_type")))
        return set(per_type) if per_type is not None else None
    if dotted in ("cuda_graph_config",):
        # A before-validator picks decode or encode mode from the keys given; accept either shape.
        return set(data["nested"]["cuda_graph_config"]) | set(data["nested"]["encoder_cuda_graph_config"])
    keys = data["nested"].get(dotted)
    return set(keys) if keys is not None else None
