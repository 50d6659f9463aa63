"""What an engine is: the program a worker runs, and everything that is that program's own.

An engine package declares ``ENGINE``, an :class:`Engine`: the facts targets read through the plan (the
module ``python3 -m`` runs, its runtime image, how a worker's ranks start, what it needs to run offline)
and the module that does the work (``implementation``, an :class:`Implementation`): the view it takes of
a Dynamo release, each pool's worker command line, its checks and, for an engine that reads the spec's
engine section (:attr:`Engine.configures`), the engine config, its file and its rules.

Engines sit below the compiler: they read the spec, the release files and the :class:`PoolWorkers` the
compiler hands them, never a compiler or target type. The command line an engine writes names what only
a target knows (where it put the engine config, the model it serves, a port it chose) as :class:`Slot`
words; each target fills them in and wraps the result in its own process, srun step, container or
component.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

import msgspec

from dyncc.diagnostics import Diagnostic, Severity, YamlPath

if TYPE_CHECKING:
    from dyncc.aic.runner import Backend
    from dyncc.facts.memory import Budget
    from dyncc.releases import Component, Release
    from dyncc.spec.loader import ModelFacts
    from dyncc.spec.model import CoreSpec, Pool, Role
    from dyncc.spec.provenance import Provenance

# What a target fills in:
# - model: the model the worker serves, as the target delivers it (a hub id, a path in the container, ...)
# - local_model: a model directory on the machine the worker runs on, served offline: the spec's checkpoint
#   directory, else the small model the engine ships (Engine.offline_files)
# - engine_file: a file of the plan's engine directory (`name`), at the path the target put it
# - data_file: a file the target writes beside its scripts (`name`, relative to them)
# - revision: the model's hub revision, where the target's workers download the model themselves
# - bootstrap_port: a port the target gives a disaggregating worker for its prefill->decode handoff
SlotKind = Literal["model", "local_model", "engine_file", "data_file", "revision", "bootstrap_port"]


class Slot(msgspec.Struct, frozen=True):
    """A word of a worker's command line that only the target knows."""

    kind: SlotKind
    name: str = ""  # engine_file, data_file: the file's name
    flag: str = ""  # an optional word: the option written before it; both are left out when the target gives None


Word = str | Slot


class WorkerCommand(msgspec.Struct, frozen=True):
    """One pool's worker command line: ``python3 -m <module> <args>``, the same on every target but for the
    slots each target fills in (:meth:`fill`)."""

    module: str  # e.g. dynamo.mocker
    args: tuple[Word, ...]
    flags: tuple[str, ...]  # the options that tune the pool (part of args; what `dyncc diff` compares)
    disaggregation_mode: str  # the worker's mode as its release spells it

    def fill(self, value: Callable[[Slot], Any]) -> list[Any]:
        """The arguments with each slot replaced by ``value(slot)`` (an optional slot left out on None)."""
        words: list[Any] = []
        for word in self.args:
            if isinstance(word, str):
                words.append(word)
                continue
            filled = value(word)
            if not word.flag:
                words.append(filled)
            elif filled is not None:
                words += [word.flag, filled]
        return words

    def slots(self) -> Iterator[Slot]:
        return (word for word in self.args if isinstance(word, Slot))

    def uses(self, kind: SlotKind) -> bool:
        return any(slot.kind == kind for slot in self.slots())


class WorkerLimits(msgspec.Struct, frozen=True):
    """What the configuring engine's resolved config says of a worker's size, for engines that read no
    config of their own (the mock engine): None where the config leaves it to the engine's default."""

    block_size: int  # KV-cache tokens per block (what the router and the workers agree on)
    max_batch_size: int | None = None
    max_num_tokens: int | None = None
    max_seq_len: int | None = None
    data_parallel: int | None = None  # attention-DP ranks; None: attention DP off


class PoolWorkers(msgspec.Struct, frozen=True):
    """What the compiler decided for one pool's workers, for the engine to spell as options of its release."""

    role: str  # agg, prefill, decode or encode
    served_name: str
    namespace: str
    engine_file: str  # the pool's engine config in the plan's engine directory, e.g. "prefill.yaml"
    limits: WorkerLimits
    publish_kv_events: bool
    disaggregation_strategy: str | None  # Dynamo 0.x: which worker a disaggregated request enters first
    migration: tuple[int, int | None] | None  # (limit, max_seq_len) when the release migrates on the worker
    request_plane: str | None  # `--request-plane` where the release has it
    kvbm: bool
    tool_call_parser: str | None
    reasoning_parser: str | None
    multimodal: bool  # the deployment has an encode pool: every worker takes multimodal requests
    calls_encoder: bool  # this pool sends the encode pool its multimodal inputs (prefill, else agg)
    chat_template: str | None  # the custom chat template's file in the engine directory
    timing_file: str | None  # step times for the mock engine, as a data file the target writes
    speedup_ratio: float  # the mock engine's speed-up over real time


class ResolvedConfig(msgspec.Struct):
    """A pool's engine config as the configuring engine resolved it: each value, where it came from (the
    spec, a default, a rule), and what the spec's passthrough section overrode or could not merge."""

    config: dict[str, Any]
    sources: dict[str, Provenance]
    overrides: list[tuple[str, Any, Any]]  # (dotted key, first-class value, extra's value)
    owned_conflicts: list[str]
    type_errors: list[tuple[str, Any, str]] = msgspec.field(default_factory=list)  # (dotted, value, expected)

    def get(self, dotted: str, default: Any = None) -> Any:
        node: Any = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node


class ConfigReading(msgspec.Struct, frozen=True):
    """What ``dyncc import`` reads of the engine's workers beside their config (``read_config``)."""

    defaults: Mapping[str, Any]  # flattened config key -> the engine's default: written or left out, the same
    field_keys: Mapping[str, str]  # the spec's engine field -> the config key it is read from
    transfer_keys: Mapping[str, str]  # the spec's kv_transfer field -> the config key it is read from
    default_model: str  # the model a worker serves when its command names none
    model_env: str  # where a Dynamo 1.x worker reads that model from first


class ReadConfig(msgspec.Struct):
    """A worker's engine config as the spec says it: the inverse of :meth:`ConfigImplementation.config_text`."""

    pool: dict[str, Any]  # the pool's fields: tensor_parallel, pipeline_parallel, ..., attention_dp
    engine: dict[str, Any]  # the pool's engine section; what it has no field for under `extra`
    model: dict[str, Any]  # the spec's model settings the config holds
    transfer: dict[str, Any]  # kv_transfer fields (their config keys: ConfigReading.transfer_keys)
    unsupported: list[tuple[str, str]]  # (config key, what of it) the spec cannot hold: not carried over


class Graph(Protocol):
    """What an engine's rules read of the compiler's deployment graph."""

    @property
    def spec(self) -> CoreSpec: ...
    @property
    def facts(self) -> ModelFacts: ...
    @property
    def release(self) -> Release: ...
    @property
    def engine(self) -> Engine: ...  # the configuring engine
    @property
    def runtime(self) -> Engine: ...  # the engine the workers run
    @property
    def engine_release(self) -> Any: ...  # the configuring engine's view of the release

    def pools(self) -> Sequence[GraphPool]: ...


class GraphPool(Protocol):
    """One pool as the compiler's graph holds it."""

    @property
    def role(self) -> Role: ...
    @property
    def spec(self) -> Pool: ...
    @property
    def engine(self) -> Any: ...  # the configuring engine's resolved config
    @property
    def path(self) -> tuple[str, ...]: ...


class EngineRule(msgspec.Struct, frozen=True):
    """A validation rule that is an engine's own, with its stable code (the compiler runs it with its rules)."""

    code: str
    name: str
    check: Callable[[Graph], Iterable[Diagnostic]]
    summary: str = ""


class Implementation(Protocol):
    """The module behind an engine (``Engine.implementation``)."""

    RULES: tuple[EngineRule, ...]

    def release_view(self, release: Release) -> Any:
        """What the engine reads of a release (its pinned version, its parser's flags), computed once."""
        ...

    def worker_command(self, pool: PoolWorkers, view: Any) -> WorkerCommand: ...

    def problems(self, pools: Sequence[PoolWorkers], view: Any, configuring: Engine) -> list[Diagnostic]:
        """What a target running these workers would fail on (a mode or connector the engine lacks)."""
        ...


class ConfigImplementation(Implementation, Protocol):
    """The module behind an engine that reads the spec's engine section."""

    def resolve_config(self, spec: CoreSpec, role: Role, pool: Pool, moe: bool | None, view: Any) -> Any:
        """The pool's engine config, each value with its :class:`Provenance`."""
        ...

    def limits(self, config: Any) -> WorkerLimits: ...

    def config_text(self, role: str, config: Mapping[str, Any], spec_name: str, view: Any) -> str:
        """The engine config file a worker reads."""
        ...

    def draft_model(self, config: Mapping[str, Any]) -> str | None:
        """The draft model a speculative config names (one that a target may deliver elsewhere)."""
        ...

    def with_draft_model(self, config: Mapping[str, Any], model: str, path: str) -> dict[str, Any]: ...

    READING: ConfigReading

    def read_config(self, config: Mapping[str, Any], role: str) -> ReadConfig:
        """A worker's engine config read back into the spec (``dyncc import``)."""
        ...

    def version_note(self, view: Any) -> str:
        """The engine and version the generated files' header names, e.g. ``Foo 1.2``."""
        ...

    def memory_budget(
        self, graph: Graph, pool: GraphPool, capacity: int, tensor_parallel: int | None = None
    ) -> Budget | None:
        """One GPU of the pool's worker, by the engine's memory model, on a GPU of ``capacity`` bytes
        (``tensor_parallel``: at another TP size); None where the model cannot say (an unknown architecture).
        Asked of the configuring engine: a stand-in (the mock engine) is checked as the engine it stands in
        for would run, since the spec's GPUs are sized for that one."""
        ...


class Engine(msgspec.Struct, frozen=True):
    """An engine's declaration: cheap to import, read by the compiler and (through the plan) the targets."""

    name: str  # the spec's `worker_runtime` value and `--engine NAME`
    label: str  # in messages and script comments, e.g. "Dynamo's mock engine"
    worker_label: str  # before "worker(s)" in a script's comment, e.g. "mock-engine"
    module: str  # what `python3 -m` runs for a worker
    component: Component  # its parser's flags in the release files
    implementation: str  # module path of its Implementation
    # It reads the spec's engine section: resolves each pool's engine config, writes it, checks it. An engine
    # that does not (the mock engine) stands in for the one that does, sized by that one's config.
    configures: bool = False
    mock: bool = False  # stands in for a real engine with no GPUs (targets that cannot run one refuse it: DYN530)
    image: str | None = None  # its runtime image under NGC's ai-dynamo; None: it runs on the host, not in a container
    rank_per_gpu: bool = True  # one process (rank) per GPU; False: one process per worker
    rank_launcher: tuple[str, ...] = ()  # what each rank of a worker with several starts under (Slurm)
    multinode_env: tuple[tuple[str, str], ...] = ()  # env of a worker spanning nodes (Kubernetes)
    # Serves a model directory on the worker's machine with the hub turned off: the spec's checkpoint
    # directory, else the small model it ships (offline_files); `env` says what turns the hub off.
    offline: bool = False
    offline_files: tuple[str, str] | None = None  # (package, folder) of the model it ships
    env: tuple[tuple[str, str, str], ...] = ()  # (name, value, why) set for every process of a deployment
    dgd_backend: str = ""  # a DynamoGraphDeployment's backendFramework and its planner's backend
    dgd_service_prefix: str = ""  # v1alpha1 service names: <prefix>Worker, <prefix>PrefillWorker, ...
    python_package: tuple[str, str] | None = None  # (import name, label) a python must have to run it
    # AIConfigurator's backend name for it (whose data the twin and `dyncc estimate` read) and the version of
    # the engine that data was measured on; None: AIConfigurator cannot model it.
    aic_backend: str | None = None
    aic_data_version: str | None = None

    def aic(self) -> Backend | None:
        """The engine as a request to AIConfigurator names it; None where AIConfigurator has no data for it."""
        if self.aic_backend is None or self.aic_data_version is None:
            return None
        from dyncc.aic.runner import Backend  # the runner's own type; imported when AIConfigurator is asked

        return Backend(self.aic_backend, self.aic_data_version, self.label)

    def module_impl(self) -> Implementation:
        found: Implementation = importlib.import_module(self.implementation)
        return found

    def config_impl(self) -> ConfigImplementation:
        assert self.configures, f"{self.name} reads no engine section"
        found: ConfigImplementation = importlib.import_module(self.implementation)
        return found

    def model_files(self) -> dict[str, str]:
        """The small model an offline engine serves when the spec's model is not a directory here."""
        if self.offline_files is None:
            return {}
        from importlib import resources

        package, folder = self.offline_files
        here = resources.files(package).joinpath(folder)
        files = sorted((e for e in here.iterdir() if e.is_file()), key=lambda e: e.name)
        return {entry.name: entry.read_text("utf-8") for entry in files}


RuleCheck = Callable[["Graph"], Iterable[Diagnostic]]


def rule(registry: list[EngineRule], code: str, name: str) -> Callable[[RuleCheck], RuleCheck]:
    """Register an engine's rule in its ``registry`` (the engine module's RULES); what it yields is stamped
    with its code, as the compiler's own rules are."""

    def register(fn: RuleCheck) -> RuleCheck:
        def stamped(graph: Graph) -> Iterator[Diagnostic]:
            for found in fn(graph):
                yield msgspec.structs.replace(found, code=code)

        registry.append(EngineRule(code, name, stamped, (fn.__doc__ or "").strip().splitlines()[0]))
        return fn

    return register


def finding(message: str, path: YamlPath, hint: str | None = None, severity: Severity = "error") -> Diagnostic:
    return Diagnostic("", message, path=path, hint=hint, severity=severity)
