"""Version profiles: what one Dynamo release deploys, read from its release file (dyncc/releases).

A profile is the view of a release the compiler and the targets read: which flag spells each frontend
feature, which features exist, how discovery and Kubernetes work. Every field is derived here from the
release's own parser data (or a documented fact in its file); nothing compares version strings, so a new
release is a new data file. What the release means for an engine's workers — the version it pins, its key
set, how its parser spells each worker option — is that engine's own view of the same file
(``Implementation.release_view`` in :mod:`dyncc.engines`).

Clusters run the container they were validated on, often for a year, and the 2025 stack (Dynamo
0.4/0.5) differs from 1.6 in flags, discovery, manifests and engine keys in ways that crash at
start-up. Lowering and the targets read a :class:`Profile`'s fields; nothing else in dyncc compares
version numbers. Facts: shared/reference/README.md §6 and its 2025 example manifests.
"""

from __future__ import annotations

import functools
from typing import Literal

import msgspec

from dyncc.releases import Release, newest, release, releases


class Profile(msgspec.Struct, frozen=True):
    dynamo_version: str  # the one Dynamo release this profile is
    # Worker flags
    migration_on: Literal["frontend", "worker"]
    disaggregation_strategy: bool  # `--disaggregation-strategy decode_first|prefill_first` exists
    # Frontend
    conditional_disagg: bool
    approximate_kv_routing_flag: str  # turns KV events off at the router (approximate KV routing)
    # Discovery and transports
    discovery: Literal["file", "etcd+nats"]
    worker_env: tuple[tuple[str, str], ...]  # what turns on a worker's health server
    # 0.5.1's frontend can miss a worker that registers in etcd while the frontend sets up its watch, and
    # then never lists the model (1 local start in 25 on 2 busy cores): start it once the workers serve.
    frontend_after_workers: bool
    # Kubernetes
    planner_image: str  # repository path under nvcr.io/nvidia/ai-dynamo/
    dgd_api_version: Literal["v1beta1", "v1alpha1"]
    k8s_command_style: Literal["argv", "shell"]  # 2025 manifests: command [/bin/sh, -c] + one string
    request_plane_flag: bool  # `--request-plane tcp|nats` on frontend and workers (Dynamo >= 1.0)
    # Features the release has or lacks (DYN703 names the release that has one). Facts: each release's own
    # parsers, as ../shared/reference/dynamo-releases.json records them.
    planner_modes: tuple[str, ...] = ()  # planner modes its planner image runs (0.5.1: no `dynamo.planner` entry)
    router_reset_flag: bool = False  # frontend `--router-reset-states` (0.5.0 to 1.3.1; gone in 1.4.0)
    overlap_score_credit: bool = False  # the KV router's overlap credit (`--router-kv-overlap-score-credit`, 1.2.0+)
    # The KV router's weights (temperature, overlap credit) go in a generated `--router-policy-config` file, as
    # the default policy's parameters under `worker_selection`, instead of the flags the release deprecates
    # (1.6.x: "removed in v1.7"). Checked against 1.6.1's frontend, which starts with the file and refuses
    # an unknown or out-of-range parameter in it; 0.5.1 has neither the file nor the deprecation, and the
    # 1.3.1/1.4.2/1.5.1 frontends refuse this file (tests/test_router_policy.py): they take the flags.
    router_policy_config: bool = False
    # Worker `--dyn-tool-call-parser` / `--dyn-reasoning-parser` choices (the ai-dynamo-runtime registry).
    tool_call_parsers: tuple[str, ...] = ()
    reasoning_parsers: tuple[str, ...] = ()
    router_credit_max: float | None = None  # the frontend refuses a larger overlap credit at start-up (1.3.x)
    endpoint_health_env: bool = False  # readiness needs DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS (0.x)
    frontend_namespace_flag: bool = True  # the frontend takes `--namespace` (0.5.0+)
    # What DYN_TCP_RESPONSE_STREAM_HOST names: an address, or (1.1-1.5) a network interface, whose address the
    # response streams then bind ("Interface not found: 127.0.0.1" otherwise).
    response_stream_host: Literal["address", "interface"] = "address"
    # A worker serving a local model directory under a served name records its files as hf://<served name>/...
    # (1.1-1.3): the frontend then reads them from the Hugging Face cache, where the directory must be entered.
    local_model_from_hub_cache: bool = False
    # DYN_EVENT_PLANE where file discovery runs no NATS: 1.0-1.1 default to NATS and 1.2 fails to choose;
    # None where the release picks ZMQ by itself (1.3+) or runs NATS anyway (0.x).
    event_plane_env: str | None = None
    # The release data every fact above was read from (a Release compares by its version).
    release: Release | None = None


def profile_of(rel: Release) -> Profile:
    """What ``rel`` deploys, each fact read from its parsers' flags or its documented facts."""
    worker, frontend = (rel.flags[c] for c in ("worker", "frontend"))
    doc = rel.documented
    discovery_backends = rel.choices("worker", "--discovery-backend")
    discovery: Literal["file", "etcd+nats"] = "file" if "file" in discovery_backends else "etcd+nats"
    if rel.has("frontend", "--router-kv-events"):
        approximate = "--no-router-kv-events"
    else:
        approximate = "--no-kv-events"
    temperature = rel.option("frontend", "--router-temperature")
    return Profile(
        dynamo_version=rel.dynamo,
        migration_on="frontend" if "--migration-limit" in frontend else "worker",
        disaggregation_strategy="--disaggregation-strategy" in worker,
        conditional_disagg="--router-conditional-disagg" in frontend,
        approximate_kv_routing_flag=approximate,
        discovery=discovery,
        worker_env=tuple((k, v) for k, v in doc["worker_env"]),
        # The frontend watches etcd for workers; one that registers while the watch is set up can be missed
        # for good (seen on 0.5.1): with etcd discovery the frontend starts once the workers serve.
        frontend_after_workers=discovery == "etcd+nats",
        planner_image=doc["planner_image"],
        dgd_api_version=doc["dgd_api_version"],
        k8s_command_style=doc["k8s_command_style"],
        request_plane_flag="--request-plane" in worker and "--request-plane" in frontend,
        planner_modes=tuple(doc["planner_modes"]),
        router_reset_flag="--router-reset-states" in frontend,
        overlap_score_credit="--router-kv-overlap-score-credit" in frontend,
        # The weights go in the policy file where the release deprecates the flags in its favour.
        router_policy_config="--router-policy-config" in frontend
        and temperature is not None
        and "--router-policy-config" in (temperature.deprecated or ""),
        tool_call_parsers=rel.choices("worker", "--dyn-tool-call-parser"),
        reasoning_parsers=rel.choices("worker", "--dyn-reasoning-parser"),
        endpoint_health_env=bool(doc["endpoint_health_env"]),
        router_credit_max=doc["router_credit_max"],
        frontend_namespace_flag="--namespace" in frontend,
        response_stream_host=doc["response_stream_host"],
        local_model_from_hub_cache=bool(doc["local_model_from_hub_cache"]),
        event_plane_env=doc["event_plane_env"],
        release=rel,
    )


@functools.cache
def profile_for(dynamo_version: str) -> Profile | None:
    """The profile of exactly this Dynamo release, or None (no version is guessed from another)."""
    rel = release(dynamo_version)
    return None if rel is None else profile_of(rel)


def profiles() -> tuple[Profile, ...]:
    """Every release's profile, oldest first."""
    return tuple(p for r in releases() if (p := profile_for(r.dynamo)) is not None)


def newest_profile() -> Profile:
    profile = profile_for(newest().dynamo)
    assert profile is not None
    return profile


def supported_list() -> str:
    """The releases dyncc has, as ranges of consecutive releases' lines (0.4.0 ... 1.6.1)."""
    names = [r.dynamo for r in releases()]
    return f"{len(names)} releases, {names[0]} to {names[-1]}: {', '.join(names)}"
