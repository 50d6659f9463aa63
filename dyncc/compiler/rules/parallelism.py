"""Parallelism and speculation (DYN101-107, DYN110-112, DYN123, DYN124): TP x PP, MoE expert/tensor splits,
attention DP, MTP/Eagle drafts, CUDA-graph sizes, the MoE load balancer. What depends on the engine version
deployed (DYN119-122) is the engine's own (``RULES`` of its implementation)."""

from __future__ import annotations

from collections.abc import Iterator

from dyncc.compiler.graph import DeploymentGraph, PoolInfo
from dyncc.compiler.rules.base import finding, rule
from dyncc.diagnostics import Diagnostic


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
    """Tensor parallelism gives each TP rank the same number of a layer's attention heads, so TP divides the
    query heads; each rank also gets a whole number of KV heads, so TP divides the KV heads or is a multiple of
    them (each then copied to TP / KV-heads ranks). MLA caches a latent instead of KV heads: only the query
    heads split. Attention DP keeps every head on every rank. The counts are the model facts every rule reads
    (the spec, else config.json, else dyncc's table of well-known models), named in the message."""
    facts = graph.facts
    heads, kv = facts.attention_heads, None if facts.mla else facts.kv_heads
    if heads is None and kv is None:
        return
    for p in graph.pools():
        tp = p.spec.tensor_parallel
        if p.spec.attention_dp or tp == 1:
            continue
        if heads is not None and heads % tp:
            problem = f"does not divide the model's {heads} attention heads"
            source = facts.source.get("attention_heads", "spec")
        elif kv is not None and (kv % tp if kv >= tp else tp % kv):
            problem = (
                f"splits the model's {kv} KV heads unevenly (each rank needs a whole number of them, "
                f"or TP a multiple of them so each is copied)"
            )
            source = facts.source.get("kv_heads", "spec")
        else:
            continue
        yield finding(
            f"tensor_parallel {tp} {problem} [from {source}]",
            p.path + ("tensor_parallel",),
            f"{graph.engine.label} refuses to start such a worker: choose one of {_head_splits(heads, kv)}, "
            "or attention_dp: true",
        )


def _head_splits(heads: int | None, kv: int | None) -> list[int]:
    """TP sizes up to 64 that split both head counts as TensorRT-LLM needs."""
    return [
        tp
        for tp in range(1, 65)
        if (heads is None or heads % tp == 0) and (kv is None or (kv % tp == 0 if kv >= tp else tp % kv == 0))
    ]


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
                f"{graph.engine.label} splits the TP ranks between expert and tensor parallelism for MoE layers: "
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
            "(e.g. DeepSeek-R1: num_nextn_predict_layers 1); model.mtp_layers states a checkpoint's own count",
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
                f"{experts} experts do not divide over expert_parallel {ep} "
                f"(from {graph.facts.source.get('num_experts', 'spec')})",
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
