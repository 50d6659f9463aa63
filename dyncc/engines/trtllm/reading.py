"""A TensorRT-LLM engine config read back into the spec (``dyncc import``): the inverse of the file
:mod:`.engine_config` writes. Parallelism becomes the pool's fields, the keys the spec has a field for its
engine section, the KV-transfer keys its ``kv_transfer``, and the rest passes through under ``engine.extra``
as written, as dyncc's ``engine.extra`` passes it back. The import raises the warnings; this says what to warn of.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dyncc.engines.base import ConfigReading, ReadConfig

READING = ConfigReading(
    # TensorRT-LLM's own defaults (flattened keys): written in a config or left out, they mean the same.
    defaults={
        "tensor_parallel_size": 1,
        "pipeline_parallel_size": 1,
        "moe_expert_parallel_size": 1,
        "enable_attention_dp": False,
        "backend": "pytorch",
        "disable_overlap_scheduler": False,
        "kv_cache_config.tokens_per_block": 32,
        "cuda_graph_config": {},
        "trust_remote_code": False,
    },
    field_keys={
        "max_batch_size": "max_batch_size",
        "max_num_tokens": "max_num_tokens",
        "max_seq_len": "max_seq_len",
        "chunked_prefill": "enable_chunked_prefill",
        "overlap_scheduler": "disable_overlap_scheduler",
        "free_gpu_memory_fraction": "kv_cache_config.free_gpu_memory_fraction",
        "kv_cache_dtype": "kv_cache_config.dtype",
        "tokens_per_block": "kv_cache_config.tokens_per_block",
        "enable_block_reuse": "kv_cache_config.enable_block_reuse",
        "cuda_graphs": "cuda_graph_config",
    },
    transfer_keys={
        "backend": "cache_transceiver_config.backend",
        "max_tokens_in_buffer": "cache_transceiver_config.max_tokens_in_buffer",
    },
    # dynamo.trtllm's DEFAULT_MODEL, in 0.5.1 and 1.6.1 alike; 1.x reads DYN_TRTLLM_MODEL first.
    default_model="TinyLlama/TinyLlama-1.1B-Chat-v1.0",
    model_env="DYN_TRTLLM_MODEL",
)

# (config key, spec engine field) read from the top level of the config and from kv_cache_config.
_TOP_FIELDS = (("max_batch_size",) * 2, ("max_num_tokens",) * 2, ("max_seq_len",) * 2)
_KV_FIELDS = (
    ("free_gpu_memory_fraction", "free_gpu_memory_fraction"),
    ("dtype", "kv_cache_dtype"),
    ("tokens_per_block", "tokens_per_block"),
    ("enable_block_reuse", "enable_block_reuse"),
)
_GRAPH_FIELDS = (("max_batch_size", "max_batch_size"), ("batch_sizes", "batch_sizes"), ("enable_padding", "padding"))
_TRANSFER_FIELDS = (("backend", "backend"), ("max_tokens_in_buffer", "max_tokens_in_buffer"))


def read_config(config: Mapping[str, Any], role: str) -> ReadConfig:
    """A worker's engine config (its keys coerced as the engine reads them, by the import) as the spec says it."""
    config = dict(config)
    take = config.pop
    pool: dict[str, Any] = {}
    engine: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    read = ReadConfig(pool, engine, {}, {}, [])
    pool["tensor_parallel"] = _given(take("tensor_parallel_size", None), 1)
    pool["pipeline_parallel"] = _given(take("pipeline_parallel_size", None), 1)
    ep = _given(take("moe_expert_parallel_size", None), 1)
    if ep > 1:
        pool["expert_parallel"] = ep
    moe_tp = take("moe_tensor_parallel_size", None)
    if moe_tp is not None:
        pool["moe_tensor_parallel"] = moe_tp
    pool["attention_dp"] = bool(take("enable_attention_dp", False))
    if take("backend", "pytorch") not in ("pytorch", None):  # 1.x runs the PyTorch backend only
        read.unsupported.append(("backend", "engine backend other than pytorch"))
    if take("trust_remote_code", False):
        read.model["trust_remote_code"] = True
    for key, field in _TOP_FIELDS:
        if key in config:
            engine[field] = take(key)
    if "enable_chunked_prefill" in config:
        engine["chunked_prefill"] = take("enable_chunked_prefill")
    if "disable_overlap_scheduler" in config:
        engine["overlap_scheduler"] = not take("disable_overlap_scheduler")
    elif role == "prefill":
        engine["overlap_scheduler"] = True  # dyncc's prefill default is off; the original left the engine's
    kv = dict(take("kv_cache_config", None) or {})
    for key, field in _KV_FIELDS:
        if key in kv:
            engine[field] = kv.pop(key)
    if kv:
        extra["kv_cache_config"] = kv
    _cuda_graphs(engine, extra, role, config)
    transceiver = dict(take("cache_transceiver_config", None) or {})
    for key, field in _TRANSFER_FIELDS:
        if key in transceiver:
            value = transceiver.pop(key)
            read.transfer[field] = value.upper() if isinstance(value, str) else value  # the spec's spelling
    if transceiver:
        extra["cache_transceiver_config"] = transceiver
    extra.update(config)  # the rest passes through verbatim, as dyncc's engine.extra does
    if extra:
        engine["extra"] = extra
    return read


def _cuda_graphs(engine: dict[str, Any], extra: dict[str, Any], role: str, config: dict[str, Any]) -> None:
    if "cuda_graph_config" not in config:
        if role == "prefill":
            engine["cuda_graphs"] = {"enabled": True}  # the engine's default; dyncc's prefill default is off
        return
    graphs = config.pop("cuda_graph_config")
    if graphs is None:
        engine["cuda_graphs"] = {"enabled": False}
        return
    graphs = dict(graphs)
    out: dict[str, Any] = {}
    for key, field in _GRAPH_FIELDS:
        if key in graphs:
            out[field] = graphs.pop(key)
    engine["cuda_graphs"] = out or {"enabled": True}
    if graphs:
        extra["cuda_graph_config"] = graphs


def _given(value: Any, default: Any) -> Any:
    """A config value, or the engine's default where the config gives none (or null)."""
    return default if value is None else value
