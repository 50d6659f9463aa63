"""Lower the validated graph and its placement into a plan targets render from.

The plan holds every value a target writes — frontend flags, each pool's whole worker command line (the
engine's module and arguments, from :mod:`dyncc.engines`), engine config text, GPUs per worker — so that
local scripts, manifests and sbatch files are different spellings of one plan. Targets add only what is
theirs (ports on one host, container paths, srun options), from their own settings, which reach them
beside the plan, never through it: they fill the command line's slots (where they put the model and the
engine files) and wrap it in a process, an srun step, a container or a component.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from dyncc import __version__
from dyncc.compiler.graph import DeploymentGraph, PoolInfo, RouterInfo
from dyncc.compiler.placement import Placement, WorkerPlacement, nodes_per_worker
from dyncc.compiler.profiles import Profile
from dyncc.diagnostics import Diagnostic, YamlPath
from dyncc.engines.base import Engine, PoolWorkers, Slot, WorkerCommand
from dyncc.spec.model import (
    Benchmark,
    CoreSpec,
    InfraNode,
    OnWorkerExit,
    Planner,
    RequestPlane,
    Role,
    RouterMode,
    WorkerRuntime,
)

# No generated file is larger than this: the biggest real ones (an sbatch of ~1,600 workers) are under
# 1 MB, and input limits (DYN116, DYN406, DYN408) keep specs far below it. A backstop, so that a
# spec's values multiplied by its replicas end as an error rather than a file of hundreds of MB.
MAX_OUTPUT_FILE_BYTES = 16 * 1024 * 1024


# Placeholders a pool's env values may hold (targets that cannot fill them in refuse them: DYN585).
WORKER_INDEX = "{worker_index}"
RANK = "{rank}"

# Where NGC publishes Dynamo's images: an engine's runtime image is `<registry>/<engine image>:<Dynamo version>`.
IMAGE_REGISTRY = "nvcr.io/nvidia/ai-dynamo"

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


class WorkerPlan(msgspec.Struct, frozen=True):
    name: str  # e.g. "prefill-0": unique, safe as a file name and a log name
    replica: int
    placement: WorkerPlacement
    index: int  # the worker's place among all workers, pool by pool (targets number ports by it)

    @property
    def gpus(self) -> int:
        return self.placement.gpus


class PoolPlan(msgspec.Struct, frozen=True):
    role: Role
    replicas: int
    gpus_per_worker: int
    nodes_per_worker: int
    engine_file: str  # file name of the engine config, e.g. "prefill.yaml"
    engine_config: dict[str, Any]
    engine_yaml: str
    command: WorkerCommand  # its workers' command line, slots and all: targets fill the slots and wrap it
    env: tuple[tuple[str, str], ...]
    workers: tuple[WorkerPlan, ...]
    publish_kv_events: bool
    launch_prefix: tuple[str, ...] = ()  # words each worker process starts under (numactl ...); Slurm only
    draft_model: str | None = None  # the speculative draft model its engine config names

    @property
    def flags(self) -> tuple[str, ...]:
        """The options that tune the pool's workers (part of the command line)."""
        return self.command.flags

    @property
    def disaggregation_mode(self) -> str:
        return self.command.disaggregation_mode

    def env_for(self, worker: WorkerPlan) -> tuple[tuple[str, str], ...]:
        """The pool's env with `{worker_index}` filled in for ``worker``; `{rank}` is the target's to fill in
        (one value per rank, known only where each rank starts)."""
        index = str(worker.index)
        return tuple((k, v.replace(WORKER_INDEX, index)) for k, v in self.env)


class FrontendPlan(msgspec.Struct, frozen=True):
    router_mode: RouterMode
    flags: tuple[str, ...]  # router, migration and namespace flags (targets add host/port/discovery)
    env: tuple[tuple[str, str], ...]
    # The spec setting behind each option in ``flags``: where a refusal of the option points (DYN514).
    flag_paths: tuple[tuple[str, YamlPath], ...] = ()


class DeploymentPlan(msgspec.Struct, frozen=True):
    name: str
    namespace: str
    profile: Profile
    dynamo_version: str
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
    worker_runtime: WorkerRuntime  # the spec's name for the engine the workers run
    engine: Engine  # the engine the workers run (module, image, how ranks start: what targets wrap)
    config_engine: Engine  # the engine the pools' configs are for (the same, or the one a mock stands in for)
    engine_version: str  # the configuring engine's version the release pins
    mocker_speedup_ratio: float
    header: str  # "generated by" line every target writes
    request_plane: RequestPlane | None = None  # `--request-plane` of frontend and workers (nats needs a NATS server)
    on_worker_exit: OnWorkerExit = "restart"  # what a supervisor does when a worker dies: "restart" or "stop"
    model_revision: str | None = None  # Hugging Face revision of a hub model; None: the main branch
    model_path_absolute: bool = False  # model.path written absolute: a path in the container, served as is
    infra_node: InfraNode = "head"  # where etcd/NATS run: "head" (the frontend's node) or "dedicated" (their own)
    mocker_timing: str = "builtin"  # `builtin`, `aiconfigurator`, or a timing file (the spec's mocker_timing)
    chat_template: str | None = None  # model.chat_template's text, shipped as CHAT_TEMPLATE_FILE
    router_policy: str | None = None  # the frontend's router policy YAML, shipped as ROUTER_POLICY_FILE
    # Each pool's mock-engine timing file (NPZ bytes), filled in by dyncc.twin before the targets render;
    # a pool without one keeps the mock's built-in timing.
    mock_timing: Mapping[str, bytes] = msgspec.field(default_factory=dict)
    # What a target running these workers would fail on, as their engine says (a mode it lacks).
    engine_problems: tuple[Diagnostic, ...] = ()
    # The configuring engine's view of the release (what its config files are written for).
    engine_view: Any = None

    def worker_args(self, pool: PoolPlan, fill: Callable[[Slot], Any]) -> list[Any]:
        """The pool's worker arguments (after ``python3 -m <module>``) with the target's words in the slots
        (``fill``). A data file the plan does not carry (no mock timing given) is left out with its option."""
        data = self.data_files()

        def value(slot: Slot) -> Any:
            return None if slot.kind == "data_file" and slot.name not in data else fill(slot)

        return pool.command.fill(value)

    def worker_image(self) -> str | None:
        """The image the workers run in: the spec's, else NGC's runtime image of their engine for this Dynamo
        version (the spec's documented default); None for an engine that runs on the host, in no container."""
        if self.engine.image is None:
            return None
        return self.image or f"{IMAGE_REGISTRY}/{self.engine.image}:{self.dynamo_version}"

    def data_files(self) -> dict[str, bytes]:
        """Files the workers read beside the target's scripts: each mock pool's timing file (the timed twin)."""
        return {timing_file_name(p.role): self.mock_timing[p.role] for p in self.pools if p.role in self.mock_timing}

    def model_files(self) -> dict[str, str]:
        """The model directory an offline engine serves when the spec's model is no directory here (the small
        model it ships), for a target to write as ``model/<file>``."""
        if not self.engine.offline or self.model_local_dir is not None:
            return {}
        return self.engine.model_files()

    def engine_text_with_draft(self, pool: PoolPlan, path: str) -> str:
        """The pool's engine config text naming its draft model at ``path`` (where a target delivered it)."""
        assert pool.draft_model is not None
        config = self.config_engine.config_impl()
        rewritten = config.with_draft_model(pool.engine_config, pool.draft_model, path)
        return config.config_text(pool.role, rewritten, self.name, self.engine_view)

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


def timing_file_name(role: str) -> str:
    return f"timing/{role}.npz"


def lower(graph: DeploymentGraph, placement: Placement) -> DeploymentPlan:
    spec, facts, profile, router = graph.spec, graph.facts, graph.profile, graph.router
    dynamo_version = spec.dynamo.version
    config, runtime = graph.engine.config_impl(), graph.runtime.module_impl()
    frontend = frontend_flags(spec, router, profile)
    pool_plans, inputs, first_worker = [], [], 0
    for p in graph.pools():
        workers = _pool_workers(p, spec, profile, graph.strategy, facts.chat_template is not None)
        command = runtime.worker_command(workers, graph.runtime_release)
        pool_plans.append(_lower_pool(graph, p, workers, command, placement, first_worker))
        inputs.append(workers)
        first_worker += p.replicas
    return DeploymentPlan(
        name=spec.name,
        namespace=spec.namespace,
        profile=profile,
        dynamo_version=dynamo_version,
        model_path=worker_model_path(spec.model.path, facts.local_dir),
        model_local_dir=facts.local_dir,
        served_name=spec.model.name,
        image=spec.image,
        gpu_type=spec.cluster.gpu_type,
        frontend=FrontendPlan(
            router.mode,
            tuple(word for flag in frontend for word in flag.words),
            (),
            tuple((flag.option, flag.path) for flag in frontend),
        ),
        pools=tuple(pool_plans),
        placement=placement,
        planner=spec.planner if spec.planner.enabled else None,
        benchmark=spec.benchmark,
        worker_runtime=spec.worker_runtime,
        engine=graph.runtime,
        config_engine=graph.engine,
        engine_version=graph.engine_release.version,
        mocker_speedup_ratio=spec.mocker_speedup_ratio,
        header=f"Generated by dyncc {__version__} from spec '{spec.name}' "
        f"(Dynamo {dynamo_version}, {config.version_note(graph.engine_release)}). Edit the spec, not this file.",
        request_plane=spec.request_plane if profile.request_plane_flag else None,
        on_worker_exit=spec.on_worker_exit,
        model_revision=spec.model.revision,
        model_path_absolute=spec.model.path.startswith("/"),
        infra_node=spec.infrastructure.node,
        mocker_timing=spec.mocker_timing,
        chat_template=facts.chat_template,
        router_policy=router_policy_yaml(spec, router, profile, tuple(p.role for p in pool_plans)),
        engine_problems=tuple(runtime.problems(inputs, graph.runtime_release, graph.engine)),
        engine_view=graph.engine_release,
    )


def worker_model_path(path: str, local_dir: str | None) -> str:
    """The model path workers get. A relative path naming a directory is relative to the spec file (that
    is where its config.json was read from), so workers get it absolute: they start elsewhere (the
    script's directory, a Slurm step, a pod). Absolute paths and Hugging Face ids are kept as written."""
    if local_dir is not None and not path.startswith("/"):
        return local_dir
    return path


class SpecFlag(msgspec.Struct, frozen=True):
    """One option a spec setting writes on a command line, with that setting's path: where a refusal of the
    option (or its value) by the release's parser points (DYN703, DYN514)."""

    option: str
    value: str | None
    path: YamlPath

    @property
    def words(self) -> list[str]:
        return [self.option] if self.value is None else [self.option, self.value]


def frontend_flags(spec: CoreSpec, router: RouterInfo, profile: Profile) -> list[SpecFlag]:
    """The frontend options the spec asks for, each with the setting it comes from (targets add host/port)."""
    flags = [SpecFlag("--router-mode", router.mode, ("router", "mode"))]
    r = spec.router
    if router.mode == "kv":
        flags.append(SpecFlag("--kv-cache-block-size", str(router.block_size), ("router", "block_size")))
        if not r.kv_events:
            flags.append(SpecFlag(profile.approximate_kv_routing_flag, None, ("router", "kv_events")))
        if not profile.router_policy_config:  # else they are in the policy file: router_policy_yaml
            if r.overlap_score_credit is not None:
                credit = _num(r.overlap_score_credit)
                flags.append(SpecFlag("--router-kv-overlap-score-credit", credit, ("router", "overlap_score_credit")))
            if r.temperature is not None:
                flags.append(SpecFlag("--router-temperature", _num(r.temperature), ("router", "temperature")))
        for field, option in (
            ("replica_sync", "--router-replica-sync"),
            ("conditional_disagg", "--router-conditional-disagg"),
            ("reset_states", "--router-reset-states"),  # 0.5 to 1.3 only: DYN703 refuses it elsewhere
        ):
            if getattr(r, field):
                flags.append(SpecFlag(option, None, ("router", field)))
    if profile.migration_on == "frontend":
        flags += _migration_flags(spec)
    if profile.frontend_namespace_flag:  # 0.4's frontend serves every namespace it discovers
        flags.append(SpecFlag("--namespace", spec.namespace, ("namespace",)))
    if spec.request_plane is not None and profile.request_plane_flag:  # frontend and workers agree on it
        flags.append(SpecFlag("--request-plane", spec.request_plane, ("request_plane",)))
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


def _migration_flags(spec: CoreSpec) -> list[SpecFlag]:
    if not spec.migration.limit:
        return []
    flags = [SpecFlag("--migration-limit", str(spec.migration.limit), ("migration", "limit"))]
    if spec.migration.max_seq_len is not None:
        length = str(spec.migration.max_seq_len)
        flags.append(SpecFlag("--migration-max-seq-len", length, ("migration", "max_seq_len")))
    return flags


def _num(value: float) -> str:
    return repr(float(value))


def _pool_workers(p: PoolInfo, spec: CoreSpec, profile: Profile, strategy: str | None, template: bool) -> PoolWorkers:
    """What the compiler decided for the pool's workers, for their engine to spell."""
    caller = "prefill" if spec.pools.prefill is not None else "agg"  # the pool that calls the encoder
    migrates = profile.migration_on == "worker" and spec.migration.limit
    return PoolWorkers(
        role=p.role,
        served_name=spec.model.name,
        namespace=spec.namespace,
        engine_file=f"{p.role}.yaml",
        limits=p.limits,
        publish_kv_events=p.publish_kv_events or _decode_publishes_for_conditional_disagg(p, spec),
        disaggregation_strategy=strategy,
        migration=(spec.migration.limit, spec.migration.max_seq_len) if migrates else None,
        request_plane=spec.request_plane if profile.request_plane_flag else None,
        kvbm=spec.kvbm.enabled,
        tool_call_parser=spec.model.tool_call_parser,
        reasoning_parser=spec.model.reasoning_parser,
        multimodal=spec.pools.encode is not None,
        calls_encoder=spec.pools.encode is not None and p.role == caller,
        chat_template=CHAT_TEMPLATE_FILE if template else None,
        timing_file=timing_file_name(p.role),
        speedup_ratio=spec.mocker_speedup_ratio,
    )


def _lower_pool(
    graph: DeploymentGraph,
    p: PoolInfo,
    inputs: PoolWorkers,
    command: WorkerCommand,
    placement: Placement,
    first_worker: int,
) -> PoolPlan:
    config = graph.engine.config_impl()
    placed = placement.for_pool(p.role)
    workers = tuple(WorkerPlan(f"{p.role}-{w.replica}", w.replica, w, first_worker + w.replica) for w in placed)
    return PoolPlan(
        role=p.role,
        replicas=p.replicas,
        gpus_per_worker=p.gpus_per_worker,
        nodes_per_worker=nodes_per_worker(p.gpus_per_worker, placement.gpus_per_node_for(p.role)),
        engine_file=inputs.engine_file,
        engine_config=p.engine.config,
        engine_yaml=config.config_text(p.role, p.engine.config, graph.spec.name, graph.engine_release),
        command=command,
        env=tuple(sorted(p.spec.env.items())),
        workers=workers,
        publish_kv_events=inputs.publish_kv_events,
        launch_prefix=tuple(p.spec.launch_prefix),
        draft_model=config.draft_model(p.engine.config),
    )


def _decode_publishes_for_conditional_disagg(p: PoolInfo, spec: CoreSpec) -> bool:
    """Conditional disaggregation decides from the decode workers' KV state too: Dynamo's workers publish
    it only with --publish-kv-events on decode as well as prefill (unless the spec says otherwise)."""
    router = spec.router
    conditional = router.conditional_disagg and router.mode == "kv" and router.kv_events
    return conditional and p.role == "decode" and p.spec.publish_kv_events is None
