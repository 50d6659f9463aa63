"""A checkpoint's architecture as far as GPU memory is concerned, read from its Hugging Face ``config.json``.

Parameters are counted per part because tensor, expert and attention-data parallelism shard the parts
differently: attention and dense MLP weights split over the TP ranks (each rank keeps all of them under
attention DP), routed experts split over every rank of the worker (expert x MoE-tensor parallelism), the
embedding and LM head split over the TP ranks (replicated under attention DP). Each part has its own data
type, because quantized checkpoints leave some parts in BF16 (NVFP4 DeepSeek keeps attention in BF16,
gpt-oss quantizes only its experts to MXFP4).

The counts are the linear layers' weights, embeddings and LM head; norms, biases and quantization scales
are left out (under 0.1 % of any model here), which is why a count may sit a little under the model card's.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

# Bytes per parameter. Block-scaled 4-bit formats carry one 8-bit scale per block: 16 values for NVFP4,
# 32 for MXFP4 (OCP MX spec). FP8 block scales (one FP32 per 128 x 128 block) add 0.02 % and are left out.
DTYPE_BYTES: dict[str, float] = {
    "float32": 4.0,
    "bfloat16": 2.0,
    "float16": 2.0,
    "fp8": 1.0,
    "nvfp4": 0.5 + 1 / 16,
    "mxfp4": 0.5 + 1 / 32,
    "int4": 0.5 + 1 / 32,
}
DTYPE_NAMES = tuple(DTYPE_BYTES)
# A module left unquantized that is an attention projection (not a norm inside the attention block).
_ATTENTION_PROJECTION = re.compile(r"self_attn(\*|$|\.(q|k|v|o|qkv|q_a|q_b|kv_a|kv_b)_proj)")


class ModelArch(msgspec.Struct, frozen=True):
    """What GPU memory depends on. Parameter counts are of the whole model (all layers); ``*_dtype`` name
    keys of :data:`DTYPE_BYTES`."""

    layers: int
    hidden_size: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    attention_params: int  # attention projections of every layer (TP-sharded)
    mlp_params: int  # dense MLPs, shared experts and routers (TP-sharded)
    expert_params: int  # routed experts (sharded over every rank of the worker)
    embedding_params: int  # input embedding plus an untied LM head (TP-sharded)
    attention_dtype: str = "bfloat16"
    mlp_dtype: str = "bfloat16"
    expert_dtype: str = "bfloat16"
    kv_dtype: str = "bfloat16"  # the checkpoint's KV cache type (kv_cache_dtype: auto)
    experts: int = 0
    experts_per_token: int = 0
    kv_lora_rank: int | None = None  # MLA: the latent KV cached per token instead of K and V heads
    qk_rope_head_dim: int | None = None
    attention_layers: int | None = None  # layers with a KV cache (hybrid models have fewer); None: all
    sliding_window: int | None = None  # tokens a sliding-window layer keeps
    sliding_layers: int = 0  # layers with a sliding window (they cache at most sliding_window tokens)
    mtp_layer_params: int = 0  # one MTP (next-n) layer, loaded when speculative mode is mtp
    max_position_embeddings: int | None = None
    mtp_layers: int = 0  # MTP (next-n prediction) layers in the checkpoint: what speculative mode mtp drafts with

    @property
    def params(self) -> int:
        return self.attention_params + self.mlp_params + self.expert_params + self.embedding_params

    @property
    def active_params(self) -> int:
        if not self.experts:
            return self.params
        return self.params - self.expert_params + self.expert_params * self.experts_per_token // self.experts

    @property
    def moe(self) -> bool:
        return self.experts > 1

    @property
    def mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def weight_dtype(self) -> str:
        """The data type of most weights (the experts', for an MoE model)."""
        parts = [
            (self.expert_params, self.expert_dtype),
            (self.mlp_params, self.mlp_dtype),
            (self.attention_params, self.attention_dtype),
        ]
        return max(parts)[1]

    def kv_elements_per_token_layer(self) -> int:
        """Values cached per token and layer for the whole model (before any TP split)."""
        if self.kv_lora_rank is not None:
            return self.kv_lora_rank + (self.qk_rope_head_dim or 0)
        return 2 * self.kv_heads * self.head_dim

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in msgspec.structs.asdict(self).items() if v not in (None, 0) or k in _REQUIRED}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelArch:
        return cls(**{k: v for k, v in data.items() if k in cls.__struct_fields__})


# The fields without a default: the first ones, as a struct's defaults are its last fields'.
_REQUIRED = set(ModelArch.__struct_fields__[: len(ModelArch.__struct_fields__) - len(ModelArch.__struct_defaults__)])


class NotEnoughFacts(ValueError):
    """config.json lacks a key the count needs (an architecture dyncc cannot read)."""


def _int(config: dict[str, Any], *keys: str, default: int | None = None) -> int:
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    if default is not None:
        return default
    raise NotEnoughFacts(f"config.json has no {' / '.join(keys)}")


def _dtype(name: Any) -> str:
    text = str(name or "bfloat16").lower()
    return {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "float": "float32"}.get(text, text)


def text_config(config: dict[str, Any]) -> dict[str, Any]:
    """The language model's section: multimodal checkpoints nest it under ``text_config``."""
    nested = config.get("text_config")
    if isinstance(nested, dict) and "hidden_size" in nested:
        merged = {k: v for k, v in config.items() if k != "text_config"}
        merged.update(nested)
        return merged
    return config


def arch_from_config(config: dict[str, Any], hf_quant: dict[str, Any] | None = None) -> ModelArch:
    """The architecture a Hugging Face ``config.json`` describes (``hf_quant``: a ModelOpt checkpoint's
    ``hf_quant_config.json``). Raises :class:`NotEnoughFacts` for one it cannot read."""
    c = text_config(config)
    hidden = _int(c, "hidden_size", "d_model", "n_embd")
    layers = _int(c, "num_hidden_layers", "n_layer", "num_layers")
    heads = _int(c, "num_attention_heads", "n_head")
    kv_heads = _int(c, "num_key_value_heads", default=heads)
    head_dim = _int(c, "head_dim", default=hidden // max(heads, 1))
    vocab = _int(c, "vocab_size", "padded_vocab_size")
    tied = bool(c.get("tie_word_embeddings", False))
    embedding = vocab * hidden * (1 if tied else 2)

    pattern = c.get("hybrid_override_pattern")
    if isinstance(pattern, str) and pattern:
        return _hybrid(c, pattern, hidden, heads, kv_heads, head_dim, vocab, embedding, hf_quant)

    attn_layer = _attention_params(c, hidden, heads, kv_heads, head_dim)
    experts = _int(c, "n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts", default=0)
    per_token = _int(c, "num_experts_per_tok", "moe_topk", "num_experts_per_token", default=0)
    moe_layers, dense_layers = _moe_layer_split(c, layers, experts)
    inter = _int(c, "intermediate_size", "ffn_hidden_size", default=4 * hidden)
    dense_inter = _int(c, "intermediate_size_mlp", default=inter)
    moe_inter = _int(c, "moe_intermediate_size", default=inter)
    shared_inter = _shared_expert_width(c, moe_inter, inter)
    mlp = dense_layers * 3 * hidden * dense_inter + moe_layers * (3 * hidden * shared_inter + hidden * experts)
    expert = moe_layers * experts * 3 * hidden * moe_inter
    moe_layer = attn_layer + 3 * hidden * (shared_inter + experts * moe_inter) + hidden * experts
    mtp = _int(c, "num_nextn_predict_layers", default=0)
    window, sliding = _sliding(c, layers)
    dtypes = _quant_dtypes(c, hf_quant)
    return ModelArch(
        layers=layers,
        hidden_size=hidden,
        attention_heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=vocab,
        attention_params=layers * attn_layer,
        mlp_params=mlp,
        expert_params=expert,
        embedding_params=embedding,
        experts=experts,
        experts_per_token=per_token,
        kv_lora_rank=c.get("kv_lora_rank") if isinstance(c.get("kv_lora_rank"), int) else None,
        qk_rope_head_dim=c.get("qk_rope_head_dim") if isinstance(c.get("kv_lora_rank"), int) else None,
        sliding_window=window,
        sliding_layers=sliding,
        mtp_layer_params=(moe_layer + 2 * hidden * hidden) if mtp else 0,
        mtp_layers=mtp,
        max_position_embeddings=c.get("max_position_embeddings")
        if isinstance(c.get("max_position_embeddings"), int)
        else None,
        **dtypes,
    )


def _attention_params(c: dict[str, Any], hidden: int, heads: int, kv_heads: int, head_dim: int) -> int:
    kv_lora = c.get("kv_lora_rank")
    if isinstance(kv_lora, int):  # multi-head latent attention (DeepSeek V3, Kimi K2, GLM 5)
        rope = _int(c, "qk_rope_head_dim")
        nope = _int(c, "qk_nope_head_dim")
        v_dim = _int(c, "v_head_dim", default=nope)
        q_lora = c.get("q_lora_rank")
        q = (
            hidden * q_lora + q_lora * heads * (nope + rope)
            if isinstance(q_lora, int)
            else hidden * heads * (nope + rope)
        )
        return q + hidden * (kv_lora + rope) + kv_lora * heads * (nope + v_dim) + heads * v_dim * hidden
    return hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim + heads * head_dim * hidden


def _moe_layer_split(c: dict[str, Any], layers: int, experts: int) -> tuple[int, int]:
    """(MoE layers, dense layers)."""
    if experts <= 1:
        return 0, layers
    first_dense = _int(c, "first_k_dense_replace", default=0)
    step = _int(c, "interleave_moe_layer_step", "decoder_sparse_step", "moe_layer_freq", default=1) or 1
    listed = c.get("mlp_only_layers")
    only_dense = set(listed) if isinstance(listed, list) else set()
    moe = sum(1 for i in range(first_dense, layers) if (i + 1) % step == 0 and i not in only_dense)
    return moe, layers - moe


def _shared_expert_width(c: dict[str, Any], moe_inter: int, inter: int) -> int:
    """Intermediate width of the shared experts, all together (0: none)."""
    width = c.get("shared_expert_intermediate_size") or c.get("moe_shared_expert_intermediate_size")
    if isinstance(width, int):
        return width
    shared = _int(c, "n_shared_experts", "num_shared_experts", default=0)
    if shared:
        return shared * moe_inter
    if c.get("model_type", "").startswith("llama4"):  # Llama 4: one shared expert as wide as a routed one
        return moe_inter
    return 0


def _sliding(c: dict[str, Any], layers: int) -> tuple[int | None, int]:
    window = c.get("sliding_window")
    if not isinstance(window, int) or window <= 0:
        return None, 0
    types = c.get("layer_types")
    if isinstance(types, list):
        return window, sum(1 for t in types if t == "sliding_attention")
    return window, layers if c.get("use_sliding_window", True) else 0


def _quant_dtypes(c: dict[str, Any], hf_quant: dict[str, Any] | None) -> dict[str, Any]:
    """Per-part data types from ``quantization_config`` (or a ModelOpt ``hf_quant_config.json``)."""
    base = _dtype(c.get("torch_dtype") or c.get("dtype"))
    if base not in DTYPE_BYTES:
        base = "bfloat16"
    found = c.get("quantization_config")
    quant: dict[str, Any] = found if isinstance(found, dict) else {}
    if hf_quant:
        nested = hf_quant.get("quantization")
        quant = nested if isinstance(nested, dict) else hf_quant
    method = str(quant.get("quant_algo") or quant.get("quant_method") or "").lower()
    excluded = [
        str(m) for key in ("exclude_modules", "modules_to_not_convert", "ignore") for m in (quant.get(key) or [])
    ]
    parts: dict[str, Any] = {"attention_dtype": base, "mlp_dtype": base, "expert_dtype": base, "kv_dtype": base}
    fmt = {"fp8": "fp8", "nvfp4": "nvfp4", "mxfp4": "mxfp4", "awq": "int4", "gptq": "int4", "w4a16_awq": "int4"}
    if method in ("modelopt", "") and isinstance(quant.get("quant_algo"), str):
        method = str(quant["quant_algo"]).lower()
    quantized = fmt.get(method)
    if quantized is None:
        return parts
    parts["expert_dtype"] = quantized
    if method != "mxfp4":  # gpt-oss's MXFP4 covers its experts only
        parts["mlp_dtype"] = quantized
        if not any(_ATTENTION_PROJECTION.search(m) for m in excluded):
            parts["attention_dtype"] = quantized
    listed = quant.get("kv_cache_scheme")
    scheme: dict[str, Any] = listed if isinstance(listed, dict) else {}
    if str(quant.get("kv_cache_quant_algo") or "").upper() == "FP8" or (
        scheme.get("num_bits") == 8 and scheme.get("type") == "float"
    ):
        parts["kv_dtype"] = "fp8"
    return parts


def _hybrid(
    c: dict[str, Any],
    pattern: str,
    hidden: int,
    heads: int,
    kv_heads: int,
    head_dim: int,
    vocab: int,
    embedding: int,
    hf_quant: dict[str, Any] | None,
) -> ModelArch:
    """Nemotron-H style hybrids: one letter per layer, M Mamba-2, * attention, E MoE, - MLP."""
    attn_layer = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim
    mamba_heads = _int(c, "mamba_num_heads")
    mamba_dim = mamba_heads * _int(c, "mamba_head_dim")
    groups, state = _int(c, "n_groups", default=1), _int(c, "ssm_state_size", default=128)
    mamba_layer = hidden * (2 * mamba_dim + 2 * groups * state + mamba_heads) + mamba_dim * hidden
    experts = _int(c, "n_routed_experts", default=0)
    moe_inter = _int(c, "moe_intermediate_size", default=0)
    latent = _int(c, "moe_latent_size", default=hidden)
    shared = _int(c, "moe_shared_expert_intermediate_size", default=0)
    inter = _int(c, "intermediate_size", default=4 * hidden)
    # Non-gated (relu^2) MLPs: an up and a down projection. Latent MoE routes in a smaller width.
    per_expert = 2 * latent * moe_inter
    moe_dense = 2 * hidden * shared + hidden * experts + (2 * hidden * latent if latent != hidden else 0)
    counts = {k: pattern.count(k) for k in "M*E-"}
    dtypes = _quant_dtypes(c, hf_quant)
    return ModelArch(
        layers=len(pattern),
        hidden_size=hidden,
        attention_heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=vocab,
        attention_params=counts["*"] * attn_layer + counts["M"] * mamba_layer,
        mlp_params=counts["E"] * moe_dense + counts["-"] * 2 * hidden * inter,
        expert_params=counts["E"] * experts * per_expert,
        embedding_params=embedding,
        experts=experts,
        experts_per_token=_int(c, "num_experts_per_tok", default=0),
        attention_layers=counts["*"],
        max_position_embeddings=c.get("max_position_embeddings")
        if isinstance(c.get("max_position_embeddings"), int)
        else None,
        **dtypes,
    )
