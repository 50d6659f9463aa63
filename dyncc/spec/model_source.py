"""The model served: the checkpoint, and the facts about it that rules need."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dyncc.spec.fields import NoControlChars, SpecModel

WeightDtype = Literal["bfloat16", "float16", "float32", "fp8", "nvfp4", "mxfp4", "int4"]


class ModelFactsSpec(SpecModel):
    """Facts about the checkpoint for the GPU memory check (DYN140): each overrides what dyncc read from a
    local config.json or its table of well-known models, or supplies it for a model dyncc does not know."""

    parameters: int | None = Field(
        None, ge=1, le=10**14, description="Total parameters (all experts), e.g. 671000000000 for DeepSeek-R1."
    )
    expert_parameters: int | None = Field(
        None, ge=0, le=10**14, description="Parameters in routed experts (split over every rank of a worker)."
    )
    weight_dtype: WeightDtype | None = Field(
        None, description="Data type of the weights: bfloat16, fp8, nvfp4, mxfp4, int4 (quantized checkpoints)."
    )
    layers: int | None = Field(None, ge=1, le=100_000, description="Transformer layers (`num_hidden_layers`).")
    hidden_size: int | None = Field(None, ge=1, le=10**6, description="Hidden size (`hidden_size`).")
    kv_heads: int | None = Field(None, ge=1, le=100_000, description="KV heads per layer (`num_key_value_heads`).")
    head_dim: int | None = Field(None, ge=1, le=100_000, description="Dimension of one attention head.")
    experts_per_token: int | None = Field(None, ge=1, le=100_000, description="Routed experts each token uses.")
    kv_lora_rank: int | None = Field(None, ge=1, le=100_000, description="MLA latent KV rank (DeepSeek: 512).")
    qk_rope_head_dim: int | None = Field(None, ge=0, le=100_000, description="MLA rotary dims cached (DeepSeek: 64).")
    kv_dtype: Literal["bfloat16", "float16", "fp8"] | None = Field(
        None, description="The checkpoint's KV cache type, used for kv_cache_dtype auto (default bfloat16)."
    )


class ModelSource(SpecModel):
    """The checkpoint served, and the facts about it that rules need (unknown when left out)."""

    path: NoControlChars = Field(
        description="Hugging Face id or a local checkpoint directory (`--model-path`); a relative path must exist "
        "(DYN118), a local config.json must parse (DYN015); not starting with '-' (DYN115)."
    )
    served_name: NoControlChars | None = Field(
        None, description="Name clients ask for (`--served-model-name`); defaults to the path. No leading '-' (DYN115)."
    )
    revision: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$",
        max_length=256,
        description="Hugging Face revision (branch, tag or commit) of a hub model; default: the main branch. "
        "Not for a local checkpoint (DYN547, DYN562) nor Dynamo 0.x workers on k8s (DYN549).",
    )
    moe: bool | None = Field(
        None, description="Mixture-of-experts model (read from config.json if local); dense: DYN103, DYN123."
    )
    num_experts: int | None = Field(
        None, ge=1, description="Routed experts per MoE layer; expert_parallel must divide it (DYN107)."
    )
    mtp_layers: int | None = Field(
        None, ge=0, description="MTP (next-n prediction) layers in the checkpoint; 0 = none (speculative mtp: DYN105)."
    )
    attention_heads: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="Attention (query) heads per layer; default: config.json `num_attention_heads` if local, "
        "else dyncc's table of well-known models. tensor_parallel must divide it unless attention DP is on "
        "(DYN124).",
    )
    tool_call_parser: NoControlChars | None = Field(
        None,
        max_length=64,
        description="Parser of the model's tool calls in its replies (every worker's `--dyn-tool-call-parser`), "
        "e.g. kimi_k2, deepseek_v3_1, hermes: a name the Dynamo release knows (DYN125).",
    )
    reasoning_parser: NoControlChars | None = Field(
        None,
        max_length=64,
        description="Parser that splits the model's reasoning from its answer (every worker's "
        "`--dyn-reasoning-parser`), e.g. deepseek_r1, qwen3: a name the Dynamo release knows (DYN125).",
    )
    chat_template: NoControlChars | None = Field(
        None,
        max_length=4096,
        description="A Jinja chat template file, relative to the spec, used instead of the checkpoint's "
        "(`--custom-jinja-template`; each target ships it beside the engine configs): it must be a readable text "
        "file of at most 1 MiB (DYN126), on Dynamo 0.6 or later (DYN703).",
    )
    facts: ModelFactsSpec | None = Field(
        None,
        description="Model facts for the GPU memory check (DYN140): override what dyncc read from config.json or "
        "its table of well-known models, or supply them for another model (DYN142 notes a model it cannot size).",
    )
    trust_remote_code: bool = Field(
        False,
        description="Let TensorRT-LLM run the checkpoint's own Python code (`trust_remote_code` in the engine "
        "YAML); only models that need it.",
    )

    @property
    def name(self) -> str:
        return self.served_name or self.path
