"""The topology spec: one deployment, as typed pydantic models.

Keys are snake_case; unknown keys are errors (``extra="forbid"``) and values are checked strictly
(``"8"`` is not an integer), because a silently coerced or ignored value is exactly the class of
mistake dyncc exists to catch. This module knows nothing of targets' file formats: it only says
what a deployment is. Cross-field rules that need the whole topology live in ``dyncc.compiler``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

API_VERSION = "dyncc/v1"

# Strings that end up in shell scripts, manifests and file names. Anything outside these patterns is
# rejected at load time; what passes is still quoted by every target.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
NoControlChars = Annotated[str, Field(min_length=1, pattern=r"^[^\x00-\x1f\x7f]+$")]

# One word of a pool's launch prefix (a program and its arguments, each passed as one argv word).
LaunchWord = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]

Role = Literal["agg", "prefill", "decode", "encode"]
ROLES: tuple[Role, ...] = ("agg", "prefill", "decode", "encode")

RouterMode = Literal["round-robin", "random", "power-of-two", "kv", "direct", "least-loaded", "device-aware-weighted"]
TransferBackend = Literal["UCX", "NIXL", "MPI", "MOONCAKE", "DEFAULT"]
WorkerRuntime = Literal["trtllm", "mocker"]
RequestPlane = Literal["tcp", "nats"]
OnWorkerExit = Literal["restart", "stop"]
InfraNode = Literal["head", "dedicated"]
KvCacheDtype = Literal["auto", "fp8", "fp8_ds_mla", "nvfp4", "float16", "bfloat16", "float32"]


class SpecModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=False)


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
        description="Attention (query) heads per layer (config.json `num_attention_heads` if local); "
        "tensor_parallel must divide it unless attention DP is on (DYN124).",
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


class Pool(SpecModel):
    """One kind of worker (agg, prefill, decode or encode) and how many of it run."""

    replicas: int = Field(
        1,
        ge=1,
        le=100_000,
        description="Workers in this pool, each with tensor_parallel x pipeline_parallel GPUs; they must fit "
        "the cluster (DYN403, DYN405, DYN406).",
    )
    tensor_parallel: int = Field(
        1,
        ge=1,
        le=4096,
        description="GPUs each layer is split over (`tensor_parallel_size`). A worker spanning nodes fills "
        "them (DYN404); at most 2,048 GPUs per worker (DYN407).",
    )
    pipeline_parallel: int = Field(
        1, ge=1, le=4096, description="Pipeline stages the layers are split into (`pipeline_parallel_size`)."
    )
    expert_parallel: int = Field(
        1,
        ge=1,
        le=4096,
        description="Ranks the MoE experts are spread over (`moe_expert_parallel_size`); x moe_tensor_parallel "
        "= tensor_parallel (DYN102), needs an MoE model (DYN103) whose experts it divides (DYN107).",
    )
    moe_tensor_parallel: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="Ranks each expert is split over (`moe_tensor_parallel_size`); default: tensor_parallel / "
        "expert_parallel (DYN102); MoE models only (DYN103).",
    )
    attention_dp: bool = Field(
        False,
        description="Attention data parallelism inside the TP ranks (`enable_attention_dp`); needs "
        "tensor_parallel > 1 (DYN104).",
    )
    gpus_per_worker: int | None = Field(
        None, ge=1, description="If given, must equal tensor_parallel x pipeline_parallel (DYN101)."
    )
    node_group: str | None = Field(
        None,
        pattern=DNS_LABEL,
        max_length=63,
        description="The cluster.node_groups entry this pool's workers run on (DYN410); needed when the cluster "
        "has several groups, unless gpu_type picks one.",
    )
    gpu_type: NoControlChars | None = Field(
        None,
        max_length=64,
        description="The GPU this pool runs on: picks the node group of that type (DYN410), or must equal "
        "cluster.gpu_type.",
    )
    publish_kv_events: bool | None = Field(
        None,
        description="Workers publish KV cache events (`--publish-kv-events`) for the KV router; default: on "
        "where the router uses them. false under the KV router with kv_events is DYN301.",
    )
    moe: MoeSettings | None = Field(
        None, description="MoE backend and expert load balancer of this pool (MoE models only: DYN123)."
    )
    engine: EngineSettings = Field(
        default_factory=EngineSettings, description="TensorRT-LLM engine settings, written to the pool's engine YAML."
    )
    env: dict[Annotated[str, Field(pattern=ENV_NAME, max_length=256)], Annotated[str, Field(max_length=32768)]] = Field(
        default_factory=dict,
        description="Environment of the pool's worker processes: no secrets (DYN113), no control characters "
        "(DYN117), nothing the launch script manages (DYN520), within the exec size limit (DYN116). A value may "
        "hold `{worker_index}` (the worker's index among all workers of the deployment, unique) and `{rank}` "
        "(the process's rank within its worker, one per GPU), e.g. `TRTLLM_EPLB_SHM_NAME: moe_{worker_index}`: "
        "filled in on Slurm, refused on targets that cannot (DYN585).",
    )
    launch_prefix: list[LaunchWord] = Field(
        default_factory=list,
        max_length=32,
        description="Words every worker process of the pool is started under, e.g. NUMA binding "
        "`[numactl, -m, '0,1']` for GB200 workers: each rank's command begins with them. Its first word is a "
        "program, not an option; Slurm only (DYN584).",
    )

    @field_validator("launch_prefix")
    @classmethod
    def _prefix_starts_with_a_program(cls, words: list[str]) -> list[str]:
        if words and words[0].startswith("-"):
            raise ValueError(f"launch_prefix must start with a program, not the option {words[0]!r}")
        return words


class Pools(SpecModel):
    """The worker pools: `agg` (aggregated serving), or `prefill` and `decode` (disaggregated)."""

    agg: Pool | None = Field(None, description="Aggregated workers: prefill and decode in the same engine.")
    prefill: Pool | None = Field(
        None, description="Prefill workers: compute the prompt's KV cache for a decode worker; need decode (DYN201)."
    )
    decode: Pool | None = Field(
        None, description="Decode workers: generate from the KV cache prefill sends them; need prefill (DYN201)."
    )
    encode: Pool | None = Field(
        None, description="Multimodal encode workers; a pool that no request reaches is DYN401."
    )

    @model_validator(mode="after")
    def _at_least_one_pool(self) -> Pools:
        # Which pools may go together is a graph rule (DYN201); an empty topology is simply not a spec.
        if not self.declared():
            raise ValueError("no pool declared: declare `agg`, or `prefill` and `decode`")
        return self

    def declared(self) -> list[tuple[Role, Pool]]:
        return [(role, pool) for role in ROLES if (pool := getattr(self, role)) is not None]


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


class Router(SpecModel):
    """How the frontend picks a worker for each request (`--router-mode` and the KV router's options)."""

    mode: RouterMode = Field(
        "round-robin",
        description="`--router-mode`; kv routes by KV cache overlap and is the only mode that takes the KV "
        "options below (DYN304).",
    )
    disaggregation_strategy: Literal["decode_first", "prefill_first"] | None = Field(
        None, description="Dynamo 0.x only: which worker a request enters first (removed in 1.0: DYN702)."
    )
    kv_events: bool = Field(
        True,
        description="KV router: false = approximate KV routing, no events from workers (DYN301, DYN304, DYN305).",
    )
    overlap_score_credit: float | None = Field(
        None,
        ge=0.0,
        allow_inf_nan=False,
        description="KV router: weight of the cached-prefix overlap in a worker's cost "
        "(Dynamo 1.6: the default policy's overlap_score_credit in the generated --router-policy-config file); "
        "kv mode only (DYN304).",
    )
    temperature: float | None = Field(
        None,
        ge=0.0,
        allow_inf_nan=False,
        description="KV router: randomness of the pick, 0 = the best worker (`--router-temperature`); kv mode "
        "only (DYN304); Dynamo 1.6: the default policy's router_temperature in the generated "
        "--router-policy-config file.",
    )
    replica_sync: bool | None = Field(
        None,
        description="KV router: frontend replicas share routing state (`--router-replica-sync`); kv mode only "
        "(DYN304), for several frontends (DYN307).",
    )
    reset_states: bool = Field(
        False,
        description="KV router: start from an empty routing state instead of the one kept in the store "
        "(`--router-reset-states`); Dynamo 0.5 to 1.3 only (DYN703): 1.4 removed the router's durable state.",
    )
    conditional_disagg: bool = Field(
        False,
        description="KV router: prefill remotely only when it pays (`--router-conditional-disagg`); needs kv "
        "mode, both pools (DYN303), KV events (DYN305) and Dynamo 1.x (DYN703).",
    )
    block_size: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="KV router: tokens per hashed block (`--kv-cache-block-size`); default and required: the "
        "pools' tokens_per_block (DYN302); kv mode only (DYN304).",
    )


class Migration(SpecModel):
    """Request migration: a stream whose worker dies continues on another worker."""

    limit: int = Field(
        0, ge=0, le=1000, description="Times one request may move to another worker (`--migration-limit`); 0 = off."
    )
    max_seq_len: int | None = Field(
        None,
        ge=1,
        description="Longest sequence, in tokens, still migrated (`--migration-max-seq-len`); only with limit > 0 (DYN308).",
    )


class Kvbm(SpecModel):
    """Dynamo's KV block manager (KVBM): KV cache offload to host memory and disk."""

    enabled: bool = Field(
        False, description="Workers run the KVBM connector (`--connector kvbm`); not with the mock engine (DYN582)."
    )


class LoadThresholds(SpecModel):
    """Scaling thresholds of the load planner (Dynamo 1.6 requires all that apply to the pools)."""

    prefill_scale_up_queue_tokens: int | None = Field(
        None, ge=0, description="Add a prefill worker above this many queued prefill tokens (DYN602)."
    )
    prefill_scale_down_queue_tokens: int | None = Field(
        None, ge=0, description="Remove a prefill worker below this many queued prefill tokens (DYN602)."
    )
    decode_scale_up_kv_rate: float | None = Field(
        None, ge=0, le=100, description="Add a decode worker above this KV cache use, in percent (DYN602)."
    )
    decode_scale_down_kv_rate: float | None = Field(
        None, ge=0, le=100, description="Remove a decode worker below this KV cache use, in percent (DYN602)."
    )


class Planner(SpecModel):
    """Dynamo's planner: scales the worker pools while serving (Kubernetes only: DYN580)."""

    enabled: bool = Field(False, description="Deploy the planner; targets that cannot run it refuse (DYN580).")
    mode: Literal["sla", "load"] = Field(
        "sla", description="sla: scale to meet ttft_ms and itl_ms (DYN601); load: scale on the load thresholds."
    )
    ttft_ms: float | None = Field(None, gt=0, description="SLA planner: time-to-first-token target, in ms (DYN601).")
    itl_ms: float | None = Field(None, gt=0, description="SLA planner: inter-token latency target, in ms (DYN601).")
    adjustment_interval_s: int = Field(60, ge=1, description="Seconds between the planner's scaling decisions.")
    load: LoadThresholds = Field(
        default_factory=LoadThresholds, description="Load planner thresholds (mode load), in order (DYN602)."
    )


class Versions(SpecModel):
    """The stack deployed: picks the profile (flags, discovery, manifests, engine keys) dyncc writes for."""

    version: str = Field(
        "1.6.1", pattern=r"^\d+\.\d+\.\d+([.-]?[A-Za-z0-9]+)*$", description="Dynamo version deployed (DYN701)."
    )
    trtllm: str | None = Field(
        None,
        pattern=r"^\d+\.\d+\.\d+([.-]?[A-Za-z0-9]+)*$",
        description="TensorRT-LLM version; default: the one the Dynamo version pins (DYN705).",
    )


class NodeGroup(SpecModel):
    """Nodes of one GPU type: pools name the group they run on (`pools.<role>.node_group` or `gpu_type`)."""

    gpu_type: NoControlChars = Field(max_length=64, description="GPU model of these nodes, e.g. H100, H200, GB200.")
    gpus_per_node: int = Field(8, ge=1, le=1024, description="GPUs on each node of the group.")
    nodes: int = Field(1, ge=1, le=100_000, description="Nodes in the group (DYN403).")
    gpu_product: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$",
        max_length=63,
        description="k8s: the `nvidia.com/gpu.product` node label value these nodes carry; default: the one GPU "
        "feature discovery sets for gpu_type (e.g. NVIDIA-H100-80GB-HBM3).",
    )
    slurm_feature: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
        max_length=64,
        description="Slurm: the node feature of these nodes (`--constraint`); default: gpu_type in lower case.",
    )


class Infrastructure(SpecModel):
    """Where etcd and NATS run when the deployment needs them (Dynamo 0.x's discovery and event plane,
    `request_plane: nats`, `slurm.discovery: etcd`)."""

    node: InfraNode = Field(
        "head",
        description="head: on the frontend's node; dedicated: on a node of their own that no worker uses (the "
        "job asks for one more node: DYN567; nothing to run there is DYN566). Slurm only (DYN583).",
    )


class Cluster(SpecModel):
    """The machines the workers are placed on."""

    gpus_per_node: int = Field(
        8, ge=1, le=1024, description="GPUs on each node; workers are packed onto nodes this size (DYN404, DYN405)."
    )
    nodes: int = Field(
        1, ge=1, le=100_000, description="Nodes available to the deployment (DYN403); a job asks for them (DYN409)."
    )
    gpu_type: NoControlChars | None = Field(
        None, description="GPU model, e.g. H100 or GB200 (GB200/GB300 turn the k8s ComputeDomain on)."
    )
    node_groups: dict[Annotated[str, Field(pattern=DNS_LABEL, max_length=63)], NodeGroup] | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="Nodes of different GPU types, by group name (instead of gpus_per_node, nodes and gpu_type: "
        "DYN411); each pool runs on one group (DYN410), placed on that group's nodes.",
    )
    pool_nodes: Literal["shared", "separate"] = Field(
        "shared",
        description="`separate`: no node holds workers of two pools (as published multi-node recipes run); "
        "`shared` packs workers of any pool onto a node, which single-node deployments need (DYN409).",
    )


class Benchmark(SpecModel):
    """A load test compiled next to the deployment (aiperf): bench.sh, a Kubernetes Job, an sbatch step."""

    isl: int = Field(512, ge=1, le=1_000_000, description="Input tokens per request (synthetic).")
    osl: int = Field(
        128,
        ge=1,
        le=1_000_000,
        description="Output tokens per request, exactly: the benchmark asks the engine to ignore its end-of-sequence token.",
    )
    concurrency: list[Annotated[int, Field(ge=1, le=100_000)]] = Field(
        default_factory=lambda: [1, 4, 16], min_length=1, description="Concurrent requests; one aiperf run per value."
    )
    request_count: int = Field(100, ge=1, le=10_000_000, description="Requests per concurrency level.")
    streaming: bool = Field(True, description="Stream responses (measures time to first token, inter-token latency).")
    aiperf_version: str = Field("0.13.0", pattern=r"^\d+\.\d+\.\d+$", description="aiperf version of the load test.")


SweepKey = Annotated[str, Field(pattern=r"^[a-z_]+(\.[a-z_]+)+$|^[a-z_]+$", max_length=200)]


class CoreSpec(SpecModel):
    """What a deployment is, whatever runs it. Each target adds its own section (``local:``, ``k8s:``, ...):
    the full model is composed from this one and the registered targets' settings (``dyncc.deployment``)."""

    api_version: Literal["dyncc/v1"] = Field(alias="apiVersion", description="Spec format: dyncc/v1 (DYN004).")
    name: str = Field(
        pattern=DNS_LABEL,
        min_length=1,
        max_length=63,
        description="Deployment name: names the DGD, job, scripts and components; Kubernetes names derived "
        "from it must fit (DYN504).",
    )
    namespace: str = Field(
        "dynamo",
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        max_length=63,
        description="Dynamo namespace the frontend and workers register in (`--namespace`); on Kubernetes the "
        "operator derives it instead, as <k8s namespace>-<name>.",
    )
    dynamo: Versions = Field(default_factory=Versions, description="Dynamo and TensorRT-LLM versions deployed.")
    model: ModelSource = Field(description="The model served.")
    pools: Pools = Field(description="Worker pools: their parallelism, engine settings and environment.")
    speculative: Speculative = Field(default_factory=Speculative, description="Speculative decoding.")
    kv_transfer: KvTransfer = Field(
        default_factory=KvTransfer, description="KV cache transfer from prefill to decode (disaggregated pools)."
    )
    router: Router = Field(default_factory=Router, description="The frontend's request routing.")
    migration: Migration = Field(
        default_factory=Migration, description="Request migration to another worker when one dies."
    )
    kvbm: Kvbm = Field(default_factory=Kvbm, description="KV block manager: KV cache offload.")
    planner: Planner = Field(default_factory=Planner, description="Autoscaling planner (Kubernetes).")
    infrastructure: Infrastructure = Field(
        default_factory=Infrastructure, description="Where etcd and NATS run (Slurm: DYN583 elsewhere)."
    )
    request_plane: RequestPlane | None = Field(
        None,
        description="Dynamo >= 1.0 (DYN703): `--request-plane` of the frontend and workers (Dynamo's default: "
        "tcp); nats needs a NATS server (DYN706).",
    )
    image: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$",
        max_length=512,
        description="Container image of the frontend and workers; default: NGC's tensorrtllm-runtime of the "
        "Dynamo version (on Slurm in pyxis' form, `nvcr.io#nvidia/...`). Its tag must match dynamo.version (DYN704).",
    )
    cluster: Cluster = Field(
        default_factory=Cluster, description="GPUs per node, node count and GPU type (one-node targets: DYN501)."
    )
    worker_runtime: WorkerRuntime = Field(
        "trtllm",
        description="mocker: the same topology with Dynamo's mock engine, for machines without GPUs "
        "(targets that can run it: local, slurm; DYN503, DYN530). `--engine mocker` overrides it.",
    )
    mocker_speedup_ratio: float = Field(1.0, ge=0.0, description="Mock engine timing speed-up (0 = no delays).")
    mocker_timing: str = Field(
        "builtin",
        min_length=1,
        max_length=4096,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="How long the mock engine's prefill passes and decode steps take (the timed twin): `builtin` "
        "(the mock's own arbitrary timing), `aiconfigurator` (each pool's steps as AIConfigurator estimates them "
        "for its parallelism on cluster.gpu_type, at benchmark.isl/osl; DYN913), or the path of a mocker timing "
        "NPZ, relative to the spec file (DYN912). Needs worker_runtime mocker (DYN910) and Dynamo 1.x (DYN703). "
        "`--timing` overrides it.",
    )
    on_worker_exit: OnWorkerExit = Field(
        "restart",
        description="What the local and Slurm supervisors do when a worker process dies: `restart` it with "
        "bounded backoff while the others keep serving (what Kubernetes does; with migration on, in-flight "
        "streams move to a live worker), or `stop` the whole deployment (fail fast). The frontend dying "
        "always stops everything.",
    )
    benchmark: Benchmark | None = Field(
        None, description="A load test built next to the deployment; targets that cannot build it say so (DYN581)."
    )
    sweep: dict[SweepKey, Annotated[list[Any], Field(min_length=1, max_length=64)]] = Field(
        default_factory=dict,
        description="Spec paths to lists of values: `dyncc sweep` builds every combination (DYN801, DYN802, DYN803).",
    )
