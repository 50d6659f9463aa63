"""Engine config (DYN108, DYN109, DYN114, DYN128, DYN129): the keys and values TensorRT-LLM accepts,
passthrough values that override the spec's, the types of passthrough values dyncc itself reads, and values
TensorRT-LLM itself writes over with another key's (the key sets' `overrides`)."""

from __future__ import annotations

from collections.abc import Iterator

from dyncc.compiler.graph import DeploymentGraph, PoolInfo
from dyncc.compiler.profiles import profile_with
from dyncc.compiler.rules.base import finding, rule
from dyncc.diagnostics import Diagnostic, YamlPath
from dyncc.engines.trtllm.engine_config import OWNED_KEYS
from dyncc.engines.trtllm.keys import KeyProblem, check_engine_config
from dyncc.engines.trtllm.overrides import LostValue, is_set, lookup, lost_values
from dyncc.engines.trtllm.types import value_problems


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
        for problem in check_engine_config(p.engine.config, graph.profile.keyset):
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
        parts.append(f"see TensorRT-LLM {graph.profile.keyset}'s llm_args for the accepted keys")
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
    """Engine values have the types TensorRT-LLM declares (those dyncc reads itself are not even merged)."""
    for p in graph.pools():
        for dotted, value, expected in p.engine.type_errors:
            shown = repr(value)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            yield finding(
                f"engine.extra `{dotted}` is {shown} ({type(value).__name__}); it must be {expected}",
                p.path + ("engine", "extra") + tuple(dotted.split(".")),
                "dyncc derives flags and checks from this key: give it the type TensorRT-LLM expects",
            )
        # Every other value against the type TensorRT-LLM declares for it (the key set's `types`, read from
        # its llm_args at the pinned release), coerced as its pydantic models coerce YAML ("8" is an int).
        # Values DYN108 already names (an unknown key, a value outside an enum) are not reported twice.
        version = graph.profile.keyset
        reported = {dotted for dotted, _, _ in p.engine.type_errors}
        reported |= {".".join(problem.path) for problem in check_engine_config(p.engine.config, version)}
        for path, reason in value_problems(version, p.engine.config):
            dotted = ".".join(path)
            if dotted in reported or any(dotted.startswith(r + ".") for r in reported):
                continue
            shown = repr(p.engine.get(dotted))
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            yield finding(
                f"engine `{dotted}: {shown}` is refused by TensorRT-LLM {version}: {reason}; "
                "the worker would exit at start-up",
                _source_path(p, dotted),
                "give the value the type TensorRT-LLM declares for this key",
            )


def _source_path(p: PoolInfo, dotted: str) -> YamlPath:
    """Where the spec sets ``dotted``: its own source, else the mapping engine.extra gave it in."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        source = p.engine.sources.get(".".join(parts[:end]))
        if source is not None and source.path:
            return tuple(source.path) + tuple(parts[end:])
    return p.path + ("engine", "extra") + tuple(parts)


def _lost(graph: DeploymentGraph, kinds: tuple[str, ...]) -> Iterator[tuple[PoolInfo, LostValue, YamlPath]]:
    for p in graph.pools():
        for lost in lost_values(p.engine.config, graph.profile.keyset):
            if lost.kind in kinds:
                yield p, lost, _source_path(p, lost.pair.overrides)


@rule("DYN128", "engine-key-overwritten")
def engine_key_overwritten(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """An engine value the deployed TensorRT-LLM overwrites with another key's (the key sets' `overrides`)."""
    version = graph.profile.keyset
    for p, lost, path in _lost(graph, ("overwritten", "dropped")):
        pair = lost.pair
        if lost.kind == "dropped":
            effect = f"drops it and keeps `{pair.key}: {lost.kept}`"
        elif is_set(lookup(p.engine.config, pair.key)):
            effect = f"overwrites it with `{pair.key}: {lost.kept}`"
        else:
            effect = f"overwrites it with `{pair.key}`'s default, {lost.kept}"
        yield finding(
            f"`{pair.overrides}: {lost.value}` has no effect: TensorRT-LLM {version} {effect}. {pair.fact}",
            path,
            f"give the value once, as `{pair.key}`{_spec_field(pair.key)}, and remove `{pair.overrides}`",
        )


@rule("DYN129", "engine-key-deprecated-alias")
def engine_key_deprecated_alias(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """An engine key the deployed TensorRT-LLM reads only as a deprecated alias of another."""
    version = graph.profile.keyset
    for _, lost, path in _lost(graph, ("deprecated",)):
        pair = lost.pair
        yield finding(
            f"`{pair.overrides}` is a deprecated spelling in TensorRT-LLM {version}: it is read into `{pair.key}` "
            f"with a deprecation warning. {pair.fact}",
            path,
            f"write `{pair.key}`{_spec_field(pair.key)} instead",
            severity="warning",
        )


# The spec fields dyncc writes an engine key from, named in the hints above.
_SPEC_FIELDS = {
    "speculative_config.max_draft_len": "speculative.draft_len",
    "speculative_config.num_nextn_predict_layers": "speculative.draft_len",
    "max_batch_size": "engine.max_batch_size",
    "max_num_tokens": "engine.max_num_tokens",
    "max_seq_len": "engine.max_seq_len",
}


def _spec_field(key: str) -> str:
    field = _SPEC_FIELDS.get(key)
    return f" (the spec's `{field}` writes it)" if field else ""
