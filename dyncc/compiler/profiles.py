"""Version profiles: what one Dynamo release deploys, read from its release file (dyncc/releases).

A profile is the view of a release the compiler and the targets read: which flag spells each feature, which
features exist, and which TensorRT-LLM key set checks the engine configs. Every field is derived here from the
release's own parser data (or a documented fact in its file); nothing compares version strings, so a new
release is a new data file. The engine side — key set, enum spellings, aliases, speculative forms — is a
TRT-LLM version's data file (``dyncc/engines/trtllm/data/trtllm_<version>_keys.json``): the release's pin where
dyncc carries that set, else the nearest one (``keyset`` names it, DYN707 warns).

Clusters run the container they were validated on, often for a year, and the 2025 stack (Dynamo
0.4/0.5) differs from 1.6 in flags, discovery, manifests and engine keys in ways that crash at
start-up. Lowering and the targets read a :class:`Profile`'s fields; nothing else in dyncc compares
version numbers. Facts: shared/reference/README.md §6 and its 2025 example manifests.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Literal

from packaging.version import Version

from dyncc.engines.trtllm.keys import accepted_keys, enum_values, keys_versions
from dyncc.releases import Release, newest, release, releases


@dataclasses.dataclass(frozen=True)
class Profile:
    dynamo_version: str  # the one Dynamo release this profile is
    trtllm_version: str  # the TensorRT-LLM it pins
    keyset: str  # the TensorRT-LLM key set that checks engine configs (the pin's, or the nearest: DYN707)
    # Worker flags
    agg_mode: str  # what `--disaggregation-mode` says for aggregated workers
    kv_event_flags: tuple[str, ...]
    migration_on: Literal["frontend", "worker"]
    disaggregation_strategy: bool  # `--disaggregation-strategy decode_first|prefill_first` exists
    worker_namespace_flag: bool  # 0.5's worker takes `--endpoint dyn://ns.comp.ep` instead
    # Frontend
    conditional_disagg: bool
    approximate_kv_routing_flag: str  # turns KV events off at the router (approximate KV routing)
    mocker_disaggregation: bool  # the mock engine has --disaggregation-mode/--bootstrap-ports/--max-model-len
    mocker_timing_file: bool  # the mock engine reads step times from a file (--planner-profile-data)
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
    # TensorRT-LLM engine configs
    transfer_default: str
    request_plane_flag: bool  # `--request-plane tcp|nats` on frontend and workers (Dynamo >= 1.0)
    # Dynamo 0.5.1's worker builds a BuildConfig from its --max-batch-size/--max-num-tokens/--max-seq-len
    # flags (defaults when absent), and TRT-LLM 1.1.0rc5 copies build_config's values over the engine
    # YAML's top-level ones: the engine limits must be flags too, or the YAML's are silently replaced.
    engine_limits_as_flags: bool
    # Features the release has or lacks (DYN703 names the release that has one). Facts: each release's own
    # parsers, as ../shared/reference/dynamo-releases.json records them.
    planner_modes: tuple[str, ...] = ()  # planner modes its planner image runs (0.5.1: no `dynamo.planner` entry)
    kvbm_connector: bool = False  # the TensorRT-LLM worker takes `--connector kvbm`
    router_reset_flag: bool = False  # frontend `--router-reset-states` (0.5.0 to 1.3.1; gone in 1.4.0)
    overlap_score_credit: bool = False  # the KV router's overlap credit (`--router-kv-overlap-score-credit`, 1.2.0+)
    # The KV router's weights (temperature, overlap credit) go in a generated `--router-policy-config` file, as
    # the default policy's parameters under `worker_selection`, instead of the flags the release deprecates
    # (1.6.x: "removed in v1.7"). Checked against 1.6.1's frontend, which starts with the file and refuses
    # an unknown or out-of-range parameter in it; 0.5.1 has neither the file nor the deprecation.
    router_policy_config: bool = False
    chat_template_flag: bool = False  # worker `--custom-jinja-template` (0.6.0 and later)
    worker_revision_flag: bool = False  # worker `--revision`: it downloads a hub model at a revision (1.0.0+)
    # Worker `--dyn-tool-call-parser` / `--dyn-reasoning-parser` choices (the ai-dynamo-runtime registry).
    tool_call_parsers: tuple[str, ...] = ()
    reasoning_parsers: tuple[str, ...] = ()
    router_credit_max: float | None = None  # the frontend refuses a larger overlap credit at start-up (1.3.x)
    endpoint_health_env: bool = False  # readiness needs DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS (0.x)
    frontend_namespace_flag: bool = True  # the frontend takes `--namespace` (0.5.0+)
    model_flag: str = "--model-path"  # the worker's model flag (1.0 renamed it --model; the old name deprecated)
    encode_endpoint: str | None = None  # the encode worker's default endpoint; `{namespace}` filled in
    # The release data every fact above was read from (not part of a profile's identity).
    release: Release | None = dataclasses.field(default=None, compare=False, hash=False, repr=False)

    @property
    def keys(self) -> dict[str, Any]:
        """The key set that checks this profile's engine configs."""
        return accepted_keys(self.keyset)

    @property
    def label(self) -> str:
        return f"Dynamo {self.dynamo_version} (TensorRT-LLM {self.trtllm_version})"

    @property
    def keyset_exact(self) -> bool:
        return self.keyset == self.trtllm_version

    def transceiver_backend(self, backend: str) -> str:
        """The spelling this version's TRT-LLM accepts; an unknown backend is kept for DYN108 to report."""
        accepted = enum_values(self.keyset, "cache_transceiver_config.backend")
        return next((b for b in accepted if b.upper() == backend.upper()), backend)


def keyset_for(trtllm: str) -> str:
    """The key set that checks engine configs for a TensorRT-LLM pin: the pin's own where dyncc carries it;
    else the newest set of the same TRT-LLM line not newer than the pin (an older set may refuse a key the pin
    added, which is said; a newer one could pass a key the pin lacks, which is not), else that line's oldest,
    else the nearest set of another line. DYN707 warns whenever the set is not the pin's own."""
    known = keys_versions()
    if trtllm in known:
        return trtllm
    pin = Version(trtllm)
    line = [v for v in known if Version(v).release[:2] == pin.release[:2]]
    older = [v for v in line if Version(v) <= pin]
    if older:
        return max(older, key=Version)
    if line:
        return min(line, key=Version)
    return min(known, key=lambda v: (abs(_line_number(Version(v)) - _line_number(pin)), Version(v)))


def _line_number(version: Version) -> int:
    major, minor = (version.release + (0, 0))[:2]
    return major * 1000 + minor


def _encode_endpoint(rel: Release) -> str | None:
    """The endpoint the encode worker serves unless told otherwise, from the release's parser constants."""
    constants = rel.constants
    for name, value in constants.items():
        if name.endswith(".DEFAULT_ENCODE_ENDPOINT"):
            return str(value)  # 0.x: a fixed endpoint (its workers take no namespace flag)
    for name, value in constants.items():
        if name.endswith(".DEFAULT_ENCODE_COMPONENT"):
            return f"dyn://{{namespace}}.{value}.generate"
    return None


def profile_of(rel: Release) -> Profile:
    """What ``rel`` deploys, each fact read from its parsers' flags or its documented facts."""
    worker, frontend, mocker = (rel.flags[c] for c in ("worker", "frontend", "mocker"))
    keyset = keyset_for(rel.trtllm)
    doc = rel.documented
    discovery_backends = rel.choices("worker", "--discovery-backend")
    discovery: Literal["file", "etcd+nats"] = "file" if "file" in discovery_backends else "etcd+nats"
    connector = rel.option("worker", "--connector")
    if rel.has("frontend", "--router-kv-events"):
        approximate = "--no-router-kv-events"
    else:
        approximate = "--no-kv-events"
    temperature = rel.option("frontend", "--router-temperature")
    return Profile(
        dynamo_version=rel.dynamo,
        trtllm_version=rel.trtllm,
        keyset=keyset,
        agg_mode="agg" if "agg" in rel.choices("worker", "--disaggregation-mode") else "prefill_and_decode",
        kv_event_flags=("--publish-kv-events",)
        if "--publish-kv-events" in worker
        else ("--publish-events-and-metrics",),
        migration_on="frontend" if "--migration-limit" in frontend else "worker",
        disaggregation_strategy="--disaggregation-strategy" in worker,
        worker_namespace_flag="--namespace" in worker,
        conditional_disagg="--router-conditional-disagg" in frontend,
        approximate_kv_routing_flag=approximate,
        mocker_disaggregation="--disaggregation-mode" in mocker,
        mocker_timing_file="--planner-profile-data" in mocker,
        discovery=discovery,
        worker_env=tuple((k, v) for k, v in doc["worker_env"]),
        # The frontend watches etcd for workers; one that registers while the watch is set up can be missed
        # for good (seen on 0.5.1): with etcd discovery the frontend starts once the workers serve.
        frontend_after_workers=discovery == "etcd+nats",
        planner_image=doc["planner_image"],
        dgd_api_version=doc["dgd_api_version"],
        k8s_command_style=doc["k8s_command_style"],
        transfer_default=doc["transfer_default"],
        request_plane_flag="--request-plane" in worker and "--request-plane" in frontend,
        # A worker that builds a BuildConfig from its limit flags, on a TensorRT-LLM whose llm_args still has
        # build_config (copied over the YAML's top-level limits): the limits must be flags too.
        engine_limits_as_flags="--max-batch-size" in worker and "build_config" in accepted_keys(keyset)["top"],
        planner_modes=tuple(doc["planner_modes"]),
        kvbm_connector=connector is not None and (connector.choices is None or "kvbm" in connector.choices),
        router_reset_flag="--router-reset-states" in frontend,
        overlap_score_credit="--router-kv-overlap-score-credit" in frontend,
        # The weights go in the policy file where the release deprecates the flags in its favour.
        router_policy_config="--router-policy-config" in frontend
        and temperature is not None
        and "--router-policy-config" in (temperature.deprecated or ""),
        chat_template_flag="--custom-jinja-template" in worker,
        worker_revision_flag="--revision" in worker,
        tool_call_parsers=rel.choices("worker", "--dyn-tool-call-parser"),
        reasoning_parsers=rel.choices("worker", "--dyn-reasoning-parser"),
        endpoint_health_env=bool(doc["endpoint_health_env"]),
        router_credit_max=doc["router_credit_max"],
        frontend_namespace_flag="--namespace" in frontend,
        model_flag="--model" if "--model" in worker else "--model-path",
        encode_endpoint=_encode_endpoint(rel),
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


def profile_with(dotted: str, value: Any, but_not: Profile) -> Profile | None:
    """The newest other release whose own key set accepts ``dotted`` (with ``value``), to name in a hint
    (releases checked against a nearest set are not named: their TensorRT-LLM was not read)."""
    from dyncc.engines.trtllm.keys import accepts

    seen: set[str] = {but_not.keyset}
    for profile in reversed(profiles()):
        if profile.keyset in seen or not profile.keyset_exact:
            continue
        seen.add(profile.keyset)
        if accepts(profile.keyset, dotted, value):
            return profile
    return None
