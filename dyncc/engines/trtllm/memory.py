"""One worker's memory on one of its GPUs: weights after sharding, a working set for one engine iteration,
the runtime's own overhead, and the KV cache TensorRT-LLM makes of what is left.

TensorRT-LLM (PyTorch backend) loads its shard of the weights, runs a forward pass of ``max_num_tokens``
tokens to size its activations, and gives ``kv_cache_config.free_gpu_memory_fraction`` (default 0.9) of the
memory still free to the KV cache. So a worker cannot start when weights plus working set plus overhead
exceed the GPU, and cannot serve a full-length request when that KV cache holds fewer tokens than one
sequence of ``max_seq_len``; a KV cache that holds fewer than ``max_batch_size`` such sequences only caps the
batch (requests wait).

Figures, and where they come from:

- Working set per token of an iteration: ``2 bytes x (attention heads x head dim) x k``, with k measured for
  TensorRT-LLM by AIConfigurator 0.12.0 (``ACTIVATION_COEFFICIENTS``: dense 10, 6, 5 at 1, 2, 4+ attention-TP
  ranks; MoE 22, 13, 10), plus, for block-quantized MoE models, the expert dispatch buffers (one FP32 per 128
  values of each token's hidden state, per routed expert slot on the rank), at least 70 MiB.
- Runtime overhead: 3 GiB (CUDA context, cuBLAS/cuDNN workspaces, PyTorch's allocator; AIConfigurator budgets
  3.5 GiB with the CUDA graphs in it), 0.5 GiB for CUDA graphs where they are captured, and 0.4 GiB of NCCL
  buffers on a worker of several ranks (AIConfigurator's nccl_mem for 4-8 ranks: 392 MB).
- TensorRT-LLM's defaults for what the spec leaves out: max_num_tokens 8192, max_batch_size 2048,
  free_gpu_memory_fraction 0.9 (``BaseLlmArgs`` and ``KvCacheConfig`` of TensorRT-LLM 1.x).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import msgspec

from dyncc.facts.arch import DTYPE_BYTES, ModelArch
from dyncc.facts.memory import GIB, Budget

if TYPE_CHECKING:
    from dyncc.engines.base import Graph, GraphPool

DEFAULT_MAX_NUM_TOKENS = 8192
DEFAULT_MAX_BATCH_SIZE = 2048
DEFAULT_FREE_FRACTION = 0.9
RUNTIME_OVERHEAD = 3 * GIB
CUDA_GRAPH_MARGIN = GIB // 2
NCCL_BUFFERS = 400 * 1024 * 1024
MIN_WORKING_SET = 70 * 1024 * 1024

_DENSE_K = {1: 10.0, 2: 6.0, 4: 5.0}
_MOE_K = {1: 22.0, 2: 13.0, 4: 10.0}

# kv_cache_config.dtype -> bytes per cached value ("auto": the checkpoint's).
KV_DTYPE_BYTES = {"fp8": 1.0, "fp8_ds_mla": 1.0, "nvfp4": 0.5 + 1 / 16, "float16": 2.0, "bfloat16": 2.0, "float32": 4.0}


class WorkerShape(msgspec.Struct, frozen=True):
    """A worker's parallelism and engine limits (None: TensorRT-LLM's default)."""

    tensor_parallel: int
    pipeline_parallel: int = 1
    attention_dp: bool = False
    max_num_tokens: int | None = None
    max_batch_size: int | None = None
    max_seq_len: int | None = None
    kv_cache_dtype: str | None = None  # None or "auto": the checkpoint's
    free_gpu_memory_fraction: float | None = None
    kv_max_tokens: int | None = None  # kv_cache_config.max_tokens: a cap on the KV cache
    cuda_graphs: bool = True
    mtp: bool = False  # MTP speculative decoding loads the checkpoint's MTP layer


def _k(table: dict[int, float], ranks: int) -> float:
    return table[min(4, 1 << (max(ranks, 1).bit_length() - 1))]


def weight_bytes(arch: ModelArch, shape: WorkerShape) -> int:
    """One GPU's share of the weights: experts over every rank, the rest over the TP ranks (each rank keeps all
    of it under attention DP), every part over the pipeline stages."""
    tp, pp = shape.tensor_parallel, shape.pipeline_parallel
    split = 1 if shape.attention_dp else tp
    mtp_share = 1.0 if shape.mtp and arch.mtp_layer_params else 0.0
    layer_scale = 1.0 + mtp_share / max(arch.layers, 1)  # the MTP layer is one more layer like the others
    total = (
        arch.attention_params * DTYPE_BYTES[arch.attention_dtype] / split
        + arch.mlp_params * DTYPE_BYTES[arch.mlp_dtype] / split
        + arch.expert_params * DTYPE_BYTES[arch.expert_dtype] / tp
    ) * layer_scale + arch.embedding_params * DTYPE_BYTES["bfloat16"] / split
    return int(total / pp)


def working_set_bytes(arch: ModelArch, shape: WorkerShape) -> int:
    tokens = shape.max_num_tokens or DEFAULT_MAX_NUM_TOKENS
    attention_tp = 1 if shape.attention_dp else shape.tensor_parallel
    head_dim = arch.head_dim
    if arch.kv_lora_rank is not None and arch.qk_rope_head_dim:
        head_dim = max(head_dim, 128 + arch.qk_rope_head_dim)  # MLA queries: nope + rope dims per head
    width = arch.attention_heads * head_dim
    k = _k(_MOE_K if arch.moe else _DENSE_K, attention_tp)
    total = 2.0 * tokens * width * k
    if arch.moe and arch.expert_dtype in ("fp8", "nvfp4"):
        ranks_sending = shape.tensor_parallel if shape.attention_dp else 1
        total += (
            tokens
            * arch.hidden_size
            * ranks_sending
            * arch.experts
            * arch.experts_per_token
            / shape.tensor_parallel
            / 128
            * 4
        )
    return int(max(total, MIN_WORKING_SET))


def kv_value_bytes(arch: ModelArch, kv_cache_dtype: str | None) -> float:
    if kv_cache_dtype in (None, "auto"):
        return DTYPE_BYTES[arch.kv_dtype] if arch.kv_dtype in ("fp8", "bfloat16", "float16", "float32") else 2.0
    return KV_DTYPE_BYTES[kv_cache_dtype]


def kv_bytes(arch: ModelArch, shape: WorkerShape, tokens: int) -> float:
    """KV cache of one request of ``tokens`` tokens on one GPU of the worker."""
    per_layer = float(arch.kv_elements_per_token_layer())
    if arch.kv_lora_rank is None and not shape.attention_dp:
        # K and V heads split over the TP ranks; with more ranks than KV heads each rank keeps one.
        per_layer *= math.ceil(arch.kv_heads / shape.tensor_parallel) / arch.kv_heads
    per_layer *= kv_value_bytes(arch, shape.kv_cache_dtype)
    layers = arch.attention_layers if arch.attention_layers is not None else arch.layers
    sliding = min(arch.sliding_layers, layers)
    window = arch.sliding_window or tokens
    cached = (layers - sliding) * tokens + sliding * min(window, tokens)
    return per_layer * cached / shape.pipeline_parallel


def budget(arch: ModelArch, shape: WorkerShape, capacity: int) -> Budget:
    weights = weight_bytes(arch, shape)
    working = working_set_bytes(arch, shape)
    overhead = RUNTIME_OVERHEAD + (CUDA_GRAPH_MARGIN if shape.cuda_graphs else 0)
    if shape.tensor_parallel * shape.pipeline_parallel > 1:
        overhead += NCCL_BUFFERS
    fraction = DEFAULT_FREE_FRACTION if shape.free_gpu_memory_fraction is None else shape.free_gpu_memory_fraction
    per_token = kv_bytes(arch, shape, 1) if not arch.sliding_layers else kv_bytes(arch, shape, 1_000_000) / 1_000_000
    kv_cache = max(0, int((capacity - weights - working - overhead) * fraction))
    if shape.kv_max_tokens is not None:
        kv_cache = min(kv_cache, int(shape.kv_max_tokens * kv_bytes(arch, shape, 1)))
    sequence = shape.max_seq_len or shape.max_num_tokens or DEFAULT_MAX_NUM_TOKENS
    return Budget(
        capacity=capacity,
        weights=weights,
        working_set=working,
        overhead=overhead,
        kv_cache=kv_cache,
        kv_bytes_per_token=per_token,
        sequence_tokens=sequence,
        sequence_bytes=int(math.ceil(kv_bytes(arch, shape, sequence))),
        batch=shape.max_batch_size or DEFAULT_MAX_BATCH_SIZE,
        free_fraction=fraction,
        max_seq_len_set=shape.max_seq_len is not None,
        kv_value_bytes=kv_value_bytes(arch, shape.kv_cache_dtype),
    )


# kv_cache_config.dtype values the model has a size for (another value: the checkpoint's).
_KV_DTYPES = ("auto", *KV_DTYPE_BYTES)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def worker_shape(graph: Graph, pool: GraphPool, tensor_parallel: int | None = None) -> WorkerShape:
    """The pool's worker as the memory model reads it, from its resolved engine config (``tensor_parallel``:
    try another TP size)."""
    config = pool.engine
    fraction = config.get("kv_cache_config.free_gpu_memory_fraction")
    dtype = config.get("kv_cache_config.dtype")
    return WorkerShape(
        tensor_parallel=tensor_parallel or pool.spec.tensor_parallel,
        pipeline_parallel=pool.spec.pipeline_parallel,
        attention_dp=pool.spec.attention_dp,
        max_num_tokens=_int(config.get("max_num_tokens")),
        max_batch_size=_int(config.get("max_batch_size")),
        max_seq_len=_int(config.get("max_seq_len")),
        kv_cache_dtype=dtype if isinstance(dtype, str) and dtype in _KV_DTYPES else None,
        free_gpu_memory_fraction=float(fraction) if isinstance(fraction, (int, float)) and 0 <= fraction <= 1 else None,
        kv_max_tokens=_int(config.get("kv_cache_config.max_tokens")),
        cuda_graphs=config.get("cuda_graph_config", {}) is not None,  # graphs are captured unless turned off
        mtp=graph.spec.speculative.mode == "mtp",
    )


def memory_budget(graph: Graph, pool: GraphPool, capacity: int, tensor_parallel: int | None = None) -> Budget | None:
    """One GPU of the pool's worker on a GPU of ``capacity`` bytes; None when the model's architecture is unknown."""
    arch = graph.facts.arch
    if arch is None:
        return None
    return budget(arch, worker_shape(graph, pool, tensor_parallel), capacity)
