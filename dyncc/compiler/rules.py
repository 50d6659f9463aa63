"""Validation rules over the deployment graph.

Each rule is a small function registered with its stable code; it reads the graph (never the YAML)
and yields diagnostics with the spec path at fault. The decorator stamps the rule's code on what it
yields, so a rule cannot report under another rule's code. Codes are stable: CI pipelines match on
them. DYN0xx are load errors (``dyncc.spec``); 1xx parallelism and engine; 2xx disaggregation;
3xx routing; 4xx topology and placement; 5xx targets; 6xx planner.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Iterator

import networkx as nx

from dyncc.compiler.engine import OWNED_KEYS
from dyncc.compiler.engine_keys import check_engine_config
from dyncc.compiler.graph import FRONTEND, PoolInfo, edges_of_kind, pool, pools, routed_pools, spec_of
from dyncc.compiler.placement import MAX_GPUS_PER_WORKER, MAX_TOTAL_GPUS, nodes_per_worker
from dyncc.compiler.profiles import DYNAMO_1, PROFILES, profile_for
from dyncc.diagnostics import Diagnostic, Severity


@dataclasses.dataclass(frozen=True)
class Rule:
    code: str
    name: str
    summary: str
    check: Callable[[nx.DiGraph], Iterable[Diagnostic]]


RULES: list[Rule] = []


def rule(code: str, name: str) -> Callable:
    def register(fn: Callable[[nx.DiGraph], Iterable[Diagnostic]]) -> Callable:
        def stamped(graph: nx.DiGraph) -> Iterator[Diagnostic]:
            for found in fn(graph):
                yield dataclasses.replace(found, code=code)

        RULES.append(Rule(code, name, (fn.__doc__ or "").strip().splitlines()[0], stamped))
        return fn

    return register


def finding(message: str, path: tuple, hint: str | None = None, severity: Severity = "error") -> Diagnostic:
    return Diagnostic("", message, path=path, hint=hint, severity=severity)


def run_rules(graph: nx.DiGraph) -> list[Diagnostic]:
    return [d for r in RULES for d in r.check(graph)]


def _facts(graph: nx.DiGraph):
    return graph.graph["facts"]


def _is_moe(graph: nx.DiGraph, info: PoolInfo) -> bool:
    return bool(_facts(graph).moe) or info.spec.expert_parallel > 1


# --- 1xx: parallelism, speculation and engine keys ----------------------------------------------


@rule("DYN101", "gpus-per-worker")
def gpus_per_worker_is_tp_times_pp(graph):
    """A worker's GPU count is tensor_parallel x pipeline_parallel; attention DP adds none."""
    for p in pools(graph):
        declared = p.spec.gpus_per_worker
        if declared is not None and declared != p.gpus_per_worker:
            hint = f"a {p.role} worker with TP={p.spec.tensor_parallel} PP={p.spec.pipeline_parallel} uses {p.gpus_per_worker} GPUs"
            if p.spec.attention_dp and declared == p.gpus_per_worker * p.spec.tensor_parallel:
                hint += "; attention DP runs inside the TP ranks and adds no GPUs"
            yield finding(
                f"gpus_per_worker is {declared}, but TP x PP = {p.gpus_per_worker}", p.path + ("gpus_per_worker",), hint
            )


@rule("DYN102", "moe-parallel-product")
def moe_parallel_covers_tp(graph):
    """For MoE models, expert_parallel x moe_tensor_parallel must equal tensor_parallel."""
    for p in pools(graph):
        if not _is_moe(graph, p):
            continue
        ep = p.spec.expert_parallel
        moe_tp = p.engine.get("moe_tensor_parallel_size")
        if ep * moe_tp != p.spec.tensor_parallel:
            field = "moe_tensor_parallel" if p.spec.moe_tensor_parallel else "expert_parallel"
            yield finding(
                f"expert_parallel ({ep}) x moe_tensor_parallel ({moe_tp}) = {ep * moe_tp}, "
                f"but tensor_parallel is {p.spec.tensor_parallel}",
                p.path + (field,),
                "TRT-LLM splits the TP ranks between expert and tensor parallelism for MoE layers: "
                "choose expert_parallel dividing tensor_parallel",
            )


@rule("DYN103", "expert-parallel-needs-moe")
def expert_parallel_only_for_moe(graph):
    """expert_parallel > 1 only makes sense for a mixture-of-experts model."""
    facts = _facts(graph)
    if facts.moe is not False:
        return
    for p in pools(graph):
        if p.spec.expert_parallel > 1:
            yield finding(
                f"expert_parallel is {p.spec.expert_parallel}, but the model is dense (moe: false, "
                f"from {facts.source.get('moe', 'spec')})",
                p.path + ("expert_parallel",),
                "remove expert_parallel, or correct model.moe / model.num_experts",
            )


@rule("DYN104", "attention-dp-needs-tp")
def attention_dp_needs_tp(graph):
    """Attention DP splits attention across the TP ranks; with TP=1 it does nothing."""
    for p in pools(graph):
        if p.spec.attention_dp and p.spec.tensor_parallel == 1:
            yield finding(
                "attention_dp is on with tensor_parallel 1: there is nothing to split",
                p.path + ("attention_dp",),
                "raise tensor_parallel, or turn attention_dp off",
                severity="warning",
            )


@rule("DYN105", "mtp-needs-mtp-layers")
def mtp_needs_mtp_layers(graph):
    """MTP speculative decoding needs a checkpoint with MTP (next-n prediction) layers."""
    spec, facts = spec_of(graph), _facts(graph)
    if spec.speculative.mode == "mtp" and facts.mtp_layers == 0:
        yield finding(
            f"speculative mode mtp, but the model has no MTP layers (from {facts.source.get('mtp_layers', 'spec')})",
            ("speculative", "mode"),
            "use eagle3 with a draft model, or a checkpoint with MTP layers "
            "(e.g. DeepSeek-R1: num_nextn_predict_layers 1)",
        )


@rule("DYN106", "eagle-needs-draft-model")
def eagle_needs_draft_model(graph):
    """Eagle/Eagle3 needs a draft model and a draft length > 0."""
    sp = spec_of(graph).speculative
    if sp.mode not in ("eagle", "eagle3"):
        return
    if sp.draft_model is None:
        yield finding(
            f"speculative mode {sp.mode} needs a draft model",
            ("speculative", "mode"),
            "set speculative.draft_model to the Eagle3 draft checkpoint (HF id or directory)",
        )
    if sp.draft_len is None:
        yield finding(
            f"speculative mode {sp.mode} needs draft_len > 0",
            ("speculative", "mode"),
            "set speculative.draft_len (e.g. 3)",
        )


@rule("DYN107", "experts-divisible-by-ep")
def experts_divisible_by_ep(graph):
    """Each expert-parallel rank holds the same number of experts."""
    experts = _facts(graph).num_experts
    if experts is None:
        return
    for p in pools(graph):
        ep = p.spec.expert_parallel
        if ep > 1 and experts % ep:
            yield finding(
                f"{experts} experts do not divide over expert_parallel {ep}",
                p.path + ("expert_parallel",),
                f"choose expert_parallel dividing {experts}",
            )


@rule("DYN108", "engine-keys-accepted")
def engine_keys_accepted(graph):
    """Engine YAMLs hold only keys and values TensorRT-LLM 1.3.0rc29 accepts; owned keys come from pool fields."""
    for p in pools(graph):
        extra_path = p.path + ("engine", "extra")
        for key in p.engine.owned_conflicts:
            yield finding(
                f"`{key}` cannot be passed through engine.extra",
                extra_path + (key,),
                f"set it with {OWNED_KEYS[key]}: every target and the placement read that one value",
            )
        overrides = graph.graph["profile"].engine_enum_overrides()
        for key_path, problem, suggestion in check_engine_config(p.engine.config, overrides):
            source = p.engine.sources.get(".".join(key_path))
            path = source.path if source and source.path else extra_path + key_path
            yield finding(
                problem,
                path,
                f"did you mean `{suggestion}`?" if suggestion else "see TensorRT-LLM's llm_args for the accepted keys",
            )


@rule("DYN109", "extra-overrides")
def extra_overrides_are_reported(graph):
    """A passthrough engine key that overrides a value dyncc set is reported, never silent."""
    for p in pools(graph):
        for dotted, ours, theirs in p.engine.overrides:
            yield finding(
                f"engine.extra sets `{dotted}: {theirs}` over `{ours}` from the spec",
                p.path + ("engine", "extra") + tuple(dotted.split(".")),
                "prefer the first-class spec field, so every pool and target agrees",
                severity="warning",
            )


@rule("DYN110", "cuda-graph-batch-sizes")
def cuda_graph_sizes_consistent(graph):
    """CUDA-graph max_batch_size equals max(batch_sizes) when both are given, and fits the engine's batch."""
    for p in pools(graph):
        cfg = p.engine.get("cuda_graph_config")
        if not isinstance(cfg, dict):
            continue
        sizes, largest = cfg.get("batch_sizes"), cfg.get("max_batch_size")
        path = p.path + ("engine", "cuda_graphs")
        if sizes and largest is not None and largest != max(sizes):
            yield finding(
                f"cuda_graphs.max_batch_size {largest} differs from max(batch_sizes) {max(sizes)}",
                path + ("max_batch_size",),
                "give one of them, or make them agree",
            )
        top = max(sizes) if sizes else largest
        limit = p.engine.get("max_batch_size")
        if top is not None and limit is not None and top > limit:
            yield finding(
                f"CUDA graphs captured up to batch {top}, above max_batch_size {limit}",
                path,
                "graphs above max_batch_size are never used; lower them",
                severity="warning",
            )


@rule("DYN111", "speculative-fields-without-mode")
def speculative_fields_match_mode(graph):
    """Draft settings without a speculative mode (or a draft model for MTP) would be silently ignored."""
    sp = spec_of(graph).speculative
    if sp.mode == "none" and (sp.draft_len is not None or sp.draft_model is not None):
        yield finding(
            "draft settings given, but speculative.mode is none",
            ("speculative",),
            "set speculative.mode (mtp, eagle3), or remove draft_len/draft_model",
        )
    if sp.mode == "mtp" and sp.draft_model is not None:
        yield finding(
            "MTP drafts with the model's own MTP layers; draft_model is not used",
            ("speculative", "draft_model"),
            "remove draft_model, or use mode eagle3",
        )


@rule("DYN112", "moe-slots-divisible-by-ep")
def load_balancer_slots_divisible_by_ep(graph):
    """The MoE load balancer's expert slots spread evenly over the expert-parallel ranks."""
    for p in pools(graph):
        slots = p.engine.get("moe_config.load_balancer.num_slots")
        ep = p.spec.expert_parallel
        if isinstance(slots, int) and slots % ep:
            yield finding(
                f"moe_config.load_balancer.num_slots {slots} is not a multiple of expert_parallel {ep}",
                p.path + ("engine", "extra", "moe_config", "load_balancer", "num_slots"),
                f"use a multiple of {ep} (e.g. {((slots // ep) + 1) * ep})",
            )


# Words of an env name that say it holds a secret, wherever they sit in the name (HF_TOKEN_VALUE,
# GITHUB_PAT, dbPassword): the name is split on `_`, `-` and lower-to-upper case changes.
SECRET_WORDS = frozenset(
    {"TOKEN", "TOKENS", "SECRET", "SECRETS", "PASSWORD", "PASSWORDS", "PASSWD", "PASS", "PWD", "PASSPHRASE",
     "KEY", "KEYS", "APIKEY", "CREDENTIAL", "CREDENTIALS", "CREDS", "PAT", "AUTH", "PRIVATE", "COOKIE"}
)  # fmt: skip
_NAME_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# Shapes of well-known credentials, so that a secret under an innocent name is caught too.
SECRET_VALUE_SHAPES = (
    ("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{20,}")),
    ("an OpenAI/Anthropic-style API key", re.compile(r"\bsk-[A-Za-z0-9_-]{16,}")),
    ("a GitHub token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")),
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a URL with a password", re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")),
)
_HIGH_ENTROPY_CANDIDATE = re.compile(r"[A-Za-z0-9+/=_-]{32,}")


def secret_words(name: str) -> set[str]:
    return {w.upper() for w in _NAME_WORDS.findall(name)} & SECRET_WORDS


def _entropy_bits_per_char(text: str) -> float:
    counts = {c: text.count(c) for c in set(text)}
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def secret_shape(value: str) -> str | None:
    """What kind of credential ``value`` looks like, or None."""
    for what, shape in SECRET_VALUE_SHAPES:
        if shape.search(value):
            return what
    for run in _HIGH_ENTROPY_CANDIDATE.findall(value):
        mixed = sum(bool(re.search(cls, run)) for cls in ("[a-z]", "[A-Z]", "[0-9]")) >= 3
        # Random 32+ character keys over ~64 symbols carry > 4.5 bits per character; words and paths far less.
        if mixed and _entropy_bits_per_char(run) > 4.5:
            return "a long random string (an API key?)"
    return None


_SECRET_HINT = (
    "pass secrets by reference: k8s.hf_token_secret (a Secret), or the job's environment "
    "(exported before launch.sh / sbatch)"
)


@rule("DYN113", "secrets-by-reference")
def secrets_only_by_reference(graph):
    """Secrets never sit in the spec: it is committed, and its values land in scripts and manifests."""
    for p in pools(graph):
        for name, value in p.spec.env.items():
            words, shape = secret_words(name), secret_shape(value)
            if words or shape:
                why = f"its name says {'/'.join(sorted(words))}" if words else f"its value looks like {shape}"
                yield finding(
                    f"env {name} looks like a secret ({why}); its value would be written into generated files",
                    p.path + ("env", name),
                    _SECRET_HINT,
                )
    model = spec_of(graph).model
    for field in ("path", "served_name"):
        value = getattr(model, field)
        shape = secret_shape(value) if value else None
        if shape:
            yield finding(
                f"model.{field} holds what looks like {shape}; it would be written into generated files",
                ("model", field),
                "name the model without credentials; give the token by reference (k8s.hf_token_secret, or "
                "HF_TOKEN exported before launch)",
            )


@rule("DYN114", "extra-value-types")
def extra_value_types(graph):
    """engine.extra values of keys dyncc reads (block size, batch sizes, CUDA graphs, ...) have the right type."""
    for p in pools(graph):
        for dotted, value, expected in p.engine.type_errors:
            shown = repr(value)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            yield finding(
                f"engine.extra `{dotted}` is {shown} ({type(value).__name__}); it must be {expected}",
                p.path + ("engine", "extra") + tuple(dotted.split(".")),
                "dyncc derives flags and checks from this key: give it the type TensorRT-LLM expects",
            )


@rule("DYN115", "name-not-an-option")
def names_not_options(graph):
    """Values passed as command-line arguments do not start with `-` (the worker would read an option)."""
    model = spec_of(graph).model
    for field in ("path", "served_name"):
        value = getattr(model, field)
        if value and value.startswith("-"):
            yield finding(
                f"model.{field} {value[:40]!r} starts with '-': the worker's argument parser would read it as "
                f"an option, not as the value of {'--model-path' if field == 'path' else '--served-model-name'}",
                ("model", field),
                "use a name that starts with a letter or digit (a local path can start with ./)",
            )


@rule("DYN118", "relative-model-path-exists")
def relative_model_path_exists(graph):
    """A model.path written as a relative or home path (./, ../, ~) names a directory beside the spec."""
    path = spec_of(graph).model.path
    if _facts(graph).local_dir is None and path.startswith(("./", "../", "~")):
        yield finding(
            f"model.path {path[:80]!r} looks like a local path, but there is no such directory "
            + (
                "(`~` is not expanded: no shell reads the spec)"
                if path.startswith("~")
                else "relative to the spec file"
            ),
            ("model", "path"),
            "relative paths are read from the spec file's directory and written absolute; give an existing "
            "directory, an absolute path, or a Hugging Face id (org/name)",
        )


# Linux refuses (E2BIG) any single argument or environment string over MAX_ARG_STRLEN (32 pages), and
# all of them together over ARG_MAX (usually 2 MiB, shared with the environment the worker inherits).
MAX_ARG_STRLEN = 131_072
MAX_WORKER_ARGS_BYTES = 1_048_576


def _arg_bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass")) + 1  # + the terminating NUL


@rule("DYN116", "arguments-fit-exec")
def arguments_fit_exec(graph):
    """Each worker's arguments and environment fit what Linux passes to a new process."""
    model = spec_of(graph).model
    words = {("model", "path"): model.path, ("model", "served_name"): model.name}
    for path, word in words.items():
        if _arg_bytes(word) > MAX_ARG_STRLEN:
            yield finding(
                f"{'.'.join(path)} is {_arg_bytes(word)} bytes: Linux refuses a single argument over "
                f"{MAX_ARG_STRLEN} bytes (MAX_ARG_STRLEN), so no worker could start",
                path if path[1] == "path" or model.served_name else ("model", "path"),
                "shorten it",
            )
    shared = sum(_arg_bytes(w) for w in words.values())
    for p in pools(graph):
        env_bytes = 0
        for name, value in p.spec.env.items():
            size = _arg_bytes(f"{name}={value}")
            env_bytes += size
            if size > MAX_ARG_STRLEN:
                yield finding(
                    f"env {name} is {size} bytes: Linux refuses an environment string over {MAX_ARG_STRLEN} bytes",
                    p.path + ("env", name),
                    "pass large data as a file, not an environment variable",
                )
        if shared + env_bytes > MAX_WORKER_ARGS_BYTES:
            yield finding(
                f"a {p.role} worker's arguments and environment take {shared + env_bytes} bytes; dyncc keeps them "
                f"under {MAX_WORKER_ARGS_BYTES} (Linux's ARG_MAX, usually 2 MiB, also holds the inherited environment)",
                p.path + ("env",),
                "pass large data as a file, not environment variables",
            )


# C0 controls but tab and newline (both legitimate in an environment value), DEL and C1 controls: NUL
# cannot be passed at all (exec strings end at NUL), the others rewrite the terminal of whoever prints
# the value (ESC sequences) or are lost or changed in YAML and manifests.
_ENV_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@rule("DYN117", "env-value-printable")
def env_values_printable(graph):
    """Environment values hold no NUL, escape or other control characters (tab and newline are fine)."""
    for p in pools(graph):
        for name, value in p.spec.env.items():
            found = _ENV_CONTROL.search(value)
            if found:
                yield finding(
                    f"env {name} holds the control character U+{ord(found.group()):04X} at offset {found.start()}"
                    + (": no process can receive a NUL in its environment" if found.group() == "\0" else ""),
                    p.path + ("env", name),
                    "remove control characters from the value (tab and newline are allowed)",
                )


# --- 2xx: disaggregation ------------------------------------------------------------------------


@rule("DYN201", "disagg-needs-both-pools")
def disagg_needs_prefill_and_decode(graph):
    """Disaggregated serving needs both a prefill and a decode pool, and no agg pool beside them."""
    have = {p.role for p in pools(graph)}
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


def _pair(graph) -> tuple[PoolInfo, PoolInfo] | None:
    prefill, decode = pool(graph, "prefill"), pool(graph, "decode")
    return (prefill, decode) if prefill and decode else None


def _pair_must_match(graph, dotted: str, what: str, hint: str):
    pair = _pair(graph)
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
            hint + " (nothing in TRT-LLM checks the pair: a mismatch shows up as hangs or garbage)",
        )


@rule("DYN202", "transceiver-backend-matches")
def transceiver_backend_matches(graph):
    """Prefill and decode use the same explicit KV-cache transceiver backend."""
    pair = _pair(graph)
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
def tokens_per_block_matches(graph):
    """Prefill and decode use the same KV-cache tokens per block."""
    yield from _pair_must_match(
        graph,
        "kv_cache_config.tokens_per_block",
        "KV tokens per block",
        "give both pools the same engine.tokens_per_block",
    )


@rule("DYN204", "kv-dtype-matches")
def kv_dtype_matches(graph):
    """Prefill and decode store the KV cache in the same dtype."""
    yield from _pair_must_match(
        graph, "kv_cache_config.dtype", "the KV cache dtype", "give both pools the same engine.kv_cache_dtype"
    )


@rule("DYN205", "speculative-config-matches")
def speculative_config_matches(graph):
    """Prefill and decode share the speculative config (draft layers change the KV layout)."""
    yield from _pair_must_match(
        graph,
        "speculative_config",
        "the speculative config",
        "declare speculation once in `speculative:`, not in engine.extra",
    )


@rule("DYN206", "transfer-backend-default")
def default_backend_is_ambiguous(graph):
    """The DEFAULT transceiver backend means different things across TRT-LLM versions."""
    spec = spec_of(graph)
    if _pair(graph) and spec.kv_transfer.backend == "DEFAULT":
        yield finding(
            "kv_transfer.backend DEFAULT resolves from environment variables and changed across "
            "TRT-LLM versions (UCX before, NIXL in 1.3)",
            ("kv_transfer", "backend"),
            "name the backend: NIXL (Dynamo 1.6's default) or UCX",
            severity="warning",
        )


# --- 3xx: routing ---------------------------------------------------------------------------------


@rule("DYN301", "kv-router-needs-events")
def kv_router_gets_events(graph):
    """The KV router (with events) needs KV events from every pool it routes."""
    router = graph.nodes[FRONTEND]["router"]
    if router.mode != "kv" or not router.kv_events:
        return
    publishers = {u for u, _ in edges_of_kind(graph, "kv_events")}
    for node in routed_pools(graph):
        p = graph.nodes[node]["pool"]
        if node not in publishers:
            yield finding(
                f"the KV router routes the {p.role} pool, but its publish_kv_events is false",
                p.path + ("publish_kv_events",),
                "remove publish_kv_events: false, or set router.kv_events: false (approximate routing)",
            )
        elif p.publish_kv_events_source.kind == "rule":
            yield finding(
                f"KV events turned on for the {p.role} pool (--publish-kv-events): the KV router needs them",
                ("router", "mode"),
                severity="info",
            )


@rule("DYN302", "router-block-size")
def router_block_size_matches(graph):
    """The KV router's block size equals the tokens per block of every pool it routes."""
    router = graph.nodes[FRONTEND]["router"]
    if router.mode != "kv":
        return
    for node in routed_pools(graph):
        p = graph.nodes[node]["pool"]
        if p.tokens_per_block != router.block_size:
            where = (
                ("router", "block_size")
                if router.block_size_source.kind == "user"
                else p.path + ("engine", "tokens_per_block")
            )
            yield finding(
                f"router block size {router.block_size} differs from the {p.role} pool's "
                f"tokens_per_block {p.tokens_per_block}",
                where,
                "the router hashes prefixes per block: use one block size everywhere",
            )


@rule("DYN303", "conditional-disagg-needs-kv")
def conditional_disagg_needs_kv_and_disagg(graph):
    """Conditional disaggregation needs the KV router and prefill + decode pools."""
    spec = spec_of(graph)
    if not spec.router.conditional_disagg:
        return
    if spec.router.mode != "kv":
        yield finding(
            "router.conditional_disagg needs router.mode kv", ("router", "conditional_disagg"), "set router.mode: kv"
        )
    if not _pair(graph):
        yield finding("router.conditional_disagg needs prefill and decode pools", ("router", "conditional_disagg"))


@rule("DYN304", "kv-options-need-kv-router")
def kv_options_need_kv_router(graph):
    """KV-router options are errors under another router mode (they would be silently ignored)."""
    router = spec_of(graph).router
    if router.mode == "kv":
        return
    for field in ("overlap_score_credit", "temperature", "replica_sync", "block_size"):
        if getattr(router, field) is not None:
            yield finding(
                f"router.{field} only applies to the KV router; mode is {router.mode}",
                ("router", field),
                "set router.mode: kv, or remove it",
            )
    if "kv_events" in router.model_fields_set:
        yield finding(
            f"router.kv_events only applies to the KV router; mode is {router.mode}",
            ("router", "kv_events"),
            "set router.mode: kv, or remove it",
        )


# --- 4xx: topology and placement ------------------------------------------------------------------


@rule("DYN401", "pools-reachable")
def every_pool_reachable(graph):
    """Every pool is reachable from the frontend over request edges."""
    requests = graph.edge_subgraph(edges_of_kind(graph, "requests"))
    reached = nx.descendants(requests, FRONTEND) if FRONTEND in requests else set()
    for p in pools(graph):
        if f"pool:{p.role}" not in reached:
            yield finding(
                f"nothing sends requests to the {p.role} pool",
                p.path,
                "an encode pool is called by prefill (or agg) workers: declare one",
            )


# Seen running Dynamo 1.6.1: "invalid value unsigned int `38842`, expected i16 for key SYSTEM_PORT".
MAX_SYSTEM_PORT = 32767


@rule("DYN402", "ports-unique")
def ports_unique(graph):
    """The frontend's HTTP ports and the workers' system ports are distinct, and system ports fit Dynamo's i16."""
    spec = spec_of(graph)
    frontend_ports = {("local", "http_port"): spec.local.http_port, ("slurm", "http_port"): spec.slurm.http_port}
    for p in pools(graph):
        for path, port in frontend_ports.items():
            if port in p.system_ports:
                yield finding(
                    f"{path[0]}.http_port {port} is also the system port of {p.role} worker "
                    f"{p.system_ports.index(port)}",
                    path,
                    f"move {path[0]}.http_port, or local.system_port_base past the workers' range",
                )
        if p.system_ports and p.system_ports[-1] > MAX_SYSTEM_PORT:
            yield finding(
                f"{p.role} workers' system ports run up to {p.system_ports[-1]}, past {MAX_SYSTEM_PORT}: "
                "Dynamo 1.6.1 reads DYN_SYSTEM_PORT as a signed 16-bit integer and refuses to start",
                ("local", "system_port_base"),
                f"keep local.system_port_base + workers <= {MAX_SYSTEM_PORT}",
            )


@rule("DYN403", "gpus-fit-cluster")
def gpus_fit_cluster(graph):
    """All workers' GPUs fit the declared cluster."""
    cluster = spec_of(graph).cluster
    capacity = cluster.nodes * cluster.gpus_per_node
    needed = sum(p.gpus_per_worker * p.replicas for p in pools(graph))
    if needed > capacity:
        parts = ", ".join(f"{p.role} {p.replicas}x{p.gpus_per_worker}" for p in pools(graph))
        yield finding(
            f"the pools need {needed} GPUs ({parts}); the cluster has {capacity} "
            f"({cluster.nodes} nodes x {cluster.gpus_per_node})",
            ("cluster", "nodes"),
            "raise cluster.nodes, or lower replicas / parallelism",
        )


@rule("DYN404", "spanning-worker-fills-nodes")
def spanning_worker_fills_whole_nodes(graph):
    """A worker larger than a node spans whole nodes, with the same number of ranks on each."""
    gpn = spec_of(graph).cluster.gpus_per_node
    for p in pools(graph):
        size = p.gpus_per_worker
        if size > gpn and size % gpn:
            yield finding(
                f"a {p.role} worker has {size} ranks: more than a node's {gpn} GPUs, and not a multiple of it",
                p.path + ("tensor_parallel",),
                f"it would span {nodes_per_worker(size, gpn)} nodes unevenly; use a multiple of {gpn}",
            )


@rule("DYN406", "total-gpus-bounded")
def total_gpus_bounded(graph):
    """A deployment uses at most MAX_TOTAL_GPUS GPUs (more than the largest clusters built)."""
    needed = sum(p.gpus_per_worker * p.replicas for p in pools(graph))
    if needed > MAX_TOTAL_GPUS:
        largest = max(pools(graph), key=lambda p: p.gpus_per_worker * p.replicas)
        yield finding(
            f"the pools need {needed} GPUs; dyncc compiles deployments of up to {MAX_TOTAL_GPUS} GPUs "
            "(the largest GPU clusters built hold ~200,000)",
            largest.path + ("replicas",),
            "lower replicas or parallelism; split a larger fleet into several deployments",
        )


# TRT-LLM engine configs are a few KB (the largest real ones list CUDA-graph batch sizes); YAML aliases
# in engine.extra can make a 500-byte spec expand into tens of MB, written once per target.
MAX_ENGINE_CONFIG_BYTES = 262_144


def written_size_at_least(value: object, budget: int) -> int:
    """Roughly how many bytes ``value`` takes as YAML, counting only up to just past ``budget`` (so an
    aliased structure of billions of nodes costs no more than the budget to measure)."""
    total, stack = 0, [value]
    while stack and total <= budget:
        item = stack.pop()
        if isinstance(item, dict):
            total += 2
            for key, child in item.items():
                total += len(str(key)) + 2
                stack.append(child)
        elif isinstance(item, list):
            total += 2
            stack.extend(item)
        else:
            total += len(str(item)) + 2
    return total


@rule("DYN408", "engine-config-bounded")
def engine_config_bounded(graph):
    """A pool's engine config, as written, stays under MAX_ENGINE_CONFIG_BYTES."""
    for p in pools(graph):
        if written_size_at_least(p.engine.config, MAX_ENGINE_CONFIG_BYTES) > MAX_ENGINE_CONFIG_BYTES:
            yield finding(
                f"the {p.role} pool's engine config would be over {MAX_ENGINE_CONFIG_BYTES // 1024} KiB as YAML "
                "(real TensorRT-LLM configs are a few KB; YAML aliases in engine.extra multiply their targets)",
                p.path + ("engine", "extra"),
                "write the values out once; remove repeated aliases (*name) from engine.extra",
            )


@rule("DYN407", "worker-size-bounded")
def worker_size_bounded(graph):
    """One worker spans at most MAX_GPUS_PER_WORKER GPUs (TP x PP)."""
    for p in pools(graph):
        if p.gpus_per_worker > MAX_GPUS_PER_WORKER:
            yield finding(
                f"a {p.role} worker of TP {p.spec.tensor_parallel} x PP {p.spec.pipeline_parallel} = "
                f"{p.gpus_per_worker} GPUs is above dyncc's limit of {MAX_GPUS_PER_WORKER} GPUs per worker "
                "(today's largest model instances, wide-EP over GB200 NVL72 racks, use a few hundred)",
                p.path + ("tensor_parallel",),
                "lower tensor_parallel / pipeline_parallel and add replicas instead",
            )


# --- 6xx: planner -----------------------------------------------------------------------------------


@rule("DYN601", "sla-planner-targets")
def sla_planner_has_targets(graph):
    """The SLA planner scales to latency targets, which must be given."""
    planner = spec_of(graph).planner
    if planner.enabled and planner.mode == "sla" and (planner.ttft_ms is None or planner.itl_ms is None):
        yield finding(
            "the SLA planner needs planner.ttft_ms and planner.itl_ms",
            ("planner",),
            "set both targets, or use planner.mode: load",
        )


@rule("DYN602", "load-planner-thresholds")
def load_planner_has_thresholds(graph):
    """The load planner needs scale-up above scale-down thresholds for the pools it scales."""
    spec = spec_of(graph)
    planner = spec.planner
    if not (planner.enabled and planner.mode == "load"):
        return
    roles = {p.role for p in pools(graph)}
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


# --- 8xx: sweeps ----------------------------------------------------------------------------------

# Every point is a full compile and build (and with --run, a deployment started and benchmarked for
# minutes): 512 points is a day of --run; past it the product of the lists is almost always a mistake.
MAX_SWEEP_POINTS = 512
# Keys a point gets from dyncc itself, not from the sweep.
UNSWEEPABLE_KEYS = ("apiVersion", "name", "sweep")


def sweep_points(sweep: dict[str, list]) -> int:
    """How many points a sweep expands to, without expanding it."""
    return math.prod(len(values) for values in sweep.values())


def sweep_problems(sweep: dict[str, list]) -> list[Diagnostic]:
    """What makes a `sweep:` unexpandable: too many points, keys inside other keys, keys dyncc sets."""
    problems = []
    count = sweep_points(sweep)
    if count > MAX_SWEEP_POINTS:
        sizes = " x ".join(str(len(v)) for v in sweep.values())
        problems.append(
            Diagnostic(
                "DYN801",
                f"the sweep expands to {count} points ({sizes}); dyncc builds at most {MAX_SWEEP_POINTS}",
                path=("sweep",),
                hint="sweep fewer keys or fewer values at once, or run several sweeps",
            )
        )
    keys = sorted(sweep)
    for key in keys:
        root = key.split(".")[0]
        if root in UNSWEEPABLE_KEYS:
            problems.append(
                Diagnostic(
                    "DYN802",
                    f"sweep key `{key}` cannot be swept: dyncc sets `{root}` of every point itself",
                    path=("sweep", key),
                    hint="sweep a deployment setting (pools.*, router.*, engine values, ...)",
                )
            )
        inner = next((other for other in keys if other.startswith(key + ".")), None)
        if inner is not None:
            problems.append(
                Diagnostic(
                    "DYN803",
                    f"sweep keys `{key}` and `{inner}` overlap: each point would set one over the other",
                    path=("sweep", inner),
                    hint=f"sweep either `{key}` as a whole or fields inside it, not both",
                )
            )
    return problems


def _sweep_problems_with(code: str, graph: nx.DiGraph) -> Iterator[Diagnostic]:
    yield from (d for d in sweep_problems(spec_of(graph).sweep) if d.code == code)


@rule("DYN801", "sweep-points-bounded")
def sweep_points_bounded(graph):
    """A `sweep:` expands to at most MAX_SWEEP_POINTS points (counted before expanding)."""
    yield from _sweep_problems_with("DYN801", graph)


@rule("DYN802", "sweep-key-settable")
def sweep_keys_settable(graph):
    """Sweep keys name settings of the deployment, not `name`, `apiVersion` or `sweep` (dyncc sets those)."""
    yield from _sweep_problems_with("DYN802", graph)


@rule("DYN803", "sweep-keys-distinct")
def sweep_keys_distinct(graph):
    """No sweep key lies inside another one (one would silently overwrite the other)."""
    yield from _sweep_problems_with("DYN803", graph)


# --- 7xx: version profiles ------------------------------------------------------------------------


@rule("DYN701", "known-dynamo-version")
def dynamo_version_has_a_profile(graph):
    """The Dynamo version names a family dyncc has a profile for."""
    version = spec_of(graph).dynamo.version
    if profile_for(version) is None:
        known = ", ".join(f"{p.family} (e.g. {p.dynamo_default})" for p in PROFILES)
        yield finding(f"no profile for Dynamo {version}", ("dynamo", "version"), f"dyncc knows {known}")


@rule("DYN702", "disaggregation-strategy-removed")
def disaggregation_strategy_needs_0x(graph):
    """`decode_first`/`prefill_first` exist only in Dynamo 0.x; 1.0 removed them."""
    spec, profile = spec_of(graph), graph.graph["profile"]
    strategy = spec.router.disaggregation_strategy
    if strategy is None:
        return
    if not profile.disaggregation_strategy:
        yield finding(
            f"router.disaggregation_strategy {strategy} is not in Dynamo {spec.dynamo.version}: "
            "--disaggregation-strategy was removed in Dynamo 1.0 (Nov 2025); the frontend now drives "
            "prefill, then decode",
            ("router", "disaggregation_strategy"),
            "remove it, or deploy Dynamo 0.x (dynamo.version: 0.5.1) where it exists",
        )
    elif not _pair(graph):
        yield finding(
            "router.disaggregation_strategy needs prefill and decode pools", ("router", "disaggregation_strategy")
        )


@rule("DYN703", "feature-needs-newer-dynamo")
def feature_exists_in_version(graph):
    """Features the chosen Dynamo version lacks are errors naming the version that has them."""
    spec, profile = spec_of(graph), graph.graph["profile"]
    newer = DYNAMO_1.dynamo_default
    if spec.router.conditional_disagg and not profile.conditional_disagg:
        yield finding(
            f"router.conditional_disagg is not in Dynamo {spec.dynamo.version}: it came with Dynamo 1.x",
            ("router", "conditional_disagg"),
            f"remove it, or deploy Dynamo {newer}",
        )


IMAGE_TAG_VERSION = re.compile(r":v?(\d+\.\d+\.\d+)[^/]*$")


@rule("DYN704", "image-matches-version")
def image_tag_matches_dynamo_version(graph):
    """A container image tagged with another Dynamo version runs other flags than the ones written."""
    spec = spec_of(graph)
    match = IMAGE_TAG_VERSION.search(spec.image or "")
    if match and match.group(1) != spec.dynamo.version:
        yield finding(
            f"image tag {match.group(1)} but dynamo.version {spec.dynamo.version}: the flags and manifests "
            f"are written for {spec.dynamo.version}",
            ("image",),
            "use the image of the version deployed, or set dynamo.version to the image's",
            severity="warning",
        )
