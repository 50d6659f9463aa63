"""Version profiles: one per supported Dynamo release, naming exactly what it deploys.

Each profile is a Dynamo version, the TensorRT-LLM version that release pins (``Requires-Dist:
tensorrt-llm==X`` in the ai-dynamo wheel's METADATA), and the family-level facts (flags, discovery,
manifests). The engine side — key set, enum spellings, aliases, speculative forms — is that TRT-LLM
version's data file (``dyncc/trtllm/data/trtllm_<version>_keys.json``); the code reading it is shared.
A Dynamo version whose TRT-LLM key set dyncc does not carry has no profile (DYN701 lists those it has),
so a file never claims a version it was not written for.
The 0.x facts were checked against ai-dynamo 0.5.1's own argument parsers (tests/test_profiles.py).

Clusters run the container they were validated on, often for a year, and the 2025 stack (Dynamo
0.4/0.5) differs from 1.6 in flags, discovery, manifests and engine keys in ways that crash at
start-up. Lowering and the targets read a :class:`Profile`'s fields; nothing else in dyncc compares
version numbers. Facts: shared/reference/README.md §6 and its 2025 example manifests.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from dyncc.trtllm.keys import accepted_keys, enum_values

# TensorRT-LLM pinned by each ai-dynamo release, read from the PyPI wheels' METADATA
# (`Requires-Dist: tensorrt-llm==X; extra == 'trtllm'`). Only releases with a profile are deployable; the
# rest are listed so that DYN701 can say which TRT-LLM a refused version would have needed.
TRTLLM_PINNED_BY_DYNAMO = {
    "0.4.1": "1.0.0rc6",
    "0.5.1": "1.1.0rc5",
    "0.8.1": "1.2.0rc6.post1",
    "0.9.1": "1.3.0rc3",
    "1.0.2": "1.3.0rc5.post1",
    "1.1.1": "1.3.0rc11",
    "1.2.1": "1.3.0rc14",
    "1.3.1": "1.3.0rc19",
    "1.4.2": "1.3.0rc22",
    "1.5.0": "1.3.0rc25",
    "1.5.1": "1.3.0rc25",
    "1.6.0": "1.3.0rc29",
    "1.6.1": "1.3.0rc29",
}


@dataclasses.dataclass(frozen=True)
class Profile:
    family: str
    dynamo_version: str  # the one Dynamo release this profile was checked against
    trtllm_version: str  # the TensorRT-LLM it pins; names the key-set file
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

    @property
    def keys(self) -> dict[str, Any]:
        """The key set of the TRT-LLM this profile deploys."""
        return accepted_keys(self.trtllm_version)

    @property
    def label(self) -> str:
        return f"Dynamo {self.dynamo_version} (TensorRT-LLM {self.trtllm_version})"

    def transceiver_backend(self, backend: str) -> str:
        """The spelling this version's TRT-LLM accepts; an unknown backend is kept for DYN108 to report."""
        accepted = enum_values(self.trtllm_version, "cache_transceiver_config.backend")
        return next((b for b in accepted if b.upper() == backend.upper()), backend)


DYNAMO_1 = Profile(
    family="1.x",
    dynamo_version="1.6.1",
    trtllm_version="1.3.0rc29",
    agg_mode="agg",
    kv_event_flags=("--publish-kv-events",),
    migration_on="frontend",
    disaggregation_strategy=False,
    worker_namespace_flag=True,
    conditional_disagg=True,
    approximate_kv_routing_flag="--no-router-kv-events",
    mocker_disaggregation=True,
    mocker_timing_file=True,
    discovery="file",
    worker_env=(),
    frontend_after_workers=False,
    planner_image="dynamo-planner",  # Dynamo >= 1.1 ships the planner in its own image
    dgd_api_version="v1beta1",
    k8s_command_style="argv",
    transfer_default="NIXL",
    request_plane_flag=True,
    engine_limits_as_flags=False,
    planner_modes=("sla", "load"),
    kvbm_connector=True,
    router_reset_flag=False,
    overlap_score_credit=True,
    router_policy_config=True,
    chat_template_flag=True,
    worker_revision_flag=True,
    tool_call_parsers=(
        "deepseek-v4", "deepseek_v3", "deepseek_v3_1", "deepseek_v3_2", "deepseek_v4", "deepseek_v41", "deepseekv4",
        "default", "gemma-4", "gemma4", "glm45", "glm47", "harmony", "hermes", "inkling", "jamba", "kimi-k3",
        "kimi_k2", "kimi_k25", "kimi_k3", "llama3_json", "minimax-m3", "minimax-m3-nom", "minimax_m2", "minimax_m3",
        "minimax_m3_nom", "mistral", "muse", "muse_glimmer", "nemotron_deci", "nemotron_nano", "phi4", "pythonic",
        "qwen25", "qwen3", "qwen3_coder",
    ),
    reasoning_parsers=(
        "basic", "deepseek-v4", "deepseek_r1", "deepseek_v3", "deepseek_v3_1", "deepseek_v3_2", "deepseek_v4",
        "deepseek_v41", "deepseekv4", "gemma-4", "gemma4", "glm45", "glm47", "gpt_oss", "granite", "inkling", "kimi",
        "kimi-k3", "kimi_k2", "kimi_k25", "kimi_k3", "minimax-m3", "minimax_append_think", "minimax_m2",
        "minimax_m3", "mistral", "muse", "muse_glimmer", "nemotron3", "nemotron_deci", "nemotron_nano",
        "nemotron_v3", "qwen3", "qwen3_coder", "step3",
    ),
)  # fmt: skip

DYNAMO_0 = Profile(
    family="0.x",
    dynamo_version="0.5.1",
    trtllm_version="1.1.0rc5",
    agg_mode="prefill_and_decode",
    kv_event_flags=("--publish-events-and-metrics",),
    migration_on="worker",
    disaggregation_strategy=True,
    worker_namespace_flag=False,
    conditional_disagg=False,
    approximate_kv_routing_flag="--no-kv-events",
    mocker_disaggregation=False,
    mocker_timing_file=False,
    discovery="etcd+nats",
    worker_env=(("DYN_SYSTEM_ENABLED", "true"),),
    frontend_after_workers=True,
    planner_image="tensorrtllm-runtime",
    dgd_api_version="v1alpha1",
    k8s_command_style="shell",
    transfer_default="UCX",
    request_plane_flag=False,
    engine_limits_as_flags=True,
    planner_modes=(),
    kvbm_connector=False,
    router_reset_flag=True,
    router_policy_config=False,
    chat_template_flag=False,
    tool_call_parsers=(
        "deepseek_v3_1", "default", "harmony", "hermes", "llama3_json", "mistral", "nemotron_deci", "phi4", "pythonic",
    ),
    reasoning_parsers=(
        "basic", "deepseek_r1", "gpt_oss", "granite", "kimi", "mistral", "nemotron_deci", "qwen3", "step3",
    ),
)  # fmt: skip

PROFILES = (DYNAMO_1, DYNAMO_0)
SUPPORTED_VERSIONS = tuple(p.dynamo_version for p in PROFILES)


def profile_for(dynamo_version: str) -> Profile | None:
    """The profile of exactly this Dynamo release, or None (no version is guessed from its family)."""
    return next((p for p in PROFILES if p.dynamo_version == dynamo_version), None)


def supported_list() -> str:
    return ", ".join(p.label for p in PROFILES)


def profile_with(dotted: str, value: Any, but_not: Profile) -> Profile | None:
    """Another supported profile whose TRT-LLM accepts ``dotted`` (with ``value``), to name in a hint."""
    from dyncc.trtllm.keys import accepts

    return next((p for p in PROFILES if p is not but_not and accepts(p.trtllm_version, dotted, value)), None)
