"""The worker pools: each role's replicas, parallelism, placement, engine settings and environment."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from dyncc.spec.engine_settings import EngineSettings, MoeSettings
from dyncc.spec.fields import DNS_LABEL, ENV_NAME, LaunchWord, NoControlChars, SpecModel

Role = Literal["agg", "prefill", "decode", "encode"]
ROLES: tuple[Role, ...] = ("agg", "prefill", "decode", "encode")


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
