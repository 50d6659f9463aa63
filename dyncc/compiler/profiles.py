"""Version profiles: everything that differs between Dynamo version families, in one place each.
The 0.x facts were checked against ai-dynamo 0.5.1's own argument parsers (tests/test_profiles.py).

Clusters run the container they were validated on, often for a year, and the 2025 stack (Dynamo
0.4/0.5) differs from 1.6 in flags, discovery, manifests and engine keys in ways that crash at
start-up. Lowering and the targets read a :class:`Profile`'s fields; nothing else in dyncc compares
version numbers. Facts: shared/reference/README.md §6 and its 2025 example manifests.
"""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class Profile:
    family: str
    dynamo_default: str
    trtllm_default: str
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
    # Discovery and transports
    discovery: Literal["file", "etcd+nats"]
    worker_env: tuple[tuple[str, str], ...]  # what turns on a worker's health server
    # Kubernetes
    planner_image: str  # repository path under nvcr.io/nvidia/ai-dynamo/
    dgd_api_version: Literal["v1beta1", "v1alpha1"]
    k8s_command_style: Literal["argv", "shell"]  # 2025 manifests: command [/bin/sh, -c] + one string
    # TensorRT-LLM engine configs
    transfer_default: str
    transceiver_backends: tuple[str, ...]
    removed_moe_backends_accepted: tuple[str, ...]

    def engine_enum_overrides(self) -> dict[str, list]:
        """Enum values this family's TRT-LLM accepts where they differ from 1.3.0rc29's."""
        from dyncc.trtllm.keys import accepted_keys

        moe = list(accepted_keys()["enums"]["moe_config.backend"]) + list(self.removed_moe_backends_accepted)
        return {"cache_transceiver_config.backend": list(self.transceiver_backends), "moe_config.backend": moe}

    def transceiver_backend(self, backend: str) -> str:
        """The spelling this family's TRT-LLM accepts (1.3: UCX; the 2025 configs: ucx)."""
        return next(b for b in self.transceiver_backends if b.upper() == backend.upper())


DYNAMO_1 = Profile(
    family="1.x",
    dynamo_default="1.6.1",
    trtllm_default="1.3.0rc29",
    agg_mode="agg",
    kv_event_flags=("--publish-kv-events",),
    migration_on="frontend",
    disaggregation_strategy=False,
    worker_namespace_flag=True,
    conditional_disagg=True,
    approximate_kv_routing_flag="--no-router-kv-events",
    mocker_disaggregation=True,
    discovery="file",
    worker_env=(),
    planner_image="dynamo-planner",  # Dynamo >= 1.1 ships the planner in its own image
    dgd_api_version="v1beta1",
    k8s_command_style="argv",
    transfer_default="NIXL",
    transceiver_backends=("DEFAULT", "UCX", "NIXL", "MOONCAKE", "MPI"),
    removed_moe_backends_accepted=(),
)

DYNAMO_0 = Profile(
    family="0.x",
    dynamo_default="0.5.1",
    trtllm_default="1.0.0rc6",
    agg_mode="prefill_and_decode",
    kv_event_flags=("--publish-events-and-metrics",),
    migration_on="worker",
    disaggregation_strategy=True,
    worker_namespace_flag=False,
    conditional_disagg=False,
    approximate_kv_routing_flag="--no-kv-events",
    mocker_disaggregation=False,
    discovery="etcd+nats",
    worker_env=(("DYN_SYSTEM_ENABLED", "true"),),
    planner_image="tensorrtllm-runtime",
    dgd_api_version="v1alpha1",
    k8s_command_style="shell",
    transfer_default="UCX",
    transceiver_backends=("default", "ucx", "nixl", "mpi"),
    removed_moe_backends_accepted=("WIDEEP",),
)

PROFILES = (DYNAMO_1, DYNAMO_0)


def profile_for(dynamo_version: str) -> Profile | None:
    major = dynamo_version.split(".", 1)[0]
    return {"1": DYNAMO_1, "0": DYNAMO_0}.get(major)
