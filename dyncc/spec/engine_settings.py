"""What each worker's engine is told: its limits, KV cache, CUDA graphs, MoE kernels, speculative decoding
and KV cache transfer (the keys of the engine config dyncc writes)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from dyncc.spec.fields import NoControlChars, SpecModel

KvCacheDtype = Literal["auto", "fp8", "fp8_ds_mla", "nvfp4", "float16", "bfloat16", "float32"]
TransferBackend = Literal["UCX", "NIXL", "MPI", "MOONCAKE", "DEFAULT"]


class CudaGraphs(SpecModel):
    """TensorRT-LLM CUDA graphs (`cuda_graph_config`): decode steps captured once per batch size and replayed."""

    enabled: bool = Field(
        True, description="false: no `cuda_graph_config` (eager decode: slower, less memory and start-up time)."
    )
    batch_sizes: list[Annotated[int, Field(ge=1)]] | None = Field(
        None,
        min_length=1,
        description="Batch sizes a graph is captured for (`cuda_graph_config.batch_sizes`); they must fit the "
        "engine's max_batch_size and max_num_tokens (DYN110, DYN119).",
    )
    max_batch_size: int | None = Field(
        None,
        ge=1,
        description="Capture graphs up to this batch size (`cuda_graph_config.max_batch_size`); equal to "
        "max(batch_sizes) when both are given (DYN110), not with batch_sizes on TensorRT-LLM 1.1 (DYN121).",
    )
    padding: bool | None = Field(
        None,
        description="Pad a batch up to the next captured size so it replays a graph "
        "(`cuda_graph_config.enable_padding`); default: TensorRT-LLM's.",
    )


class EngineSettings(SpecModel):
    """First-class TRT-LLM engine limits; ``extra`` passes further engine keys through verbatim."""

    max_batch_size: int | None = Field(
        None,
        ge=1,
        description="Most requests the engine batches per iteration (`max_batch_size`); default: TensorRT-LLM's. "
        "Bounds the CUDA-graph sizes (DYN110, DYN119).",
    )
    max_num_tokens: int | None = Field(
        None,
        ge=1,
        description="Most tokens, over all requests, per engine iteration (`max_num_tokens`); default: "
        "TensorRT-LLM's. Bounds the CUDA-graph sizes (DYN119).",
    )
    max_seq_len: int | None = Field(
        None, ge=1, description="Longest sequence, prompt plus output tokens, the engine accepts (`max_seq_len`)."
    )
    free_gpu_memory_fraction: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Share (0 to 1) of the GPU memory free after loading the weights that the KV cache takes "
        "(`kv_cache_config.free_gpu_memory_fraction`).",
    )
    kv_cache_dtype: KvCacheDtype | None = Field(
        None,
        description="KV cache data type (`kv_cache_config.dtype`; auto: the checkpoint's). Prefill and decode "
        "must agree (DYN204).",
    )
    tokens_per_block: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="Tokens per KV cache block (`kv_cache_config.tokens_per_block`; default 32). Prefill and "
        "decode must agree (DYN203), and so must the KV router's block size (DYN302).",
    )
    enable_block_reuse: bool | None = Field(
        None,
        description="Reuse the KV cache blocks of a shared prefix across requests "
        "(`kv_cache_config.enable_block_reuse`); default: TensorRT-LLM's.",
    )
    chunked_prefill: bool | None = Field(
        None,
        description="Prefill long prompts in chunks of max_num_tokens (`enable_chunked_prefill`); default: "
        "TensorRT-LLM's.",
    )
    cuda_graphs: CudaGraphs | None = Field(
        None,
        description="CUDA-graph capture (`cuda_graph_config`); `false` means `{enabled: false}`. Default: "
        "TensorRT-LLM's, except that prefill workers run without CUDA graphs.",
    )
    overlap_scheduler: bool | None = Field(
        None,
        description="Schedule the next iteration while the GPU runs this one (written as "
        "`disable_overlap_scheduler`, inverted); default: on, except off for prefill workers.",
    )
    extra: dict[str, Any] = Field(
        default_factory=dict,
        description="Further TRT-LLM engine keys, written to the engine YAML as given; checked against the "
        "TensorRT-LLM version's keys and types (DYN108, DYN114), and may not override a value dyncc sets (DYN109).",
    )

    @field_validator("cuda_graphs", mode="before")
    @classmethod
    def _bool_means_enabled(cls, value: Any) -> Any:
        # `cuda_graphs: false` is the common spelling; it means a settings block with enabled=false.
        return {"enabled": value} if isinstance(value, bool) else value


class MoeLoadBalancer(SpecModel):
    """TensorRT-LLM's expert load balancer (EPLB): redundant expert slots, re-balanced while serving."""

    num_slots: int = Field(ge=1, description="Expert slots over all EP ranks (a multiple of expert_parallel: DYN112).")
    updates_per_iter: int | None = Field(
        None, ge=0, description="MoE layers re-balanced per iteration (`layer_updates_per_iter`; 0 = static)."
    )


class MoeSettings(SpecModel):
    """The pool's MoE kernels (`moe_config`): the backend names depend on the TensorRT-LLM version deployed."""

    backend: NoControlChars | None = Field(
        None,
        description="MoE backend (`moe_config.backend`), e.g. CUTLASS, TRTLLM, CUTEDSL, DEEPGEMM; checked per "
        "TensorRT-LLM version (DYN108).",
    )
    load_balancer: MoeLoadBalancer | None = Field(
        None,
        description="Expert load balancer (`moe_config.load_balancer`); needs a backend that has one (DYN120).",
    )


class Speculative(SpecModel):
    """Speculative decoding (`speculative_config`), the same in every pool (DYN205)."""

    mode: Literal["none", "mtp", "eagle", "eagle3"] = Field(
        "none",
        description="mtp drafts with the checkpoint's MTP layers (model.mtp_layers: DYN105); eagle and eagle3 "
        "with draft_model (DYN106).",
    )
    draft_len: int | None = Field(
        None, ge=1, le=64, description="Tokens drafted per step (`max_draft_len`); needs a mode (DYN111)."
    )
    draft_model: NoControlChars | None = Field(
        None, description="Eagle draft checkpoint, HF id or directory (DYN106); eagle modes only (DYN111)."
    )
    one_model: bool = Field(
        True,
        description="Eagle: draft and target model in one engine (`eagle3_one_model`); false only where the "
        "TensorRT-LLM version honours it (DYN122).",
    )


class KvTransfer(SpecModel):
    """How prefill workers send the KV cache to decode workers (`cache_transceiver_config`)."""

    backend: TransferBackend | None = Field(
        None,
        description="Transfer library; default: the Dynamo version's (NIXL for 1.x, UCX for 0.x), always written "
        "explicitly. Prefill and decode must agree (DYN202); DEFAULT is DYN206.",
    )
    max_tokens_in_buffer: int | None = Field(
        None,
        ge=0,
        description="Transfer buffer size, in tokens (`cache_transceiver_config.max_tokens_in_buffer`); "
        "default: TensorRT-LLM's.",
    )
