"""Parallelism and speculation (DYN101-107, DYN110-112, DYN119-123): TP x PP, MoE expert/tensor splits,
attention DP, MTP/Eagle drafts, CUDA-graph sizes, the MoE load balancer."""

from __future__ import annotations

from collections.abc import Iterator

from dyncc.compiler.graph import DeploymentGraph, PoolInfo
from dyncc.compiler.rules.base import finding, rule
from dyncc.diagnostics import Diagnostic
from dyncc.engines.trtllm.engine_config import ResolvedEngine
from dyncc.engines.trtllm.keys import speculative_form
from dyncc.engines.trtllm.overrides import effective_value


def _is_moe(graph: DeploymentGraph, info: PoolInfo) -> bool:
    return bool(graph.facts.moe) or info.spec.expert_parallel > 1


@rule("DYN101", "gpus-per-worker")
def gpus_per_worker_is_tp_times_pp(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """A worker's GPU count is tensor_parallel x pipeline_parallel; attention DP adds none."""
    for p in graph.pools():
        declared = p.spec.gpus_per_worker
        if declared is not None and declared != p.gpus_per_worker:
            hint = f"a {p.role} worker with TP={p.spec.tensor_parallel} PP={p.spec.pipeline_parallel} uses {p.gpus_per_worker} GPUs"
            if p.spec.attention_dp and declared == p.gpus_per_worker * p.spec.tensor_parallel:
                hint += "; attention DP runs inside the TP ranks and adds no GPUs"
            yield finding(
                f"gpus_per_worker is {declared}, but TP x PP = {p.gpus_per_worker}", p.path + ("gpus_per_worker",), hint
            )


@rule("DYN124", "tp-divides-attention-heads")
def tensor_parallel_divides_heads(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Tensor parallelism splits a layer's attention heads evenly over the TP ranks (attention DP does not)."""
    heads = graph.facts.attention_heads
    if heads is None:
        return
    for p in graph.pools():
        tp = p.spec.tensor_parallel
        if not p.spec.attention_dp and heads % tp:
            divisors = [d for d in range(1, min(heads, 64) + 1) if heads % d == 0]
            yield finding(
                f"tensor_parallel {tp} does not divide the model's {heads} attention heads",
                p.path + ("tensor_parallel",),
                f"TensorRT-LLM refuses to start such a worker: choose one of {divisors}, or attention_dp: true",
            )


@rule("DYN102", "moe-parallel-product")
def moe_parallel_covers_tp(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """For MoE models, expert_parallel x moe_tensor_parallel must equal tensor_parallel."""
    for p in graph.pools():
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
def expert_parallel_only_for_moe(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """expert_parallel > 1 only makes sense for a mixture-of-experts model."""
    facts = graph.facts
    if facts.moe is not False:
        return
    for p in graph.pools():
        # moe_tensor_parallel only sizes MoE layers: a dense model's engine config has no place for it.
        used = [("expert_parallel", p.spec.expert_parallel)] if p.spec.expert_parallel > 1 else []
        if p.spec.moe_tensor_parallel is not None:
            used.append(("moe_tensor_parallel", p.spec.moe_tensor_parallel))
        for field, value in used:
            yield finding(
                f"{field} is {value}, but the model is dense (moe: false, "
                f"from {facts.source.get('moe', 'spec')}): no layer would use it",
                p.path + (field,),
                f"remove {field}, or correct model.moe / model.num_experts",
            )


@rule("DYN104", "attention-dp-needs-tp")
def attention_dp_needs_tp(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Attention DP splits attention across the TP ranks; with TP=1 it does nothing."""
    for p in graph.pools():
        if p.spec.attention_dp and p.spec.tensor_parallel == 1:
            yield finding(
                "attention_dp is on with tensor_parallel 1: there is nothing to split",
                p.path + ("attention_dp",),
                "raise tensor_parallel, or turn attention_dp off",
                severity="warning",
            )


@rule("DYN105", "mtp-needs-mtp-layers")
def mtp_needs_mtp_layers(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """MTP speculative decoding needs a checkpoint with MTP (next-n prediction) layers."""
    spec, facts = graph.spec, graph.facts
    if spec.speculative.mode == "mtp" and facts.mtp_layers == 0:
        yield finding(
            f"speculative mode mtp, but the model has no MTP layers (from {facts.source.get('mtp_layers', 'spec')})",
            ("speculative", "mode"),
            "use eagle3 with a draft model, or a checkpoint with MTP layers "
            "(e.g. DeepSeek-R1: num_nextn_predict_layers 1)",
        )


@rule("DYN106", "eagle-needs-draft-model")
def eagle_needs_draft_model(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Eagle/Eagle3 needs a draft model and a draft length > 0."""
    sp = graph.spec.speculative
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
def experts_divisible_by_ep(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Each expert-parallel rank holds the same number of experts."""
    experts = graph.facts.num_experts
    if experts is None:
        return
    for p in graph.pools():
        ep = p.spec.expert_parallel
        if ep > 1 and experts % ep:
            yield finding(
                f"{experts} experts do not divide over expert_parallel {ep}",
                p.path + ("expert_parallel",),
                f"choose expert_parallel dividing {experts}",
            )


@rule("DYN110", "cuda-graph-batch-sizes")
def cuda_graph_sizes_consistent(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """CUDA-graph max_batch_size equals max(batch_sizes) when both are given, and fits the engine's batch."""
    for p in graph.pools():
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
def speculative_fields_match_mode(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """Draft settings without a speculative mode (or a draft model for MTP) would be silently ignored."""
    sp = graph.spec.speculative
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
def load_balancer_slots_divisible_by_ep(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """The MoE load balancer's expert slots spread evenly over the expert-parallel ranks."""
    for p in graph.pools():
        slots = p.engine.get("moe_config.load_balancer.num_slots")
        ep = p.spec.expert_parallel
        if isinstance(slots, int) and slots % ep:
            source = p.engine.sources.get("moe_config.load_balancer.num_slots")
            yield finding(
                f"moe_config.load_balancer.num_slots {slots} is not a multiple of expert_parallel {ep}",
                source.path
                if source and source.path
                else p.path + ("engine", "extra", "moe_config", "load_balancer", "num_slots"),
                f"use a multiple of {ep} (e.g. {((slots // ep) + 1) * ep})",
            )


def _draft_len(engine: ResolvedEngine, trtllm_version: str) -> int:
    """Draft tokens per request the engine config asks for, as the deployed TensorRT-LLM reads them (1.1.0rc5
    copies MTP's num_nextn_predict_layers over max_draft_len: :mod:`dyncc.engines.trtllm.overrides`)."""
    if engine.get("speculative_config.decoding_type") is None:
        return 0
    value = effective_value(engine.config, "speculative_config.max_draft_len", trtllm_version)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@rule("DYN119", "cuda-graph-sizes-over-token-budget")
def cuda_graph_sizes_fit_the_token_budget(graph: DeploymentGraph) -> Iterator[Diagnostic]:
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
        draft = _draft_len(p.engine, graph.profile.keyset)
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


@rule("DYN120", "moe-backend-has-load-balancer")
def load_balancer_needs_a_backend_that_has_one(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """The MoE load balancer runs only on backends of the deployed TensorRT-LLM that implement it."""
    without = graph.profile.keys.get("moe_backends_without_load_balancer", [])
    for p in graph.pools():
        backend = p.engine.get("moe_config.backend")
        if backend not in without or p.engine.get("moe_config.load_balancer") is None:
            continue
        source = p.engine.sources.get("moe_config.backend")
        yield finding(
            f"the MoE load balancer does not run on the {backend} backend of TensorRT-LLM "
            f"{graph.profile.trtllm_version}",
            source.path if source and source.path else p.path + ("moe", "backend"),
            "use CUTLASS, TRTLLM, CUTEDSL or DEEPGEMM with a load balancer, or remove load_balancer",
        )


@rule("DYN121", "cuda-graph-sizes-or-max")
def cuda_graph_sizes_or_max_for_1_1(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """TensorRT-LLM 1.1.0rc5 refuses CUDA-graph batch_sizes together with a max_batch_size it did not generate."""
    why = graph.profile.keys.get("cuda_graph_sizes_and_max_exclusive")
    if not why:
        return
    for p in graph.pools():
        cfg = p.engine.get("cuda_graph_config")
        if isinstance(cfg, dict) and cfg.get("batch_sizes") and cfg.get("max_batch_size"):
            source = p.engine.sources.get("cuda_graph_config.max_batch_size")
            yield finding(
                f"CUDA-graph batch_sizes and max_batch_size both set: TensorRT-LLM "
                f"{graph.profile.trtllm_version} (Dynamo {graph.profile.dynamo_version}) fails at start-up unless "
                "batch_sizes is exactly the list it generates",
                source.path if source and source.path else p.path + ("engine", "cuda_graphs"),
                "give batch_sizes alone (max_batch_size becomes their largest), or max_batch_size alone",
            )


@rule("DYN122", "two-model-eagle-honoured")
def two_model_eagle_is_honoured(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """`speculative.one_model: false` (two-model Eagle) only where the deployed TensorRT-LLM honours it."""
    sp, profile = graph.spec.speculative, graph.profile
    if sp.mode not in ("eagle", "eagle3") or sp.one_model:
        return
    if speculative_form(profile.keyset, "eagle").get("two_model_honoured", True):
        return
    yield finding(
        f"one_model: false, but TensorRT-LLM {profile.trtllm_version} (Dynamo {profile.dynamo_version}) sets "
        "eagle3_one_model back to true with only a log warning: two-model Eagle would not run",
        ("speculative", "one_model"),
        "remove one_model (one-model Eagle3), or deploy Dynamo 0.5.1 (TensorRT-LLM 1.1.0rc5), which honours it",
    )


@rule("DYN123", "moe-section-needs-moe")
def moe_section_only_for_moe(graph: DeploymentGraph) -> Iterator[Diagnostic]:
    """A pool's `moe:` section configures MoE layers; a dense model has none, so it would do nothing."""
    facts = graph.facts
    if facts.moe is not False:
        return
    for p in graph.pools():
        if p.spec.moe is not None:
            yield finding(
                f"pools.{p.role}.moe is set, but the model is dense (moe: false, from {facts.source.get('moe', 'spec')})",
                p.path + ("moe",),
                "remove the moe section, or correct model.moe / model.num_experts",
            )
