"""Build the deployment graph: the one DiGraph every rule, the placement and every target read.

Nodes: ``frontend`` (HTTP + router), ``discovery``, one ``pool:<role>`` per declared pool, and
``planner`` when enabled. Edges carry a ``kind``:

- ``requests``    frontend -> the pools it routes to (Dynamo 1.6's frontend drives prefill, then decode);
                  prefill/agg -> encode (the encode endpoint is called by the worker, not the frontend)
- ``kv_events``   pool -> frontend, when the pool publishes KV events for the KV router
- ``kv_transfer`` prefill -> decode (NIXL/UCX/... via the cache transceiver)
- ``metrics``     frontend and pools -> planner
- ``registers``   frontend and pools -> discovery

Values the compiler derives (KV events turned on for the KV router, the router's block size, ports)
are computed here, once, with their provenance; rules only read them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import networkx as nx

from dyncc.compiler.engine import Provenance, ResolvedEngine, resolve_engine
from dyncc.compiler.profiles import DYNAMO_1, Profile, profile_for
from dyncc.spec import LoadedSpec, Pool, Role

FRONTEND = "frontend"
DISCOVERY = "discovery"
PLANNER = "planner"

# Dynamo's `--disaggregation-mode` per pool role.
DISAGGREGATION_MODE = {"agg": "agg", "prefill": "prefill", "decode": "decode", "encode": "encode"}


def pool_node(role: Role) -> str:
    return f"pool:{role}"


@dataclasses.dataclass(frozen=True)
class PoolInfo:
    """Everything the compiler resolved for one pool; stored as the ``pool`` attribute of its node."""

    role: Role
    spec: Pool
    engine: ResolvedEngine
    gpus_per_worker: int
    publish_kv_events: bool
    publish_kv_events_source: Provenance
    system_ports: tuple[int, ...]

    @property
    def replicas(self) -> int:
        return self.spec.replicas

    @property
    def path(self) -> tuple:
        return ("pools", self.role)

    @property
    def tokens_per_block(self) -> int:
        return self.engine.get("kv_cache_config.tokens_per_block")


@dataclasses.dataclass(frozen=True)
class RouterInfo:
    mode: str
    block_size: int | None
    block_size_source: Provenance | None
    kv_events: bool


def disaggregation_strategy(spec, profile: Profile) -> str | None:
    """Dynamo 0.x: which worker a disaggregated request enters first (None in 1.x: the frontend drives both)."""
    if not profile.disaggregation_strategy:
        return None
    return spec.router.disaggregation_strategy or ("prefill_first" if spec.router.mode == "kv" else "decode_first")


def build_graph(loaded: LoadedSpec) -> nx.DiGraph:
    spec = loaded.spec
    # An unknown version family is reported by DYN701; the current profile keeps the rules going.
    profile = profile_for(spec.dynamo.version) or DYNAMO_1
    graph = nx.DiGraph(spec=spec, facts=loaded.facts, source=loaded.source, profile=profile)
    declared = spec.pools.declared()
    kv_router = spec.router.mode == "kv"
    roles = {role for role, _ in declared}
    strategy = disaggregation_strategy(spec, profile) if {"prefill", "decode"} <= roles else None
    # The pool whose workers the router picks by KV overlap: agg, or where disaggregated requests enter.
    entry: Role = "decode" if strategy == "decode_first" else "prefill"
    graph.graph["strategy"] = strategy

    graph.add_node(DISCOVERY, kind="discovery")
    graph.add_node(FRONTEND, kind="frontend", http_port=spec.local.http_port)
    graph.add_edge(FRONTEND, DISCOVERY, kind="registers")

    next_port = spec.local.system_port_base
    for role, pool in declared:
        engine = resolve_engine(spec, role, pool, loaded.facts.moe, profile)
        publish, why = _kv_event_publishing(role, pool, kv_router and spec.router.kv_events, entry)
        ports = tuple(range(next_port, next_port + pool.replicas))
        next_port += pool.replicas
        info = PoolInfo(
            role=role,
            spec=pool,
            engine=engine,
            gpus_per_worker=pool.tensor_parallel * pool.pipeline_parallel,
            publish_kv_events=publish,
            publish_kv_events_source=why,
            system_ports=ports,
        )
        node = pool_node(role)
        graph.add_node(node, kind="pool", pool=info)
        graph.add_edge(node, DISCOVERY, kind="registers")
        if role in ("agg", entry) or (role in ("prefill", "decode") and strategy is None):
            graph.add_edge(FRONTEND, node, kind="requests")
        if publish:
            graph.add_edge(node, FRONTEND, kind="kv_events")

    if {"prefill", "decode"} <= roles:
        graph.add_edge(pool_node("prefill"), pool_node("decode"), kind="kv_transfer")
        if strategy is not None:
            # 0.x: the entry worker forwards to the other one.
            other: Role = "prefill" if entry == "decode" else "decode"
            graph.add_edge(pool_node(entry), pool_node(other), kind="requests")
    if "encode" in roles:
        caller: Role | None = "prefill" if "prefill" in roles else ("agg" if "agg" in roles else None)
        if caller:
            graph.add_edge(pool_node(caller), pool_node("encode"), kind="requests")

    if spec.planner.enabled:
        graph.add_node(PLANNER, kind="planner")
        for node in [FRONTEND, *(pool_node(r) for r, _ in declared)]:
            graph.add_edge(node, PLANNER, kind="metrics")

    graph.graph["kv_scored_roles"] = ("agg", entry)
    graph.nodes[FRONTEND]["router"] = _router_info(spec, [graph.nodes[n]["pool"] for n in routed_pools(graph)])
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


def _router_info(spec, routed: list[PoolInfo]) -> RouterInfo:
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


def edges_of_kind(graph: nx.DiGraph, kind: str) -> list[tuple[str, str]]:
    return [(u, v) for u, v, k in graph.edges(data="kind") if k == kind]


def pools(graph: nx.DiGraph) -> list[PoolInfo]:
    return [data["pool"] for _, data in graph.nodes(data=True) if data["kind"] == "pool"]


def pool(graph: nx.DiGraph, role: Role) -> PoolInfo | None:
    node = graph.nodes.get(pool_node(role))
    return node["pool"] if node else None


def routed_pools(graph: nx.DiGraph) -> list[str]:
    """Pools the frontend's router picks workers from (KV-scored under the KV router)."""
    scored = graph.graph["kv_scored_roles"]
    return [
        v
        for u, v in edges_of_kind(graph, "requests")
        if u == FRONTEND and v.startswith("pool:") and graph.nodes[v]["pool"].role in scored
    ]


def spec_of(graph: nx.DiGraph) -> Any:
    return graph.graph["spec"]
