"""Planner (DYN601-602): the SLA planner's targets and the load planner's thresholds."""

from __future__ import annotations

from collections.abc import Iterator

from dyncc.compiler.graph import DeploymentGraph
from dyncc.compiler.rules.base import finding, rule
from dyncc.diagnostics import Diagnostic


@rule("DYN601", "sla-planner-targets")
def sla_planner_has_targets(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """The SLA planner scales to latency targets, which must be given."""
    planner = graph.spec.planner
    if planner.enabled and planner.mode == "sla" and (planner.ttft_ms is None or planner.itl_ms is None):
        yield finding(
            "the SLA planner needs planner.ttft_ms and planner.itl_ms",
            ("planner",),
            "set both targets, or use planner.mode: load",
        )


@rule("DYN602", "load-planner-thresholds")
def load_planner_has_thresholds(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """The load planner needs scale-up above scale-down thresholds for the pools it scales."""
    spec = graph.spec
    planner = spec.planner
    if not (planner.enabled and planner.mode == "load"):
        return
    roles = {p.role for p in graph.pools()}
    pairs = []
    if "prefill" in roles:
        pairs.append(("prefill_scale_up_queue_tokens", "prefill_scale_down_queue_tokens"))
    if roles & {"decode", "agg"}:
        pairs.append(("decode_scale_up_kv_rate", "decode_scale_down_kv_rate"))
    for up, down in pairs:
        hi, lo = getattr(planner.load, up), getattr(planner.load, down)
        if hi is None or lo is None:
            yield finding(
                f"the load planner needs planner.load.{up} and planner.load.{down}",
                ("planner", "load"),
                "set both, scale-up above scale-down",
            )
        elif hi <= lo:
            yield finding(f"planner.load.{up} ({hi}) must be above {down} ({lo})", ("planner", "load", up))
