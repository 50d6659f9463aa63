"""The engines' own rules (:mod:`dyncc.engines`), run with the compiler's: each registered engine's ``RULES``,
on a graph whose workers run that engine or whose pools resolve its config (the mock engine's rules under a
mock run; the configuring engine's whenever its configs are written)."""

from __future__ import annotations

from collections.abc import Iterator

from dyncc.compiler.graph import DeploymentGraph
from dyncc.compiler.rules.base import RULES, Rule
from dyncc.diagnostics import Diagnostic
from dyncc.engines import engines
from dyncc.engines.base import Engine, EngineRule


def _runs_on(owner: Engine, found: EngineRule) -> Rule:
    def check(graph: DeploymentGraph) -> Iterator[Diagnostic]:
        if owner in (graph.runtime, graph.engine):
            yield from found.check(graph)

    return Rule(found.code, found.name, found.summary, check)


for _engine in engines():
    RULES.extend(_runs_on(_engine, found) for found in _engine.module_impl().RULES)
