"""Engine config (DYN108, DYN109, DYN114): the keys and values TensorRT-LLM accepts, passthrough values that
override the spec's, and the types of passthrough values dyncc itself reads."""

from __future__ import annotations

from collections.abc import Iterator

from dyncc.compiler.graph import DeploymentGraph
from dyncc.compiler.rules.base import finding, rule
from dyncc.diagnostics import Diagnostic
from dyncc.trtllm.engine_config import OWNED_KEYS
from dyncc.trtllm.keys import check_engine_config


@rule("DYN108", "engine-keys-accepted")
def engine_keys_accepted(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Engine YAMLs hold only keys and values TensorRT-LLM 1.3.0rc29 accepts; owned keys come from pool fields."""
    for p in graph.pools():
        extra_path = p.path + ("engine", "extra")
        for key in p.engine.owned_conflicts:
            yield finding(
                f"`{key}` cannot be passed through engine.extra",
                extra_path + (key,),
                f"set it with {OWNED_KEYS[key]}: every target and the placement read that one value",
            )
        overrides = graph.profile.engine_enum_overrides()
        for key_path, problem, suggestion in check_engine_config(p.engine.config, overrides):
            source = p.engine.sources.get(".".join(key_path))
            path = source.path if source and source.path else extra_path + key_path
            yield finding(
                problem,
                path,
                f"did you mean `{suggestion}`?" if suggestion else "see TensorRT-LLM's llm_args for the accepted keys",
            )


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
