"""Disaggregation (DYN201-206): prefill and decode come as a pair and agree on what crosses between them."""

from __future__ import annotations

from collections.abc import Iterator

from dyncc.compiler.graph import DeploymentGraph
from dyncc.compiler.rules.base import finding, rule
from dyncc.diagnostics import Diagnostic


@rule("DYN201", "disagg-needs-both-pools")
def disagg_needs_prefill_and_decode(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Disaggregated serving needs both a prefill and a decode pool, and no agg pool beside them."""
    have = {p.role for p in graph.pools()}
    if ("prefill" in have) != ("decode" in have):
        missing = "decode" if "prefill" in have else "prefill"
        present = "prefill" if missing == "decode" else "decode"
        yield finding(
            f"pools.{present} without pools.{missing}: disaggregated serving needs both",
            ("pools", present),
            f"add pools.{missing}, or serve with pools.agg alone",
        )
    if "agg" in have and have & {"prefill", "decode"}:
        yield finding(
            "pools.agg beside prefill/decode: the frontend serves one model one way",
            ("pools", "agg"),
            "declare agg alone, or prefill + decode",
        )


def _pair_must_match(graph: DeploymentGraph, dotted: str, what: str, hint: str) -> Iterator[Diagnostic]:
    pair = graph.pair()
    if not pair:
        return
    prefill, decode = pair
    a, b = prefill.engine.get(dotted), decode.engine.get(dotted)
    if a != b:
        src = decode.engine.sources.get(dotted) or prefill.engine.sources.get(dotted)
        path = src.path if src and src.path else ("pools", "decode", "engine")
        yield finding(
            f"prefill and decode disagree on {what}: prefill {a!r}, decode {b!r}",
            path,
            hint + f" (nothing in {graph.engine.label} checks the pair: a mismatch shows up as hangs or garbage)",
        )


@rule("DYN202", "transceiver-backend-matches")
def transceiver_backend_matches(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Prefill and decode use the same explicit KV-cache transceiver backend."""
    pair = graph.pair()
    if pair and pair[0].engine.get("cache_transceiver_config.backend") is None:
        yield finding(
            "no KV-cache transceiver backend on the prefill pool",
            ("kv_transfer", "backend"),
            "unset, every disaggregated request fails at run time: set kv_transfer.backend",
        )
    yield from _pair_must_match(
        graph,
        "cache_transceiver_config.backend",
        "the KV transfer backend",
        "set it once in kv_transfer.backend, not per pool",
    )


@rule("DYN203", "tokens-per-block-matches")
def tokens_per_block_matches(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Prefill and decode use the same KV-cache tokens per block."""
    yield from _pair_must_match(
        graph,
        "kv_cache_config.tokens_per_block",
        "KV tokens per block",
        "give both pools the same engine.tokens_per_block",
    )


@rule("DYN204", "kv-dtype-matches")
def kv_dtype_matches(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Prefill and decode store the KV cache in the same dtype."""
    yield from _pair_must_match(
        graph, "kv_cache_config.dtype", "the KV cache dtype", "give both pools the same engine.kv_cache_dtype"
    )


@rule("DYN205", "speculative-config-matches")
def speculative_config_matches(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Prefill and decode share the speculative config (draft layers change the KV layout)."""
    yield from _pair_must_match(
        graph,
        "speculative_config",
        "the speculative config",
        "declare speculation once in `speculative:`, not in engine.extra",
    )


@rule("DYN206", "transfer-backend-default")
def default_backend_is_ambiguous(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """The DEFAULT transceiver backend means different things across engine versions."""
    spec = graph.spec
    if graph.pair() and spec.kv_transfer.backend == "DEFAULT":
        yield finding(
            "kv_transfer.backend DEFAULT resolves from environment variables and changed across "
            f"{graph.engine.label} versions (UCX before, NIXL in 1.3)",
            ("kv_transfer", "backend"),
            "name the backend: NIXL (Dynamo 1.6's default) or UCX",
            severity="warning",
        )
