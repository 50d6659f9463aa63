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

Role = Literal["agg", "prefill", "decode", "encode"]
ROLES: tuple[Role, ...] = ("agg", "prefill", "decode", "encode")

RouterMode = Literal["round-robin", "random", "power-of-two", "kv", "direct", "least-loaded", "device-aware-weighted"]
TransferBackend = Literal["UCX", "NIXL", "MPI", "MOONCAKE", "DEFAULT"]
WorkerRuntime = Literal["trtllm", "mocker"]
KvCacheDtype = Literal["auto", "fp8", "fp8_ds_mla", "nvfp4", "float16", "bfloat16", "float32"]


class SpecModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=False)


class ModelSource(SpecModel):
    """The checkpoint served, and the facts about it that rules need (unknown when left out)."""

    path: NoControlChars = Field(description="Hugging Face id or a local checkpoint directory.")
    served_name: NoControlChars | None = Field(None, description="Name clients ask for; defaults to the path.")
    revision: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$",
        max_length=256,
        description="Hugging Face revision (branch, tag or commit) of a hub model; default: the main branch.",
    )
    moe: bool | None = Field(None, description="Mixture-of-experts model (read from config.json if local).")
    num_experts: int | None = Field(None, ge=1, description="Routed experts per MoE layer.")
    mtp_layers: int | None = Field(
        None, ge=0, description="MTP (next-n prediction) layers in the checkpoint; 0 = none."
    )
    trust_remote_code: bool = False

    @property
    def name(self) -> str:
        return self.served_name or self.path


class CudaGraphs(SpecModel):
    enabled: bool = True
    batch_sizes: list[Annotated[int, Field(ge=1)]] | None = Field(None, min_length=1)
    max_batch_size: int | None = Field(None, ge=1)
    padding: bool | None = None


class EngineSettings(SpecModel):
    """First-class TRT-LLM engine limits; ``extra`` passes further engine keys through verbatim."""

    max_batch_size: int | None = Field(None, ge=1)
    max_num_tokens: int | None = Field(None, ge=1)
    max_seq_len: int | None = Field(None, ge=1)
    free_gpu_memory_fraction: float | None = Field(None, ge=0.0, le=1.0)
    kv_cache_dtype: KvCacheDtype | None = None
    tokens_per_block: int | None = Field(None, ge=1, le=1024)
    enable_block_reuse: bool | None = None
    chunked_prefill: bool | None = None
    cuda_graphs: CudaGraphs | None = None
    overlap_scheduler: bool | None = None
    extra: dict[str, Any] = Field(
        default_factory=dict, description="Further TRT-LLM engine keys, written to the engine YAML as given."
    )

    @field_validator("cuda_graphs", mode="before")
    @classmethod
    def _bool_means_enabled(cls, value: Any) -> Any:
        # `cuda_graphs: false` is the common spelling; it means a settings block with enabled=false.
        return {"enabled": value} if isinstance(value, bool) else value


class MoeLoadBalancer(SpecModel):
    """TensorRT-LLM's expert load balancer (EPLB): redundant expert slots, re-balanced while serving."""

    num_slots: int = Field(ge=1, description="Expert slots over all EP ranks (a multiple of expert_parallel).")
    updates_per_iter: int | None = Field(
        None, ge=0, description="MoE layers re-balanced per iteration (`layer_updates_per_iter`; 0 = static)."
    )


class MoeSettings(SpecModel):
    """The pool's MoE kernels (`moe_config`): the backend names depend on the TensorRT-LLM version deployed."""

    backend: NoControlChars | None = Field(
        None, description="MoE backend, e.g. CUTLASS, TRTLLM, CUTEDSL, DEEPGEMM (checked per TRT-LLM version)."
    )
    load_balancer: MoeLoadBalancer | None = None


class Pool(SpecModel):
    """One kind of worker (agg, prefill, decode or encode) and how many of it run."""

    replicas: int = Field(1, ge=1, le=100_000)
    tensor_parallel: int = Field(1, ge=1, le=4096)
    pipeline_parallel: int = Field(1, ge=1, le=4096)
    expert_parallel: int = Field(1, ge=1, le=4096)
    moe_tensor_parallel: int | None = Field(None, ge=1, le=4096)
    attention_dp: bool = Field(False, description="Attention data parallelism inside the TP ranks.")
    gpus_per_worker: int | None = Field(
        None, ge=1, description="If given, must equal tensor_parallel x pipeline_parallel."
    )
    publish_kv_events: bool | None = None
    moe: MoeSettings | None = Field(None, description="MoE backend and expert load balancer of this pool.")
    engine: EngineSettings = Field(default_factory=EngineSettings)
    env: dict[Annotated[str, Field(pattern=ENV_NAME, max_length=256)], Annotated[str, Field(max_length=32768)]] = Field(
        default_factory=dict
    )


class Pools(SpecModel):
    agg: Pool | None = None
    prefill: Pool | None = None
    decode: Pool | None = None
    encode: Pool | None = None

    @model_validator(mode="after")
    def _at_least_one_pool(self) -> Pools:
        # Which pools may go together is a graph rule (DYN201); an empty topology is simply not a spec.
        if not self.declared():
            raise ValueError("no pool declared: declare `agg`, or `prefill` and `decode`")
        return self

    def declared(self) -> list[tuple[Role, Pool]]:
        return [(role, pool) for role in ROLES if (pool := getattr(self, role)) is not None]


class Speculative(SpecModel):
    mode: Literal["none", "mtp", "eagle", "eagle3"] = "none"
    draft_len: int | None = Field(None, ge=1, le=64)
    draft_model: NoControlChars | None = None
    one_model: bool = True


class KvTransfer(SpecModel):
    backend: TransferBackend | None = Field(
        None, description="Default: the Dynamo version's (NIXL for 1.x, UCX for 0.x); always written explicitly."
    )
    max_tokens_in_buffer: int | None = Field(None, ge=1)


class Router(SpecModel):
    mode: RouterMode = "round-robin"
    disaggregation_strategy: Literal["decode_first", "prefill_first"] | None = Field(
        None, description="Dynamo 0.x only: which worker a request enters first (removed in 1.0)."
    )
    kv_events: bool = Field(True, description="False = approximate KV routing (no events from workers).")
    overlap_score_credit: float | None = Field(None, ge=0.0)
    temperature: float | None = Field(None, ge=0.0)
    replica_sync: bool | None = None
    conditional_disagg: bool = False
    block_size: int | None = Field(None, ge=1, le=1024)


class Migration(SpecModel):
    limit: int = Field(0, ge=0, le=1000)
    max_seq_len: int | None = Field(None, ge=1)


class Kvbm(SpecModel):
    enabled: bool = False


class LoadThresholds(SpecModel):
    """Scaling thresholds of the load planner (Dynamo 1.6 requires all that apply to the pools)."""

    prefill_scale_up_queue_tokens: int | None = Field(None, ge=0)
    prefill_scale_down_queue_tokens: int | None = Field(None, ge=0)
    decode_scale_up_kv_rate: float | None = Field(None, ge=0, le=100)
    decode_scale_down_kv_rate: float | None = Field(None, ge=0, le=100)


class Planner(SpecModel):
    enabled: bool = False
    mode: Literal["sla", "load"] = "sla"
    ttft_ms: float | None = Field(None, gt=0)
    itl_ms: float | None = Field(None, gt=0)
    adjustment_interval_s: int = Field(60, ge=1)
    load: LoadThresholds = Field(default_factory=LoadThresholds)


class Versions(SpecModel):
    """The stack deployed: picks the profile (flags, discovery, manifests, engine keys) dyncc writes for."""

    version: str = Field("1.6.1", pattern=r"^\d+\.\d+\.\d+([.-]?[A-Za-z0-9]+)*$", description="Dynamo version.")
    trtllm: str | None = Field(
        None,
        pattern=r"^\d+\.\d+\.\d+([.-]?[A-Za-z0-9]+)*$",
        description="TensorRT-LLM version; default: the one the Dynamo version pins.",
    )


class Cluster(SpecModel):
    gpus_per_node: int = Field(8, ge=1, le=1024)
    nodes: int = Field(1, ge=1, le=100_000)
    gpu_type: NoControlChars | None = None
    pool_nodes: Literal["shared", "separate"] = Field(
        "shared",
        description="`separate`: no node holds workers of two pools (as published multi-node recipes run); "
        "`shared` packs workers of any pool onto a node, which single-node deployments need.",
    )


class Benchmark(SpecModel):
    """A load test compiled next to the deployment (aiperf): bench.sh, a Kubernetes Job, an sbatch step."""

    isl: int = Field(512, ge=1, le=1_000_000, description="Input tokens per request (synthetic).")
    osl: int = Field(128, ge=1, le=1_000_000, description="Output tokens per request.")
    concurrency: list[Annotated[int, Field(ge=1, le=100_000)]] = Field(default_factory=lambda: [1, 4, 16], min_length=1)
    request_count: int = Field(100, ge=1, le=10_000_000, description="Requests per concurrency level.")
    streaming: bool = True
    aiperf_version: str = Field("0.13.0", pattern=r"^\d+\.\d+\.\d+$")


SweepKey = Annotated[str, Field(pattern=r"^[a-z_]+(\.[a-z_]+)+$|^[a-z_]+$", max_length=200)]


class CoreSpec(SpecModel):
    """What a deployment is, whatever runs it. Each target adds its own section (``local:``, ``k8s:``, ...):
    the full model is composed from this one and the registered targets' settings (``dyncc.deployment``)."""

    api_version: Literal["dyncc/v1"] = Field(alias="apiVersion")
    name: str = Field(pattern=DNS_LABEL, min_length=1, max_length=63)
    namespace: str = Field("dynamo", pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=63)
    dynamo: Versions = Field(default_factory=Versions)
    model: ModelSource
    pools: Pools
    speculative: Speculative = Field(default_factory=Speculative)
    kv_transfer: KvTransfer = Field(default_factory=KvTransfer)
    router: Router = Field(default_factory=Router)
    migration: Migration = Field(default_factory=Migration)
    kvbm: Kvbm = Field(default_factory=Kvbm)
    planner: Planner = Field(default_factory=Planner)
    request_plane: Literal["tcp", "nats"] | None = Field(
        None, description="Dynamo >= 1.0: `--request-plane` of the frontend and workers (Dynamo's default: tcp)."
    )
    image: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$", max_length=512)
    cluster: Cluster = Field(default_factory=Cluster)
    worker_runtime: WorkerRuntime = Field(
        "trtllm",
        description="mocker: the same topology with Dynamo's mock engine, for machines without GPUs "
        "(targets that can run it: local, slurm). `--engine mocker` overrides it.",
    )
    mocker_speedup_ratio: float = Field(1.0, ge=0.0, description="Mock engine timing speed-up (0 = no delays).")
    on_worker_exit: Literal["restart", "stop"] = Field(
        "restart",
        description="What the local and Slurm supervisors do when a worker process dies: `restart` it with "
        "bounded backoff while the others keep serving (what Kubernetes does; with migration on, in-flight "
        "streams move to a live worker), or `stop` the whole deployment (fail fast). The frontend dying "
        "always stops everything.",
    )
    benchmark: Benchmark | None = None
    sweep: dict[SweepKey, Annotated[list[Any], Field(min_length=1, max_length=64)]] = Field(
        default_factory=dict, description="Spec paths to lists of values: `dyncc sweep` builds every combination."
    )
