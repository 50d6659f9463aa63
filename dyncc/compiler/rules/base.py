"""The rule registry: each rule a small named function with its stable code, registered by :func:`rule`.

A rule reads the typed :class:`~dyncc.compiler.graph.DeploymentGraph` (never the YAML) and yields
diagnostics with the spec path at fault. The decorator stamps the rule's code on what it yields, so a
rule cannot report under another rule's code. Codes are stable: CI pipelines match on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import msgspec

from dyncc.compiler.graph import DeploymentGraph
from dyncc.diagnostics import Diagnostic, Severity, YamlPath

RuleCheck = Callable[[DeploymentGraph], Iterable[Diagnostic]]


class Rule(msgspec.Struct, frozen=True):
    code: str
    name: str
    summary: str
    check: Callable[[DeploymentGraph], Iterator[Diagnostic]]


RULES: list[Rule] = []


def rule(code: str, name: str) -> Callable[[RuleCheck], RuleCheck]:
    def register(fn: RuleCheck) -> RuleCheck:
        def stamped(graph: DeploymentGraph) -> Iterator[Diagnostic]:
            for found in fn(graph):
                yield msgspec.structs.replace(found, code=code)

        RULES.append(Rule(code, name, (fn.__doc__ or "").strip().splitlines()[0], stamped))
        return fn

    return register


def finding(message: str, path: YamlPath, hint: str | None = None, severity: Severity = "error") -> Diagnostic:
    return Diagnostic("", message, path=path, hint=hint, severity=severity)


def run_rules(graph: DeploymentGraph) -> list[Diagnostic]:
    return [d for r in RULES for d in r.check(graph)]
