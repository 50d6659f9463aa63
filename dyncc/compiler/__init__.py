"""parse -> graph -> rules -> placement -> plan.

:func:`compile_spec` runs the whole pipeline and returns a :class:`Compilation`; any error-severity
diagnostic stops it with :class:`~dyncc.diagnostics.DiagnosticError`. Each step reads the graph the
previous one built; none re-derives it.
"""

from __future__ import annotations

import msgspec

from dyncc.compiler.graph import DeploymentGraph, build_graph
from dyncc.compiler.groups import pool_groups
from dyncc.compiler.placement import Placement, PlacementError, place_groups
from dyncc.compiler.plan import DeploymentPlan, lower
from dyncc.compiler.rules import RULES, run_rules
from dyncc.diagnostics import Diagnostic, DiagnosticError, has_errors
from dyncc.spec import LoadedSpec

__all__ = ["Compilation", "RULES", "check_spec", "compile_spec", "locate"]


class Compilation(msgspec.Struct, frozen=True):
    loaded: LoadedSpec
    graph: DeploymentGraph
    placement: Placement
    plan: DeploymentPlan
    diagnostics: tuple[Diagnostic, ...]  # warnings and notes; errors never get this far


def check_spec(loaded: LoadedSpec) -> tuple[DeploymentGraph, Placement | None, list[Diagnostic]]:
    """Build the graph, run every rule, and place ranks when the rules pass. Never raises for bad specs."""
    graph = build_graph(loaded)
    diagnostics = list(loaded.notices) + run_rules(graph)
    placement = None
    if not has_errors(diagnostics):
        cluster = graph.spec.cluster
        try:
            placement = place_groups(graph.pools(), pool_groups(graph.spec), separate=cluster.pool_nodes == "separate")
            diagnostics.extend(placement.notes)
        except PlacementError as exc:
            diagnostics.append(exc.diagnostic)
    return graph, placement, _locate(loaded, diagnostics)


def compile_spec(loaded: LoadedSpec) -> Compilation:
    graph, placement, diagnostics = check_spec(loaded)
    if has_errors(diagnostics) or placement is None:
        raise DiagnosticError(diagnostics)
    return Compilation(loaded, graph, placement, lower(graph, placement), tuple(diagnostics))


def locate(loaded: LoadedSpec, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """``diagnostics`` with a file:line:col from their spec path, in report order (errors first)."""
    return _locate(loaded, diagnostics)


def _locate(loaded: LoadedSpec, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    located = [d if d.location else loaded.located(d) for d in diagnostics]

    def order(d: Diagnostic) -> tuple[int, int, int, str]:
        line, column = (d.location.line, d.location.column) if d.location else (0, 0)
        return {"error": 0, "warning": 1, "info": 2}[d.severity], line, column, d.code

    return sorted(located, key=order)
