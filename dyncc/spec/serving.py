"""What serves requests around the workers: the frontend's routing, request migration, the KV block manager
and the planner that scales the pools."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dyncc.spec.fields import SpecModel

RouterMode = Literal["round-robin", "random", "power-of-two", "kv", "direct", "least-loaded", "device-aware-weighted"]


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
