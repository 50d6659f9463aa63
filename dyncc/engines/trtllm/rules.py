"""TensorRT-LLM's own rules: engine configs hold the keys, values and types the deployed TensorRT-LLM accepts
(DYN108, DYN114), passthrough values that override the spec's or that TensorRT-LLM itself writes over
(DYN109, DYN128, DYN129), CUDA graphs, MoE load balancing and two-model Eagle as the deployed version
runs them (DYN119-122), and the TensorRT-LLM version itself (DYN705, DYN707). The compiler runs them with
its own rules whenever TensorRT-LLM's engine configs are written."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from dyncc.diagnostics import Diagnostic, YamlPath
from dyncc.engines.base import EngineRule, Graph, GraphPool, ResolvedConfig, finding, rule
from dyncc.engines.trtllm.engine_config import OWNED_KEYS
from dyncc.engines.trtllm.keys import KeyProblem, accepted_keys, accepts, check_engine_config, speculative_form
from dyncc.engines.trtllm.overrides import LostValue, effective_value, is_set, lookup, lost_values
from dyncc.engines.trtllm.release import TrtllmRelease, keyset_for, pin
from dyncc.engines.trtllm.types import typed_version, value_problems
from dyncc.releases import releases

RULES: list[EngineRule] = []


def _known_release(graph: Graph) -> bool:
    """The spec's Dynamo version has a release file (DYN701 reports one that has not; the newest stands in)."""
    return graph.release.dynamo == graph.spec.dynamo.version


def release_with(dotted: str, value: object, but_not: TrtllmRelease) -> tuple[str, str] | None:
    """(label, Dynamo version) of the newest other release whose own key set accepts ``dotted`` (with
    ``value``), to name in a hint (releases checked against a nearest set are not named: their TensorRT-LLM
    was not read)."""
    seen: set[str] = {but_not.keyset}
    for rel in reversed(releases()):
        version = pin(rel)
        keyset = keyset_for(version)
        if keyset in seen or keyset != version:
            continue
        seen.add(keyset)
        if accepts(keyset, dotted, value):
            return f"Dynamo {rel.dynamo} (TensorRT-LLM {version})", rel.dynamo
    return None


@rule(RULES, "DYN108", "engine-keys-accepted")
def engine_keys_accepted(graph: Graph) -> Iterator[Diagnostic]:
    """Engine YAMLs hold only keys and values the deployed TensorRT-LLM accepts; owned keys come from pool fields."""
    for p in graph.pools():
        extra_path = p.path + ("engine", "extra")
        for key in p.engine.owned_conflicts:
            yield finding(
                f"`{key}` cannot be passed through engine.extra",
                extra_path + (key,),
                f"set it with {OWNED_KEYS[key]}: every target and the placement read that one value",
            )
        for problem in check_engine_config(p.engine.config, graph.engine_release.keyset):
            dotted = ".".join(problem.path)
            source = p.engine.sources.get(dotted)
            path = source.path if source and source.path else extra_path + problem.path
            value = p.engine.get(dotted) if problem.kind == "value" else None
            found = finding(problem.message, path, _key_hint(graph, problem, value))
            yield msgspec.structs.replace(found, about_key=problem.kind == "key")


def _key_hint(graph: Graph, problem: KeyProblem, value: object) -> str:
    """What to do: the close spelling, why a value is gone and what replaced it, the release that has it."""
    parts = []
    if problem.suggestion:
        parts.append(f"did you mean `{problem.suggestion}`?")
    if problem.reason:
        parts.append(problem.reason)
    other = release_with(".".join(problem.path), value, graph.engine_release)
    if other is not None:
        parts.append(f"{other[0]} accepts it (`--dynamo-version {other[1]}`)")
    if not parts:
        parts.append(f"see TensorRT-LLM {graph.engine_release.keyset}'s llm_args for the accepted keys")
    return "; ".join(parts)


@rule(RULES, "DYN109", "extra-overrides")
def extra_overrides_are_reported(graph: Graph) -> Iterator[Diagnostic]:
    """A passthrough engine key that overrides a value dyncc set is reported, never silent."""
    for p in graph.pools():
        for dotted, ours, theirs in p.engine.overrides:
            yield finding(
                f"engine.extra sets `{dotted}: {theirs}` over `{ours}` from the spec",
                p.path + ("engine", "extra") + tuple(dotted.split(".")),
                "prefer the first-class spec field, so every pool and target agrees",
                severity="warning",
            )


@rule(RULES, "DYN114", "extra-value-types")
def extra_value_types(graph: Graph) -> Iterator[Diagnostic]:
    """Engine values have the types TensorRT-LLM declares (those dyncc reads itself are not even merged)."""
    for p in graph.pools():
        for dotted, value, expected in p.engine.type_errors:
            shown = _shown(value)
            yield finding(
                f"engine.extra `{dotted}` is {shown} ({type(value).__name__}); it must be {expected}",
                p.path + ("engine", "extra") + tuple(dotted.split(".")),
                "dyncc derives flags and checks from this key: give it the type TensorRT-LLM expects",
            )
        # Every other value against the type TensorRT-LLM declares for it (the key set's `types`, read from
        # its llm_args at the pinned release), coerced as its pydantic models coerce YAML ("8" is an int).
        # Values DYN108 already names (an unknown key, a value outside an enum) are not reported twice. A key
        # set whose types were not read is checked against the nearest typed one, as a warning: the type of a
        # key rarely changes between releases, but that version's own declaration was not read.
        version = graph.engine_release.keyset
        typed = typed_version(version)
        if typed is None:
            continue
        reported = {dotted for dotted, _, _ in p.engine.type_errors}
        reported |= {".".join(problem.path) for problem in check_engine_config(p.engine.config, version)}
        for path, reason in value_problems(typed, p.engine.config):
            dotted = ".".join(path)
            if dotted in reported or any(dotted.startswith(r + ".") for r in reported):
                continue
            shown = _shown(p.engine.get(dotted))
            if typed == version:
                yield finding(
                    f"engine `{dotted}: {shown}` is refused by TensorRT-LLM {version}: {reason}; "
                    "the worker would exit at start-up",
                    _source_path(p, dotted),
                    "give the value the type TensorRT-LLM declares for this key",
                )
                continue
            yield finding(
                f"engine `{dotted}: {shown}`: TensorRT-LLM {typed} refuses it ({reason}); dyncc has not read "
                f"the types of {version}, whose keys check this spec, and the worker would likely exit at start-up",
                _source_path(p, dotted),
                f"give the value the type TensorRT-LLM {typed} declares for this key",
                severity="warning",
            )


def _shown(value: object) -> str:
    """A value as a message quotes it: its repr, cut at 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _source_path(p: GraphPool, dotted: str) -> YamlPath:
    """Where the spec sets ``dotted``: its own source, else the mapping engine.extra gave it in."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        source = p.engine.sources.get(".".join(parts[:end]))
        if source is not None and source.path:
            return tuple(source.path) + tuple(parts[end:])
    return p.path + ("engine", "extra") + tuple(parts)


def _lost(graph: Graph, kinds: tuple[str, ...]) -> Iterator[tuple[GraphPool, LostValue, YamlPath]]:
    for p in graph.pools():
        for lost in lost_values(p.engine.config, graph.engine_release.keyset):
            if lost.kind in kinds:
                yield p, lost, _source_path(p, lost.pair.overrides)


@rule(RULES, "DYN128", "engine-key-overwritten")
def engine_key_overwritten(graph: Graph) -> Iterator[Diagnostic]:
    """An engine value the deployed TensorRT-LLM overwrites with another key's (the key sets' `overrides`)."""
    version = graph.engine_release.keyset
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


@rule(RULES, "DYN129", "engine-key-deprecated-alias")
def engine_key_deprecated_alias(graph: Graph) -> Iterator[Diagnostic]:
    """An engine key the deployed TensorRT-LLM reads only as a deprecated alias of another."""
    version = graph.engine_release.keyset
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


def _draft_len(engine: ResolvedConfig, trtllm_version: str) -> int:
    """Draft tokens per request the engine config asks for, as the deployed TensorRT-LLM reads them (1.1.0rc5
    copies MTP's num_nextn_predict_layers over max_draft_len: :mod:`dyncc.engines.trtllm.overrides`)."""
    if engine.get("speculative_config.decoding_type") is None:
        return 0
    value = effective_value(engine.config, "speculative_config.max_draft_len", trtllm_version)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@rule(RULES, "DYN119", "cuda-graph-sizes-over-token-budget")
def cuda_graph_sizes_fit_the_token_budget(graph: Graph) -> Iterator[Diagnostic]:
    """CUDA-graph batch sizes fit min(max_batch_size, max_num_tokens / (1 + draft_len)); TRT-LLM drops the rest."""
    for p in graph.pools():
        cfg = p.engine.get("cuda_graph_config")
        tokens = p.engine.get("max_num_tokens")
        if not isinstance(cfg, dict) or not isinstance(tokens, int):
            continue
        sizes = cfg.get("batch_sizes")
        top = max(sizes) if sizes else cfg.get("max_batch_size")
        if not isinstance(top, int):
            continue
        draft = _draft_len(p.engine, graph.engine_release.keyset)
        cap = tokens // (1 + draft)
        batch = p.engine.get("max_batch_size")
        if isinstance(batch, int) and batch <= cap:
            continue  # max_batch_size binds first: DYN110 speaks of that
        if top > cap:
            per_request = f"(1 + {draft} draft tokens per request)" if draft else "(one token per request)"
            yield finding(
                f"CUDA graphs captured up to batch {top}, but max_num_tokens {tokens} {per_request} allows "
                f"batches of {cap} at most: TensorRT-LLM drops the larger graphs at start-up (with padding on, "
                f"it pads to {cap} instead)",
                p.path + ("engine", "cuda_graphs"),
                f"capture sizes up to {cap}, or raise max_num_tokens to {top * (1 + draft)}",
                severity="warning",
            )


@rule(RULES, "DYN120", "moe-backend-has-load-balancer")
def load_balancer_needs_a_backend_that_has_one(graph: Graph) -> Iterator[Diagnostic]:
    """The MoE load balancer runs only on backends of the deployed TensorRT-LLM that implement it."""
    without = accepted_keys(graph.engine_release.keyset).get("moe_backends_without_load_balancer", [])
    for p in graph.pools():
        backend = p.engine.get("moe_config.backend")
        if backend not in without or p.engine.get("moe_config.load_balancer") is None:
            continue
        source = p.engine.sources.get("moe_config.backend")
        yield finding(
            f"the MoE load balancer does not run on the {backend} backend of TensorRT-LLM "
            f"{graph.engine_release.version}",
            source.path if source and source.path else p.path + ("moe", "backend"),
            "use CUTLASS, TRTLLM, CUTEDSL or DEEPGEMM with a load balancer, or remove load_balancer",
        )


@rule(RULES, "DYN121", "cuda-graph-sizes-or-max")
def cuda_graph_sizes_or_max_for_1_1(graph: Graph) -> Iterator[Diagnostic]:
    """TensorRT-LLM 1.1.0rc5 refuses CUDA-graph batch_sizes together with a max_batch_size it did not generate."""
    why = accepted_keys(graph.engine_release.keyset).get("cuda_graph_sizes_and_max_exclusive")
    if not why:
        return
    for p in graph.pools():
        cfg = p.engine.get("cuda_graph_config")
        if isinstance(cfg, dict) and cfg.get("batch_sizes") and cfg.get("max_batch_size"):
            source = p.engine.sources.get("cuda_graph_config.max_batch_size")
            yield finding(
                f"CUDA-graph batch_sizes and max_batch_size both set: TensorRT-LLM "
                f"{graph.engine_release.version} (Dynamo {graph.engine_release.dynamo_version}) fails at start-up unless "
                "batch_sizes is exactly the list it generates",
                source.path if source and source.path else p.path + ("engine", "cuda_graphs"),
                "give batch_sizes alone (max_batch_size becomes their largest), or max_batch_size alone",
            )


@rule(RULES, "DYN122", "two-model-eagle-honoured")
def two_model_eagle_is_honoured(graph: Graph) -> Iterator[Diagnostic]:
    """`speculative.one_model: false` (two-model Eagle) only where the deployed TensorRT-LLM honours it."""
    sp, view = graph.spec.speculative, graph.engine_release
    if sp.mode not in ("eagle", "eagle3") or sp.one_model:
        return
    if speculative_form(view.keyset, "eagle").get("two_model_honoured", True):
        return
    yield finding(
        f"one_model: false, but TensorRT-LLM {view.version} (Dynamo {view.dynamo_version}) sets "
        "eagle3_one_model back to true with only a log warning: two-model Eagle would not run",
        ("speculative", "one_model"),
        "remove one_model (one-model Eagle3), or deploy Dynamo 0.5.1 (TensorRT-LLM 1.1.0rc5), which honours it",
    )


@rule(RULES, "DYN707", "nearest-engine-key-set")
def engine_keys_from_the_nearest_set(graph: Graph) -> Iterator[Diagnostic]:
    """Where dyncc has no key set of the pinned TensorRT-LLM, engine configs are checked against the nearest."""
    view = graph.engine_release
    if not _known_release(graph) or view.keyset_exact or not graph.pools():
        return
    yield finding(
        f"Dynamo {view.dynamo_version} pins TensorRT-LLM {view.version}, whose engine keys dyncc "
        f"does not carry: engine configs are checked against TensorRT-LLM {view.keyset}'s key set, the "
        "nearest it has; a key added or removed in between is not caught",
        ("dynamo", "version"),
        "check engine.extra keys against that release's llm_args; or deploy a release whose key set dyncc "
        "carries exactly",
        severity="warning",
    )


@rule(RULES, "DYN705", "trtllm-version-is-pinned")
def trtllm_version_is_the_pinned_one(graph: Graph) -> Iterator[Diagnostic]:
    """`dynamo.trtllm`, when given, is the TensorRT-LLM the Dynamo version ships (its key set is the one checked)."""
    spec, view = graph.spec, graph.engine_release
    wanted = spec.dynamo.trtllm
    if wanted is None or not _known_release(graph) or wanted == view.version:
        return
    yield finding(
        f"dynamo.trtllm {wanted}, but Dynamo {view.dynamo_version} ships TensorRT-LLM {view.version}: "
        "its engine configs are written and checked for that one",
        ("dynamo", "trtllm"),
        f"remove dynamo.trtllm, or set it to {view.version}",
    )
