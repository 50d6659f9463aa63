"""Build the deployment graph: the one typed graph every rule, the placement and every target read.

Nodes (ids in a networkx DiGraph, typed records beside them): ``frontend`` (HTTP + router),
``discovery``, one ``pool:<role>`` per declared pool (its :class:`PoolInfo`), and ``planner`` when
enabled. Edges carry an :class:`EdgeKind`:

- ``requests``    frontend -> the pools it routes to (Dynamo 1.6's frontend drives prefill, then decode);
                  prefill/agg -> encode (the encode endpoint is called by the worker, not the frontend)
- ``kv_events``   pool -> frontend, when the pool publishes KV events for the KV router
- ``kv_transfer`` prefill -> decode (NIXL/UCX/... via the cache transceiver)
- ``metrics``     frontend and pools -> planner
- ``registers``   frontend and pools -> discovery

Values the compiler derives (KV events turned on for the KV router, the router's block size) are
computed here, once, with their provenance; rules only read them. Nothing here is a target's: ports,
hosts and paths are chosen by the targets from their own settings.
"""

from __future__ import annotations

import enum
from pathlib import Path

import msgspec
import networkx as nx

from dyncc.compiler.profiles import Profile, newest_profile, profile_for
from dyncc.engines import configuring, engine
from dyncc.engines.base import Engine, ResolvedConfig, WorkerLimits
from dyncc.spec import CoreSpec, LoadedSpec, Pool, Role, SourceMap
from dyncc.spec.loader import ModelFacts
from dyncc.spec.model import RouterMode
from dyncc.spec.provenance import Provenance

FRONTEND = "frontend"
DISCOVERY = "discovery"
PLANNER = "planner"

# Dynamo's `--disaggregation-mode` per pool role.
DISAGGREGATION_MODE = {"agg": "agg", "prefill": "prefill", "decode": "decode", "encode": "encode"}


class EdgeKind(enum.StrEnum):
    REQUESTS = "requests"
    KV_EVENTS = "kv_events"
    KV_TRANSFER = "kv_transfer"
    METRICS = "metrics"
    REGISTERS = "registers"


def pool_node(role: Role) -> str:
    return f"pool:{role}"


class PoolInfo(msgspec.Struct, frozen=True):
    """Everything the compiler resolved for one pool; stored as the ``pool`` attribute of its node."""

    role: Role
    spec: Pool
    engine: ResolvedConfig  # the configuring engine's resolved config
    gpus_per_worker: int
    publish_kv_events: bool
    publish_kv_events_source: Provenance
    limits: WorkerLimits  # the worker's size as the config says it (block size, batch limits, DP ranks)

    @property
    def replicas(self) -> int:
        return self.spec.replicas

    @property
    def node(self) -> str:
        return pool_node(self.role)

    @property
    def path(self) -> tuple[str, ...]:
        return ("pools", self.role)

    @property
    def tokens_per_block(self) -> int:
        return self.limits.block_size


class RouterInfo(msgspec.Struct, frozen=True):
    mode: RouterMode
    block_size: int | None
    block_size_source: Provenance | None
    kv_events: bool


class FrontendNode(msgspec.Struct, frozen=True):
    router: RouterInfo


class DiscoveryNode(msgspec.Struct, frozen=True):
    pass


class PlannerNode(msgspec.Struct, frozen=True):
    mode: str


NodeData = FrontendNode | DiscoveryNode | PoolInfo | PlannerNode


class DeploymentGraph:
    """The topology as ids and typed edges (networkx, for reachability and drawing) plus typed node records,
    and the inputs every rule reads: the spec, the model facts, the version profile, the engines (the one the
    workers run, and the one whose config the pools resolve to), and the directory the spec's relative file
    paths are read from."""

    def __init__(
        self, spec: CoreSpec, facts: ModelFacts, source: SourceMap, profile: Profile, spec_dir: Path | None = None
    ) -> None:
        self.spec = spec
        self.facts = facts
        self.source = source
        self.profile = profile
        self.spec_dir = spec_dir
        assert profile.release is not None
        self.release = profile.release
        self.runtime: Engine = engine(spec.worker_runtime)  # the engine the workers run
        self.engine: Engine = configuring(self.runtime)  # the engine whose config the pools resolve to
        # Each engine's view of the release (its pinned version, its parser's flags); one object when the
        # workers run the configuring engine.
        self.engine_release = self.engine.config_impl().release_view(self.release)
        runtime_impl = self.runtime.module_impl()
        same = self.runtime is self.engine
        self.runtime_release = self.engine_release if same else runtime_impl.release_view(self.release)
        self.strategy: str | None = None  # Dynamo 0.x's disaggregation strategy, when disaggregated
        self.kv_scored_roles: tuple[Role, ...] = ("agg",)
        self.topology = nx.DiGraph()
        self._data: dict[str, NodeData] = {}

    # --- building -----------------------------------------------------------------------------------

    def add_node(self, node: str, data: NodeData) -> None:
        self._data[node] = data
        self.topology.add_node(node)

    def add_edge(self, u: str, v: str, kind: EdgeKind) -> None:
        self.topology.add_edge(u, v, kind=kind)

    # --- reading ------------------------------------------------------------------------------------

    def __contains__(self, node: object) -> bool:
        return node in self._data

    def node(self, node: str) -> NodeData:
        return self._data[node]

    def nodes(self) -> list[str]:
        return list(self._data)

    @property
    def router(self) -> RouterInfo:
        frontend = self._data[FRONTEND]
        assert isinstance(frontend, FrontendNode)
        return frontend.router

    @property
    def planner(self) -> PlannerNode | None:
        planner = self._data.get(PLANNER)
        return planner if isinstance(planner, PlannerNode) else None

    def pools(self) -> list[PoolInfo]:
        return [data for data in self._data.values() if isinstance(data, PoolInfo)]

    def pool(self, role: Role) -> PoolInfo | None:
        data = self._data.get(pool_node(role))
        return data if isinstance(data, PoolInfo) else None

    def pair(self) -> tuple[PoolInfo, PoolInfo] | None:
        """The prefill and decode pools of a disaggregated deployment."""
        prefill, decode = self.pool("prefill"), self.pool("decode")
        return (prefill, decode) if prefill and decode else None

    def edges(self, kind: EdgeKind | str | None = None) -> list[tuple[str, str, EdgeKind]]:
        return [(u, v, k) for u, v, k in self.topology.edges(data="kind") if kind is None or k == kind]

    def routed_pools(self) -> list[PoolInfo]:
        """Pools the frontend's router picks workers from (KV-scored under the KV router)."""
        routed = []
        for u, v, _ in self.edges(EdgeKind.REQUESTS):
            data = self._data[v]
            if u == FRONTEND and isinstance(data, PoolInfo) and data.role in self.kv_scored_roles:
                routed.append(data)
        return routed


def disaggregation_strategy(spec: CoreSpec, profile: Profile) -> str | None:
    """Dynamo 0.x: which worker a disaggregated request enters first (None in 1.x: the frontend drives both)."""
    if not profile.disaggregation_strategy:
        return None
    return spec.router.disaggregation_strategy or ("prefill_first" if spec.router.mode == "kv" else "decode_first")


def build_graph(loaded: LoadedSpec) -> DeploymentGraph:
    spec: CoreSpec = loaded.spec
    # An unknown release is reported by DYN701; the newest profile keeps the rules going.
    profile = profile_for(spec.dynamo.version) or newest_profile()
    graph = DeploymentGraph(spec, loaded.facts, loaded.source, profile, loaded.base_dir)
    declared = spec.pools.declared()
    kv_router = spec.router.mode == "kv"
    roles = {role for role, _ in declared}
    strategy = disaggregation_strategy(spec, profile) if {"prefill", "decode"} <= roles else None
    # The pool whose workers the router picks by KV overlap: agg, or where disaggregated requests enter.
    entry: Role = "decode" if strategy == "decode_first" else "prefill"
    graph.strategy = strategy
    graph.kv_scored_roles = ("agg", entry)

    graph.add_node(DISCOVERY, DiscoveryNode())
    graph.add_edge(FRONTEND, DISCOVERY, EdgeKind.REGISTERS)
    infos = []
    for role, pool in declared:
        config = graph.engine.config_impl()
        engine = config.resolve_config(spec, role, pool, loaded.facts.moe, graph.engine_release)
        publish, why = _kv_event_publishing(role, pool, kv_router and spec.router.kv_events, entry)
        info = PoolInfo(
            role=role,
            spec=pool,
            engine=engine,
            gpus_per_worker=pool.tensor_parallel * pool.pipeline_parallel,
            publish_kv_events=publish,
            publish_kv_events_source=why,
            limits=config.limits(engine),
        )
        infos.append(info)
        graph.add_node(info.node, info)
        graph.add_edge(info.node, DISCOVERY, EdgeKind.REGISTERS)
        if role in ("agg", entry) or (role in ("prefill", "decode") and strategy is None):
            graph.add_edge(FRONTEND, info.node, EdgeKind.REQUESTS)
        if publish:
            graph.add_edge(info.node, FRONTEND, EdgeKind.KV_EVENTS)

    if {"prefill", "decode"} <= roles:
        graph.add_edge(pool_node("prefill"), pool_node("decode"), EdgeKind.KV_TRANSFER)
        if strategy is not None:
            # 0.x: the entry worker forwards to the other one.
            other: Role = "prefill" if entry == "decode" else "decode"
            graph.add_edge(pool_node(entry), pool_node(other), EdgeKind.REQUESTS)
    if "encode" in roles:
        caller: Role | None = "prefill" if "prefill" in roles else ("agg" if "agg" in roles else None)
        if caller:
            graph.add_edge(pool_node(caller), pool_node("encode"), EdgeKind.REQUESTS)

    if spec.planner.enabled:
        graph.add_node(PLANNER, PlannerNode(spec.planner.mode))
        for node in [FRONTEND, *(pool_node(r) for r, _ in declared)]:
            graph.add_edge(node, PLANNER, EdgeKind.METRICS)

    # The frontend's record needs the routed pools, known only once the request edges are in.
    graph.add_node(FRONTEND, FrontendNode(_router_info(spec, graph.routed_pools())))
    return graph


def _kv_event_publishing(role: Role, pool: Pool, kv_events_wanted: bool, entry: str) -> tuple[bool, Provenance]:
    if pool.publish_kv_events is not None:
        return pool.publish_kv_events, Provenance(
            "user", f"pools.{role}.publish_kv_events", ("pools", role, "publish_kv_events")
        )
    if kv_events_wanted and role in ("agg", entry):
        # The KV router scores prefix overlap on the workers it routes new prompts to.
        return True, Provenance("rule", "DYN301")
    return False, Provenance("default", "no KV router with events")


def _router_info(spec: CoreSpec, routed: list[PoolInfo]) -> RouterInfo:
    router = spec.router
    if router.mode != "kv":
        return RouterInfo(router.mode, router.block_size, None, router.kv_events)
    if router.block_size is not None:
        return RouterInfo(
            "kv", router.block_size, Provenance("user", "router.block_size", ("router", "block_size")), router.kv_events
        )
    sizes = sorted({p.tokens_per_block for p in routed if p.tokens_per_block is not None})
    # With mismatched pools there is no right answer; DYN302 reports it, the first size keeps going.
    size = sizes[0] if sizes else 32
    return RouterInfo("kv", size, Provenance("rule", "DYN302"), router.kv_events)


def edges_of_kind(graph: DeploymentGraph, kind: EdgeKind | str) -> list[tuple[str, str]]:
    return [(u, v) for u, v, _ in graph.edges(kind)]


def pools(graph: DeploymentGraph) -> list[PoolInfo]:
    return graph.pools()


def pool(graph: DeploymentGraph, role: Role) -> PoolInfo | None:
    return graph.pool(role)


def spec_of(graph: DeploymentGraph) -> CoreSpec:
    return graph.spec
