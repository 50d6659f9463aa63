"""Lower the validated graph and its placement into a plan targets render from.

The plan holds every value a target writes — frontend and worker flags, engine YAML text, GPUs per
worker — so that local scripts, manifests and sbatch files are different spellings of one plan.
Targets add only what is theirs (ports on one host, container paths, srun options), from their own
settings, which reach them beside the plan, never through it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from dyncc import __version__
from dyncc.compiler.graph import DISAGGREGATION_MODE, DeploymentGraph, PoolInfo, RouterInfo
from dyncc.compiler.placement import Placement, WorkerPlacement, nodes_per_worker
from dyncc.compiler.profiles import Profile
from dyncc.diagnostics import Diagnostic
from dyncc.engines.trtllm.engine_config import engine_yaml
from dyncc.spec.model import Benchmark, CoreSpec, Planner, WorkerRuntime

# No generated file is larger than this: the biggest real ones (an sbatch of ~1,600 workers) are under
# 1 MB, and input limits (DYN116, DYN406, DYN408) keep specs far below it. A backstop, so that a
# spec's values multiplied by its replicas end as an error rather than a file of hundreds of MB.
MAX_OUTPUT_FILE_BYTES = 16 * 1024 * 1024


# Placeholders a pool's env values may hold (targets that cannot fill them in refuse them: DYN585).
WORKER_INDEX = "{worker_index}"
RANK = "{rank}"

# The custom chat template's name in the engine directory (pool engine YAMLs are named <role>.yaml).
CHAT_TEMPLATE_FILE = "chat_template.jinja"

# The frontend's `--router-policy-config` file, shipped in the engine directory beside the engine configs.
ROUTER_POLICY_FILE = "router_policy.yaml"
# Dynamo's built-in KV cost function as a worker-selection policy type (Dynamo 1.6.1 lists its linked types
# when it refuses another: dynamo-default-cost-fn, dynamo-two-tier-cost-fn, thunderagent).
DEFAULT_POLICY_TYPE = "dynamo-default-cost-fn"
# The one policy instance dyncc configures (the name `default` is reserved for Dynamo's own selector).
ROUTER_POLICY_INSTANCE = "spec_weights"
# Which worker_selection key selects for a pool of each role.
SELECTION_STAGE = {"agg": "aggregated", "prefill": "prefill", "decode": "decode", "encode": "encode"}

# What a target writes: relative path -> text (scripts, manifests) or bytes (data such as timing files).
FileContent = str | bytes
Files = dict[str, FileContent]


def text_bytes(text: FileContent) -> int:
    return len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))


def encoded(content: FileContent) -> bytes:
    """A file's bytes as written (text as UTF-8)."""
    return content if isinstance(content, bytes) else content.encode("utf-8")


def oversized_files(
    target: str, files: Mapping[str, FileContent], limit: int = MAX_OUTPUT_FILE_BYTES
) -> list[Diagnostic]:
    """DYN510 for each rendered file over ``limit`` bytes."""
    return [
        Diagnostic(
            "DYN510",
            f"the {target} target would write {name} of {text_bytes(text) // 1024} KiB, over dyncc's limit of "
            f"{limit // (1024 * 1024)} MiB per generated file",
            path=("pools",),
            hint="fewer replicas or smaller per-worker values (env, engine.extra): they are written once per worker",
        )
        for name, text in files.items()
        if len(text) > limit // 4 and text_bytes(text) > limit
    ]


@dataclasses.dataclass(frozen=True)
class WorkerPlan:
    name: str  # e.g. "prefill-0": unique, safe as a file name and a log name
    replica: int
    placement: WorkerPlacement
    index: int  # the worker's place among all workers, pool by pool (targets number ports by it)

    @property
    def gpus(self) -> int:
        return self.placement.gpus


@dataclasses.dataclass(frozen=True)
class PoolPlan:
    role: str
    replicas: int
    gpus_per_worker: int
    nodes_per_worker: int
    disaggregation_mode: str
    engine_file: str  # file name of the engine YAML, e.g. "prefill.yaml"
    engine_config: dict[str, Any]
    engine_yaml: str
    flags: tuple[str, ...]  # worker flags after `--extra-engine-args <file>`
    env: tuple[tuple[str, str], ...]
    workers: tuple[WorkerPlan, ...]
    publish_kv_events: bool
    launch_prefix: tuple[str, ...] = ()  # words each worker process starts under (numactl ...); Slurm only
    model_flag: str = "--model-path"  # the release's worker flag for the model (1.0+: --model)

    def env_for(self, worker: WorkerPlan) -> tuple[tuple[str, str], ...]:
        """The pool's env with `{worker_index}` filled in for ``worker``; `{rank}` is the target's to fill in
        (one value per rank, known only where each rank starts)."""
        index = str(worker.index)
        return tuple((k, v.replace(WORKER_INDEX, index)) for k, v in self.env)

    def worker_args(
        self, model_path: Any, served_name: str, engine_config_path: Any, chat_template_path: Any = None
    ) -> list[Any]:
        """``python3 -m dynamo.trtllm`` arguments; identical on every target but for the paths (a target
        passes the chat template's path when the plan has one: it ships it beside the engine configs)."""
        template = ["--custom-jinja-template", chat_template_path] if chat_template_path is not None else []
        return [
            self.model_flag,
            model_path,
            "--served-model-name",
            served_name,
            "--extra-engine-args",
            engine_config_path,
            *self.flags,
            *template,
        ]


@dataclasses.dataclass(frozen=True)
class FrontendPlan:
    router_mode: str
    flags: tuple[str, ...]  # router, migration and namespace flags (targets add host/port/discovery)
    env: tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True)
class DeploymentPlan:
    name: str
    namespace: str
    profile: Profile
    dynamo_version: str
    trtllm_version: str
    model_path: str
    model_local_dir: str | None  # absolute path when model.path is a checkpoint directory on this machine
    served_name: str
    image: str | None
    gpu_type: str | None
    frontend: FrontendPlan
    pools: tuple[PoolPlan, ...]
    placement: Placement
    planner: Planner | None  # None: no planner
    benchmark: Benchmark | None  # None: no load test
    worker_runtime: WorkerRuntime  # trtllm, or Dynamo's mock engine in the same topology
    mocker_speedup_ratio: float
    header: str  # "generated by" line every target writes
    request_plane: str | None = None  # `--request-plane` of frontend and workers (nats needs a NATS server)
    on_worker_exit: str = "restart"  # what a supervisor does when a worker dies: "restart" or "stop"
    model_revision: str | None = None  # Hugging Face revision of a hub model; None: the main branch
    model_path_absolute: bool = False  # model.path written absolute: a path in the container, served as is
    infra_node: str = "head"  # where etcd/NATS run: "head" (the frontend's node) or "dedicated" (their own)
    mocker_timing: str = "builtin"  # `builtin`, `aiconfigurator`, or a timing file (the spec's mocker_timing)
    chat_template: str | None = None  # model.chat_template's text, shipped as CHAT_TEMPLATE_FILE
    router_policy: str | None = None  # the frontend's router policy YAML, shipped as ROUTER_POLICY_FILE
    # Each pool's mock-engine timing file (NPZ bytes), filled in by dyncc.twin before the targets render;
    # a pool without one keeps the mock's built-in timing.
    mock_timing: Mapping[str, bytes] = dataclasses.field(default_factory=dict)

    def worker_revision_args(self) -> list[str]:
        """`--revision` for workers that download the hub model themselves (local, compose): the revision the
        spec names, where the release's worker takes it (targets refuse it elsewhere: DYN563)."""
        if self.model_revision and self.model_local_dir is None and self.profile.worker_revision_flag:
            return ["--revision", self.model_revision]
        return []

    def engine_files(self) -> dict[str, str]:
        """The files every target ships in the workers' engine directory: each pool's engine YAML, and the
        custom chat template when the spec has one, and the frontend's router policy when it has one (a target
        whose frontend runs apart from the workers mounts the directory into the frontend too)."""
        files = {pool.engine_file: pool.engine_yaml for pool in self.pools}
        if self.chat_template is not None:
            files[CHAT_TEMPLATE_FILE] = self.chat_template
        if self.router_policy is not None:
            files[ROUTER_POLICY_FILE] = self.router_policy
        return files

    def router_policy_args(self, policy_path: Any) -> list[Any]:
        """`--router-policy-config` for the frontend, given ROUTER_POLICY_FILE's path as the frontend sees it;
        nothing when the plan has no policy file."""
        return [] if self.router_policy is None else ["--router-policy-config", policy_path]

    @property
    def workers(self) -> list[tuple[PoolPlan, WorkerPlan]]:
        return [(p, w) for p in self.pools for w in p.workers]

    @property
    def total_gpus(self) -> int:
        return self.placement.gpus_used

    @property
    def single_node(self) -> bool:
        return self.placement.nodes_used <= 1


def lower(graph: DeploymentGraph, placement: Placement) -> DeploymentPlan:
    spec, facts, profile, router = graph.spec, graph.facts, graph.profile, graph.router
    dynamo_version = spec.dynamo.version
    trtllm_version = profile.trtllm_version  # the one the release pins; DYN705 refuses another
    pool_plans, first_worker = [], 0
    for p in graph.pools():
        pool_plans.append(_lower_pool(p, placement, spec, profile, graph.strategy, trtllm_version, first_worker))
        first_worker += p.replicas
    return DeploymentPlan(
        name=spec.name,
        namespace=spec.namespace,
        profile=profile,
        dynamo_version=dynamo_version,
        trtllm_version=trtllm_version,
        model_path=worker_model_path(spec.model.path, facts.local_dir),
        model_local_dir=facts.local_dir,
        served_name=spec.model.name,
        image=spec.image,
        gpu_type=spec.cluster.gpu_type,
        frontend=FrontendPlan(router.mode, tuple(_frontend_flags(spec, router, profile)), ()),
        pools=tuple(pool_plans),
        placement=placement,
        planner=spec.planner if spec.planner.enabled else None,
        benchmark=spec.benchmark,
        worker_runtime=spec.worker_runtime,
        mocker_speedup_ratio=spec.mocker_speedup_ratio,
        header=f"Generated by dyncc {__version__} from spec '{spec.name}' "
        f"(Dynamo {dynamo_version}, TensorRT-LLM {trtllm_version}{_keyset_note(profile)}). Edit the spec, not this file.",
        request_plane=spec.request_plane if profile.request_plane_flag else None,
        on_worker_exit=spec.on_worker_exit,
        model_revision=spec.model.revision,
        model_path_absolute=spec.model.path.startswith("/"),
        infra_node=spec.infrastructure.node,
        mocker_timing=spec.mocker_timing,
        chat_template=facts.chat_template,
        router_policy=router_policy_yaml(spec, router, profile, tuple(p.role for p in pool_plans)),
    )


def _keyset_note(profile: Profile) -> str:
    return "" if profile.keyset_exact else f", engine keys of TensorRT-LLM {profile.keyset}"


def worker_model_path(path: str, local_dir: str | None) -> str:
    """The model path workers get. A relative path naming a directory is relative to the spec file (that
    is where its config.json was read from), so workers get it absolute: they start elsewhere (the
    script's directory, a Slurm step, a pod). Absolute paths and Hugging Face ids are kept as written."""
    if local_dir is not None and not path.startswith("/"):
        return local_dir
    return path


def _frontend_flags(spec: CoreSpec, router: RouterInfo, profile: Profile) -> list[str]:
    flags = ["--router-mode", router.mode]
    r = spec.router
    if router.mode == "kv":
        flags += ["--kv-cache-block-size", str(router.block_size)]
        if not r.kv_events:
            flags.append(profile.approximate_kv_routing_flag)
        if not profile.router_policy_config:  # else they are in the policy file: router_policy_yaml
            if r.overlap_score_credit is not None:
                flags += ["--router-kv-overlap-score-credit", _num(r.overlap_score_credit)]
            if r.temperature is not None:
                flags += ["--router-temperature", _num(r.temperature)]
        if r.replica_sync:
            flags.append("--router-replica-sync")
        if r.conditional_disagg:
            flags.append("--router-conditional-disagg")
        if r.reset_states and profile.router_reset_flag:  # DYN703 refuses it where the flag is gone
            flags.append("--router-reset-states")
    if profile.migration_on == "frontend":
        flags += _migration_flags(spec)
    if profile.frontend_namespace_flag:  # 0.4's frontend serves every namespace it discovers
        flags += ["--namespace", spec.namespace]
    flags += _request_plane_flags(spec, profile)
    return flags


def _policy_parameters(spec: CoreSpec) -> dict[str, float]:
    """The spec's weights as the default policy's parameters (their names in Dynamo's policy schema)."""
    r = spec.router
    named = (("overlap_score_credit", r.overlap_score_credit), ("router_temperature", r.temperature))
    return {name: float(value) for name, value in named if value is not None}


def router_policy_yaml(spec: CoreSpec, router: RouterInfo, profile: Profile, roles: tuple[str, ...]) -> str | None:
    """The `--router-policy-config` file that carries the KV router's weights, where the release reads them
    from one (Dynamo 1.6 deprecates the flags, 1.7 removes them): one instance of Dynamo's built-in cost
    function with the spec's parameters, selected for every stage the deployment routes. None when there
    are no weights to set or the release takes them as flags."""
    parameters = _policy_parameters(spec)
    if router.mode != "kv" or not parameters or not profile.router_policy_config:
        return None
    from dyncc.yaml_text import dump_yaml  # imported when a build needs it, not for `dyncc validate`

    stages = {SELECTION_STAGE[role]: ROUTER_POLICY_INSTANCE for role in roles if role in SELECTION_STAGE}
    document = {
        "worker_selection": {
            **stages,
            "instances": [{"name": ROUTER_POLICY_INSTANCE, "type": DEFAULT_POLICY_TYPE, "parameters": parameters}],
        }
    }
    return dump_yaml(
        document,
        f"# Router policy for the Dynamo {profile.dynamo_version} frontend (--router-policy-config): the KV "
        f"router's weights\n# from the spec's router section. Generated by dyncc {__version__}.\n",
    )


def _request_plane_flags(spec: CoreSpec, profile: Profile) -> list[str]:
    """Frontend and workers must agree on the request plane (DYN703 refuses it before Dynamo 1.0)."""
    if spec.request_plane is None or not profile.request_plane_flag:
        return []
    return ["--request-plane", spec.request_plane]


def _migration_flags(spec: CoreSpec) -> list[str]:
    if not spec.migration.limit:
        return []
    flags = ["--migration-limit", str(spec.migration.limit)]
    if spec.migration.max_seq_len is not None:
        flags += ["--migration-max-seq-len", str(spec.migration.max_seq_len)]
    return flags


def _num(value: float) -> str:
    return repr(float(value))


ENGINE_LIMIT_FLAGS = (
    ("max_batch_size", "--max-batch-size"),
    ("max_num_tokens", "--max-num-tokens"),
    ("max_seq_len", "--max-seq-len"),
)


def _engine_limit_flags(p: PoolInfo) -> list[str]:
    """The engine YAML's limits again as worker flags (see Profile.engine_limits_as_flags)."""
    flags: list[str] = []
    for key, flag in ENGINE_LIMIT_FLAGS:
        value = p.engine.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            flags += [flag, str(value)]
    return flags


def _lower_pool(
    p: PoolInfo,
    placement: Placement,
    spec: CoreSpec,
    profile: Profile,
    strategy: str | None,
    trtllm_version: str,
    first_worker: int,
) -> PoolPlan:
    flags: list[str] = []
    mode = profile.agg_mode if p.role == "agg" else DISAGGREGATION_MODE[p.role]
    if p.role != "agg" or profile.agg_mode != "agg":
        flags += ["--disaggregation-mode", mode]
    if strategy is not None and p.role in ("prefill", "decode"):
        flags += ["--disaggregation-strategy", strategy]
    publish_kv_events = p.publish_kv_events or _decode_publishes_for_conditional_disagg(p, spec)
    if publish_kv_events:
        flags += list(profile.kv_event_flags)
    flags += _epd_flags(p, spec, profile)
    if profile.migration_on == "worker":
        flags += _migration_flags(spec)
    flags += ["--kv-block-size", str(p.tokens_per_block)]
    if profile.engine_limits_as_flags:
        flags += _engine_limit_flags(p)
    if spec.kvbm.enabled:
        flags += ["--connector", "kvbm"]
    if profile.worker_namespace_flag:
        flags += ["--namespace", spec.namespace]
    flags += _request_plane_flags(spec, profile)
    flags += _parser_flags(spec)
    placed = placement.for_pool(p.role)
    workers = tuple(WorkerPlan(f"{p.role}-{w.replica}", w.replica, w, first_worker + w.replica) for w in placed)
    return PoolPlan(
        role=p.role,
        replicas=p.replicas,
        gpus_per_worker=p.gpus_per_worker,
        nodes_per_worker=nodes_per_worker(p.gpus_per_worker, placement.gpus_per_node_for(p.role)),
        disaggregation_mode=mode,
        engine_file=f"{p.role}.yaml",
        engine_config=p.engine.config,
        engine_yaml=engine_yaml(p.role, p.engine.config, spec.name, trtllm_version, profile.keyset),
        flags=tuple(flags),
        env=tuple(sorted(p.spec.env.items())),
        workers=workers,
        publish_kv_events=publish_kv_events,
        launch_prefix=tuple(p.spec.launch_prefix),
        model_flag=profile.model_flag,
    )


def _parser_flags(spec: CoreSpec) -> list[str]:
    """Every worker parses replies the same way: the parsers are the model's, not a pool's (DYN125 checks
    the names against the release's registry)."""
    flags: list[str] = []
    if spec.model.tool_call_parser:
        flags += ["--dyn-tool-call-parser", spec.model.tool_call_parser]
    if spec.model.reasoning_parser:
        flags += ["--dyn-reasoning-parser", spec.model.reasoning_parser]
    return flags


def _decode_publishes_for_conditional_disagg(p: PoolInfo, spec: CoreSpec) -> bool:
    """Conditional disaggregation decides from the decode workers' KV state too: Dynamo's TensorRT-LLM
    backend needs --publish-kv-events on decode as well as prefill (unless the spec says otherwise)."""
    router = spec.router
    conditional = router.conditional_disagg and router.mode == "kv" and router.kv_events
    return conditional and p.role == "decode" and p.spec.publish_kv_events is None


def _epd_flags(p: PoolInfo, spec: CoreSpec, profile: Profile) -> list[str]:
    """An encode pool is wired as Dynamo's EPD launch scripts do: every worker multimodal, and the pool
    that calls the encoder (prefill, else agg) told its endpoint — without it the encode pool idles."""
    if spec.pools.encode is None:
        return []
    flags = ["--modality", "multimodal"]
    caller = "prefill" if spec.pools.prefill is not None else "agg"
    if p.role == caller:
        assert profile.encode_endpoint is not None  # DYN703 refuses an encode pool where the worker has none
        flags += ["--encode-endpoint", profile.encode_endpoint.format(namespace=spec.namespace)]
    return flags
