"""The topology spec: one deployment, as typed pydantic models.

Keys are snake_case; unknown keys are errors (``extra="forbid"``) and values are checked strictly
(``"8"`` is not an integer), because a silently coerced or ignored value is exactly the class of
mistake dyncc exists to catch. This module knows nothing of targets' file formats: it only says
what a deployment is. Cross-field rules that need the whole topology live in ``dyncc.compiler``.

The top level is here; its sections are modules of their own: ``fields`` (the base model and string
patterns), ``model_source``, ``pools``, ``engine_settings``, ``serving`` (router, migration, KVBM, planner)
and ``cluster``. Every name stays importable from this module.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from dyncc.spec.cluster import Cluster, InfraNode, Infrastructure, NodeGroup
from dyncc.spec.engine_settings import (
    CudaGraphs,
    EngineSettings,
    KvCacheDtype,
    KvTransfer,
    MoeLoadBalancer,
    MoeSettings,
    Speculative,
    TransferBackend,
)
from dyncc.spec.fields import DNS_LABEL, ENV_NAME, LaunchWord, NoControlChars, SectionModel, SpecModel
from dyncc.spec.model_source import ModelFactsSpec, ModelSource, WeightDtype
from dyncc.spec.pools import ROLES, Pool, Pools, Role
from dyncc.spec.serving import Kvbm, LoadThresholds, Migration, Planner, Router, RouterMode

# The sections' names stay importable from here, where the spec's users have always found them.
__all__ = [
    "API_VERSION",
    "DNS_LABEL",
    "ENV_NAME",
    "ROLES",
    "Benchmark",
    "Cluster",
    "CoreSpec",
    "CudaGraphs",
    "EngineSettings",
    "InfraNode",
    "Infrastructure",
    "Kvbm",
    "KvCacheDtype",
    "KvTransfer",
    "LaunchWord",
    "LoadThresholds",
    "Migration",
    "ModelFactsSpec",
    "ModelSource",
    "MoeLoadBalancer",
    "MoeSettings",
    "NoControlChars",
    "NodeGroup",
    "OnWorkerExit",
    "Planner",
    "Pool",
    "Pools",
    "RequestPlane",
    "Role",
    "Router",
    "RouterMode",
    "SectionModel",
    "SpecModel",
    "Speculative",
    "SweepKey",
    "TransferBackend",
    "Versions",
    "WeightDtype",
    "WorkerRuntime",
]

API_VERSION = "dyncc/v1"
WorkerRuntime = Literal["trtllm", "mocker"]
RequestPlane = Literal["tcp", "nats"]
OnWorkerExit = Literal["restart", "stop"]


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
