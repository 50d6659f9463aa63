"""Routing (DYN301-305, DYN308): the KV router's events, block size and options, and migration options.

DYN306 (a deprecated router flag) is retired: where Dynamo deprecates the weight flags, dyncc writes the weights
into the frontend's --router-policy-config file instead (``dyncc.compiler.plan.router_policy_yaml``).

DYN307 (replica sync with one frontend) depends on the target: see ``dyncc.targets.base.FEATURES``."""

from __future__ import annotations

from collections.abc import Iterator

from dyncc.compiler.graph import DeploymentGraph, EdgeKind
from dyncc.compiler.rules.base import finding, rule
from dyncc.diagnostics import Diagnostic


@rule("DYN301", "kv-router-needs-events")
def kv_router_gets_events(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """The KV router (with events) needs KV events from every pool it routes."""
    router = graph.router
    if router.mode != "kv" or not router.kv_events:
        return
    publishers = {u for u, _, _ in graph.edges(EdgeKind.KV_EVENTS)}
    for p in graph.routed_pools():
        if p.node not in publishers:
            yield finding(
                f"the KV router routes the {p.role} pool, but its publish_kv_events is false",
                p.path + ("publish_kv_events",),
                "remove publish_kv_events: false, or set router.kv_events: false (approximate routing)",
            )
        elif p.publish_kv_events_source.kind == "rule":
            yield finding(
                # The flag is the engine's and the release's to spell (0.x: --publish-events-and-metrics).
                f"KV events turned on for the {p.role} pool: the KV router needs them",
                ("router", "mode"),
                severity="info",
            )


@rule("DYN302", "router-block-size")
def router_block_size_matches(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """The KV router's block size equals the tokens per block of every pool it routes."""
    router = graph.router
    if router.mode != "kv":
        return
    for p in graph.routed_pools():
        if p.tokens_per_block != router.block_size:
            where = (
                ("router", "block_size")
                if router.block_size_source is not None and router.block_size_source.kind == "user"
                else p.path + ("engine", "tokens_per_block")
            )
            yield finding(
                f"router block size {router.block_size} differs from the {p.role} pool's "
                f"tokens_per_block {p.tokens_per_block}",
                where,
                "the router hashes prefixes per block: use one block size everywhere",
            )


@rule("DYN303", "conditional-disagg-needs-kv")
def conditional_disagg_needs_kv_and_disagg(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Conditional disaggregation needs the KV router and prefill + decode pools."""
    spec = graph.spec
    if not spec.router.conditional_disagg:
        return
    if spec.router.mode != "kv":
        yield finding(
            "router.conditional_disagg needs router.mode kv", ("router", "conditional_disagg"), "set router.mode: kv"
        )
    if not graph.pair():
        yield finding("router.conditional_disagg needs prefill and decode pools", ("router", "conditional_disagg"))


@rule("DYN304", "kv-options-need-kv-router")
def kv_options_need_kv_router(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """KV-router options are errors under another router mode (they would be silently ignored)."""
    router = graph.spec.router
    if router.mode == "kv":
        return
    for field in ("overlap_score_credit", "temperature", "replica_sync", "block_size"):
        if getattr(router, field) is not None:
            yield finding(
                f"router.{field} only applies to the KV router; mode is {router.mode}",
                ("router", field),
                "set router.mode: kv, or remove it",
            )
    if router.reset_states:
        yield finding(
            f"router.reset_states only applies to the KV router; mode is {router.mode}",
            ("router", "reset_states"),
            "set router.mode: kv, or remove it",
        )
    if "kv_events" in router.model_fields_set:
        yield finding(
            f"router.kv_events only applies to the KV router; mode is {router.mode}",
            ("router", "kv_events"),
            "set router.mode: kv, or remove it",
        )


@rule("DYN305", "conditional-disagg-needs-kv-events")
def conditional_disagg_needs_kv_events(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Conditional disaggregation needs KV events: Dynamo 1.6.1's frontend refuses to start without them."""
    router = graph.spec.router
    if router.conditional_disagg and router.mode == "kv" and not router.kv_events:
        yield finding(
            "router.conditional_disagg needs KV events, but router.kv_events is false (approximate routing): "
            "Dynamo's frontend exits at start-up (--router-conditional-disagg requires --router-kv-events)",
            ("router", "kv_events"),
            "remove router.kv_events: false, or turn router.conditional_disagg off",
        )


@rule("DYN308", "migration-options-need-migration")
def migration_options_need_migration(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """`migration.max_seq_len` bounds migration; with migration off (limit 0) no flag would carry it."""
    migration = graph.spec.migration
    if migration.limit == 0 and migration.max_seq_len is not None:
        yield finding(
            "migration.max_seq_len is set but migration.limit is 0: no request migrates, and no process "
            "would be told the length",
            ("migration", "max_seq_len"),
            "set migration.limit above 0, or remove max_seq_len",
        )
