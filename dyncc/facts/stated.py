"""``model.facts`` from a spec, applied over the architecture dyncc read (or as the whole of it)."""

from __future__ import annotations

from typing import Any

import msgspec

from dyncc.facts.arch import ModelArch

# What a spec must state about a model dyncc has no architecture for, so that weights and KV can be sized.
NEEDED_WITHOUT_BASE = ("parameters", "weight_dtype", "layers", "kv_heads", "head_dim")


def apply_stated_facts(
    base: ModelArch | None, stated: Any, attention_heads: int | None, why: str
) -> tuple[ModelArch | None, str]:
    """(architecture, where it came from). ``stated`` is the spec's ``model.facts``."""
    values = {k: v for k, v in stated.model_dump().items() if v is not None}
    if not values:
        return base, why
    if base is None:
        missing = [k for k in NEEDED_WITHOUT_BASE if k not in values]
        if missing:
            return None, f"{why}; model.facts lacks {', '.join(missing)} to size it"
        heads = attention_heads or values.get("kv_heads", 1)
        experts_total = values.get("expert_parameters", 0)
        base = ModelArch(
            layers=values["layers"],
            hidden_size=values.get("hidden_size", heads * values["head_dim"]),
            attention_heads=heads,
            kv_heads=values["kv_heads"],
            head_dim=values["head_dim"],
            vocab_size=0,
            attention_params=0,
            mlp_params=max(0, values["parameters"] - experts_total),
            expert_params=experts_total,
            embedding_params=0,
            experts=2 if experts_total else 0,
            experts_per_token=1 if experts_total else 0,
        )
        why = "model.facts"
    else:
        why = f"{why}, with model.facts"
    return _override(base, values, attention_heads), why


def _override(arch: ModelArch, values: dict[str, Any], attention_heads: int | None) -> ModelArch:
    changes: dict[str, Any] = {}
    for key in (
        "layers",
        "hidden_size",
        "kv_heads",
        "head_dim",
        "experts_per_token",
        "kv_lora_rank",
        "qk_rope_head_dim",
    ):
        if key in values:
            changes[key] = values[key]
    if attention_heads is not None:
        changes["attention_heads"] = attention_heads
    if "kv_dtype" in values:
        changes["kv_dtype"] = values["kv_dtype"]
    if "weight_dtype" in values:
        changes.update(attention_dtype=values["weight_dtype"], mlp_dtype=values["weight_dtype"])
        changes["expert_dtype"] = values["weight_dtype"]
    if "parameters" in values or "expert_parameters" in values:
        total = values.get("parameters", arch.params)
        experts = values.get("expert_parameters", arch.expert_params if "parameters" not in values else None)
        if experts is None:  # scale the parts as the read architecture splits them
            experts = int(total * arch.expert_params / arch.params) if arch.params else 0
        rest = max(0, total - experts)
        old_rest = arch.attention_params + arch.mlp_params + arch.embedding_params
        scale = rest / old_rest if old_rest else 0.0
        changes.update(
            expert_params=experts,
            attention_params=int(arch.attention_params * scale),
            mlp_params=int(arch.mlp_params * scale) if old_rest else rest,
            embedding_params=int(arch.embedding_params * scale),
        )
        if experts and not arch.experts:
            changes.update(experts=2, experts_per_token=1)
    return msgspec.structs.replace(arch, **changes)
