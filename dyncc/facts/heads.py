"""A model's attention heads as tensor parallelism splits them: query heads, KV heads, and whether attention is
multi-head latent (MLA, which caches one latent per token instead of KV heads). Each fact comes from the first
source that states it: the spec, the local checkpoint's config.json, dyncc's table of well-known models; and
each names where it came from, so a refusal built on it can say so."""

from __future__ import annotations

from typing import Any

import msgspec

from dyncc.facts import known_model
from dyncc.facts.arch import text_config


class Heads(msgspec.Struct, frozen=True):
    attention: int | None = None
    kv: int | None = None
    mla: bool | None = None
    source: dict[str, str] = msgspec.field(default_factory=dict)  # attention_heads / kv_heads -> where from


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def read_heads(
    *,
    stated_heads: int | None,
    stated_kv_heads: int | None,
    stated_kv_lora_rank: int | None,
    config: dict[str, Any] | None,
    config_label: str,
    model_path: str,
) -> Heads:
    """``stated_*``: the spec's ``model.attention_heads``, ``model.facts.kv_heads``, ``model.facts.kv_lora_rank``;
    ``config``: the local config.json (None when the model is not a local checkpoint with one)."""
    found: dict[str, Any] = {}
    origin: dict[str, str] = {}
    if config is not None:
        c = text_config(config)  # multimodal checkpoints (Llama 4) keep the language model's under text_config
        heads = _count(c.get("num_attention_heads")) or _count(c.get("n_head"))
        listed = c.get("num_key_value_heads")
        # TensorRT-LLM reads a missing num_key_value_heads as one KV head per query head (plain multi-head
        # attention); a per-layer list (Nemotron-NAS) has no single count to check.
        kv = _count(listed) if listed is not None else heads
        found = {"attention_heads": heads, "kv_heads": kv, "mla": _count(c.get("kv_lora_rank")) is not None}
        origin = dict.fromkeys(("attention_heads", "kv_heads"), config_label)
    else:
        known = known_model(model_path)
        if known is not None:
            arch = known.arch
            found = {"attention_heads": arch.attention_heads, "kv_heads": arch.kv_heads, "mla": arch.mla}
            origin = dict.fromkeys(
                ("attention_heads", "kv_heads"), f"dyncc's table of well-known models ({known.hub_id})"
            )
    if stated_heads is not None:
        found["attention_heads"], origin["attention_heads"] = stated_heads, "model.attention_heads"
    if stated_kv_heads is not None:
        found["kv_heads"], origin["kv_heads"] = stated_kv_heads, "model.facts.kv_heads"
    if stated_kv_lora_rank is not None:
        found["mla"] = True
    source = {k: v for k, v in origin.items() if found.get(k) is not None}
    return Heads(found.get("attention_heads"), found.get("kv_heads"), found.get("mla"), source)
