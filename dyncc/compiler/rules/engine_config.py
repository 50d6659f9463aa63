"""Engine config (DYN108, DYN109, DYN114): the keys and values TensorRT-LLM accepts, passthrough values that
override the spec's, and the types of passthrough values dyncc itself reads."""

from __future__ import annotations

from collections.abc import Iterator

from dyncc.compiler.graph import DeploymentGraph
from dyncc.compiler.profiles import profile_with
from dyncc.compiler.rules.base import finding, rule
from dyncc.diagnostics import Diagnostic
from dyncc.trtllm.engine_config import OWNED_KEYS
from dyncc.trtllm.keys import KeyProblem, check_engine_config


@rule("DYN108", "engine-keys-accepted")
def engine_keys_accepted(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Engine YAMLs hold only keys and values the deployed TensorRT-LLM accepts; owned keys come from pool fields."""
    for p in graph.pools():
        extra_path = p.path + ("engine", "extra")
        for key in p.engine.owned_conflicts:
            yield finding(
                f"`{key}` cannot be passed through engine.extra",
                extra_path + (key,),
                f"set it with {OWNED_KEYS[key]}: every target and the placement read that one value",
            )
        for problem in check_engine_config(p.engine.config, graph.profile.trtllm_version):
            dotted = ".".join(problem.path)
            source = p.engine.sources.get(dotted)
            path = source.path if source and source.path else extra_path + problem.path
            value = p.engine.get(dotted) if problem.kind == "value" else None
            yield finding(problem.message, path, _key_hint(graph, problem, value))


def _key_hint(graph: DeploymentGraph, problem: KeyProblem, value: object) -> str:
    """What to do: the close spelling, why a value is gone and what replaced it, the profile that has it."""
    parts = []
    if problem.suggestion:
        parts.append(f"did you mean `{problem.suggestion}`?")
    if problem.reason:
        parts.append(problem.reason)
    other = profile_with(".".join(problem.path), value, graph.profile)
    if other is not None:
        parts.append(f"{other.label} accepts it (`--dynamo-version {other.dynamo_version}`)")
    if not parts:
        parts.append(f"see TensorRT-LLM {graph.profile.trtllm_version}'s llm_args for the accepted keys")
    return "; ".join(parts)


@rule("DYN109", "extra-overrides")
def extra_overrides_are_reported(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """A passthrough engine key that overrides a value dyncc set is reported, never silent."""
    for p in graph.pools():
        for dotted, ours, theirs in p.engine.overrides:
            yield finding(
                f"engine.extra sets `{dotted}: {theirs}` over `{ours}` from the spec",
                p.path + ("engine", "extra") + tuple(dotted.split(".")),
                "prefer the first-class spec field, so every pool and target agrees",
                severity="warning",
            )


@rule("DYN114", "extra-value-types")
def extra_value_types(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """engine.extra values of keys dyncc reads (block size, batch sizes, CUDA graphs, ...) have the right type."""
    for p in graph.pools():
        for dotted, value, expected in p.engine.type_errors:
            shown = repr(value)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            yield finding(
                f"engine.extra `{dotted}` is {shown} ({type(value).__name__}); it must be {expected}",
                p.path + ("engine", "extra") + tuple(dotted.split(".")),
                "dyncc derives flags and checks from this key: give it the type TensorRT-LLM expects",
            )
