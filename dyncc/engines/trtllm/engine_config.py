"""Resolve each pool's TensorRT-LLM engine config, recording where every value came from, and write it
as the engine YAML (``--extra-engine-args``).

The engine YAML is the single place parallelism, KV cache layout, KV transfer and speculation reach
TRT-LLM (Dynamo's worker has no flags for the last two). Each leaf gets a :class:`Provenance`: the
user's spec path, a default (with the reason), or a compiler rule. ``engine.extra`` is merged last
because it is the user's explicit word — exactly like Dynamo's own override order — and each value it
overrides is reported (DYN109) so nothing changes silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dyncc.engines.base import ResolvedConfig, WorkerLimits
from dyncc.engines.trtllm.keys import speculative_form
from dyncc.engines.trtllm.release import TrtllmRelease
from dyncc.spec.model import CoreSpec, Pool, Role
from dyncc.spec.provenance import Provenance

# Engine keys that drive placement, ranks and flags: they must come from the pool's first-class fields
# so that every target (and the placement) reads one value.
OWNED_KEYS = {
    "tensor_parallel_size": "tensor_parallel",
    "pipeline_parallel_size": "pipeline_parallel",
    "context_parallel_size": "tensor_parallel / pipeline_parallel (context parallelism is not modelled)",
    "moe_expert_parallel_size": "expert_parallel",
    "moe_tensor_parallel_size": "moe_tensor_parallel",
    "enable_attention_dp": "attention_dp",
    "gpus_per_node": "cluster.gpus_per_node",
    "model": "model.path",
}


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_mapping(value: Any) -> bool:
    return isinstance(value, dict)


def _mapping_or_null(value: Any) -> bool:
    return value is None or isinstance(value, dict)


def _fraction(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


def _positive_ints(value: Any) -> bool:
    return isinstance(value, list) and all(_positive_int(v) for v in value)


# engine.extra keys dyncc itself reads (rules, flags such as --kv-block-size, the mock engine's flags):
# a value of another type would crash the compiler or write a flag Dynamo rejects, so it is refused
# (DYN114) and never merged. Everything else passes through to TRT-LLM, which checks it.
TYPED_EXTRA_KEYS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "max_batch_size": (_positive_int, "a positive integer"),
    "max_num_tokens": (_positive_int, "a positive integer"),
    "max_seq_len": (_positive_int, "a positive integer"),
    "enable_chunked_prefill": (_is_bool, "true or false"),
    "disable_overlap_scheduler": (_is_bool, "true or false"),
    "trust_remote_code": (_is_bool, "true or false"),
    "kv_cache_config": (_is_mapping, "a mapping (dyncc derives the router's and workers' block size from it)"),
    "kv_cache_config.tokens_per_block": (_positive_int, "a positive integer"),
    "kv_cache_config.dtype": (_is_str, "a string such as fp8 or auto"),
    "kv_cache_config.free_gpu_memory_fraction": (_fraction, "a number from 0 to 1"),
    "kv_cache_config.enable_block_reuse": (_is_bool, "true or false"),
    "cuda_graph_config": (_mapping_or_null, "a mapping, or null to turn CUDA graphs off"),
    "cuda_graph_config.batch_sizes": (_positive_ints, "a list of positive integers"),
    "cuda_graph_config.max_batch_size": (_positive_int, "a positive integer"),
    "cuda_graph_config.enable_padding": (_is_bool, "true or false"),
    "cache_transceiver_config": (_is_mapping, "a mapping"),
    "cache_transceiver_config.backend": (_is_str, "a backend name such as NIXL or UCX"),
    # Optional[int] with no bound in every key set; NVIDIA's Kimi-K2 disagg recipe ships 0.
    "cache_transceiver_config.max_tokens_in_buffer": (_int, "an integer"),
    "speculative_config": (_mapping_or_null, "a mapping (set speculation with `speculative:`)"),
    "speculative_config.decoding_type": (_is_str, "a string such as MTP or Eagle3"),
    "speculative_config.max_draft_len": (_positive_int, "a positive integer"),
    "speculative_config.num_nextn_predict_layers": (_positive_int, "a positive integer"),
    "moe_config": (_is_mapping, "a mapping"),
    "moe_config.load_balancer.num_slots": (_positive_int, "a positive integer"),
}


class _Builder:
    def __init__(self, role: Role):
        self.role = role
        self.config: dict[str, Any] = {}
        self.sources: dict[str, Provenance] = {}

    def set(self, dotted: str, value: Any, source: Provenance) -> None:
        node = self.config
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
        self.sources[dotted] = source


def _user(path: tuple) -> Provenance:
    return Provenance("user", ".".join(str(p) for p in path), path)


def resolve_engine(spec: CoreSpec, role: Role, pool: Pool, moe: bool | None, profile: TrtllmRelease) -> ResolvedConfig:
    base = ("pools", role)
    eng = pool.engine
    b = _Builder(role)

    def first_class(key: str, value: Any, field: str) -> None:
        if value is not None:
            b.set(key, value, _user(base + ("engine", field)))

    def pool_field(field: str) -> Provenance:
        # A field the spec leaves out is the spec's default, not a line of the file (explain, hover).
        path = base + (field,)
        if field in pool.model_fields_set:
            return _user(path)
        return Provenance("default", f"{'.'.join(path)} not set in the spec", path)

    b.set("tensor_parallel_size", pool.tensor_parallel, pool_field("tensor_parallel"))
    b.set("pipeline_parallel_size", pool.pipeline_parallel, pool_field("pipeline_parallel"))
    if moe or pool.expert_parallel > 1:
        b.set("moe_expert_parallel_size", pool.expert_parallel, pool_field("expert_parallel"))
        moe_tp = pool.moe_tensor_parallel or max(1, pool.tensor_parallel // pool.expert_parallel)
        b.set(
            "moe_tensor_parallel_size",
            moe_tp,
            _user(base + ("moe_tensor_parallel",))
            if pool.moe_tensor_parallel
            else Provenance("default", "tensor_parallel / expert_parallel"),
        )
    b.set("enable_attention_dp", pool.attention_dp, pool_field("attention_dp"))
    first_class("max_batch_size", eng.max_batch_size, "max_batch_size")
    first_class("max_num_tokens", eng.max_num_tokens, "max_num_tokens")
    first_class("max_seq_len", eng.max_seq_len, "max_seq_len")
    first_class("enable_chunked_prefill", eng.chunked_prefill, "chunked_prefill")

    if eng.overlap_scheduler is not None:
        b.set("disable_overlap_scheduler", not eng.overlap_scheduler, _user(base + ("engine", "overlap_scheduler")))
    elif role == "prefill":
        # Prefill-only workers don't support the overlap scheduler (Dynamo's own prefill configs).
        b.set(
            "disable_overlap_scheduler",
            True,
            Provenance("default", "prefill workers run without the overlap scheduler"),
        )

    _resolve_cuda_graphs(b, role, eng, base)

    first_class("kv_cache_config.free_gpu_memory_fraction", eng.free_gpu_memory_fraction, "free_gpu_memory_fraction")
    first_class("kv_cache_config.dtype", eng.kv_cache_dtype, "kv_cache_dtype")
    if eng.tokens_per_block is not None:
        first_class("kv_cache_config.tokens_per_block", eng.tokens_per_block, "tokens_per_block")
    else:
        # Written out explicitly: the router's block size and the prefill/decode pair must match it.
        b.set("kv_cache_config.tokens_per_block", 32, Provenance("default", "TRT-LLM and Dynamo default (32)"))
    first_class("kv_cache_config.enable_block_reuse", eng.enable_block_reuse, "enable_block_reuse")

    if role in ("prefill", "decode"):
        kvt = spec.kv_transfer
        if kvt.backend is not None:
            b.set(
                "cache_transceiver_config.backend",
                profile.transceiver_backend(kvt.backend),
                _user(("kv_transfer", "backend")),
            )
        else:
            b.set(
                "cache_transceiver_config.backend",
                profile.transceiver_backend(profile.transfer_default),
                Provenance(
                    "default",
                    f"{profile.transfer_default}, Dynamo {profile.dynamo_version}'s KV transfer default; "
                    "written explicitly (unset fails every disagg request)",
                ),
            )
        if kvt.max_tokens_in_buffer is not None:
            b.set(
                "cache_transceiver_config.max_tokens_in_buffer",
                kvt.max_tokens_in_buffer,
                _user(("kv_transfer", "max_tokens_in_buffer")),
            )

    _resolve_speculative(b, spec, profile.keyset)
    _resolve_moe(b, pool, base)
    if spec.model.trust_remote_code:
        b.set("trust_remote_code", True, _user(("model", "trust_remote_code")))

    overrides, conflicts, type_errors = _merge_extra(b, eng.extra, base + ("engine", "extra"))
    return ResolvedConfig(b.config, b.sources, overrides, conflicts, type_errors)


def _resolve_cuda_graphs(b: _Builder, role: Role, eng, base: tuple) -> None:
    graphs = eng.cuda_graphs
    if graphs is None:
        if role == "prefill":
            b.set("cuda_graph_config", None, Provenance("default", "prefill workers run without CUDA graphs"))
        return
    path = base + ("engine", "cuda_graphs")
    if not graphs.enabled:
        b.set("cuda_graph_config", None, _user(path + ("enabled",)))
        return
    b.set("cuda_graph_config", {}, _user(path))
    if graphs.padding is not None:
        b.set("cuda_graph_config.enable_padding", graphs.padding, _user(path + ("padding",)))
    if graphs.batch_sizes is not None:
        b.set("cuda_graph_config.batch_sizes", list(graphs.batch_sizes), _user(path + ("batch_sizes",)))
    if graphs.max_batch_size is not None:
        b.set("cuda_graph_config.max_batch_size", graphs.max_batch_size, _user(path + ("max_batch_size",)))
    elif graphs.batch_sizes is None and eng.max_batch_size is not None:
        b.set(
            "cuda_graph_config.max_batch_size",
            eng.max_batch_size,
            Provenance("default", "capture up to the pool's max_batch_size"),
        )


def _resolve_speculative(b: _Builder, spec: CoreSpec, trtllm_version: str) -> None:
    """Speculation in the form the deployed TRT-LLM reads (``data/trtllm_<version>_keys.json``,
    ``speculative_forms``): 1.3 writes Eagle3 + ``speculative_model``; 1.1.0rc5 knows only ``Eagle`` +
    ``speculative_model_dir``. MTP's depth goes under the one key that version reads it from (its
    ``depth_key``): 1.1.0rc5 copies ``num_nextn_predict_layers`` (default 1) over ``max_draft_len``, 1.3.0rc29
    reads ``max_draft_len`` and takes ``num_nextn_predict_layers`` only as a deprecated alias
    (:mod:`dyncc.engines.trtllm.overrides`)."""
    sp = spec.speculative
    if sp.mode == "none":
        return
    path = ("speculative",)
    is_eagle = sp.mode in ("eagle", "eagle3")
    form = speculative_form(trtllm_version, "eagle" if is_eagle else "mtp")
    decoding_type = form["decoding_type"] if is_eagle else "MTP"
    b.set("speculative_config.decoding_type", decoding_type, _user(path + ("mode",)))
    draft_len = sp.draft_len if sp.draft_len is not None else (1 if sp.mode == "mtp" else None)
    source = _user(path + ("draft_len",)) if sp.draft_len is not None else Provenance("default", "one MTP draft token")
    if draft_len is not None:
        key = "max_draft_len" if is_eagle else form["depth_key"]
        b.set(f"speculative_config.{key}", draft_len, source)
    if is_eagle:
        if sp.draft_model is not None:
            b.set(f"speculative_config.{form['model_key']}", sp.draft_model, _user(path + ("draft_model",)))
        b.set(
            f"speculative_config.{form['one_model_key']}",
            sp.one_model,
            _user(path + ("one_model",))
            if "one_model" in sp.model_fields_set
            else Provenance("default", "one-model Eagle3"),
        )


def _resolve_moe(b: _Builder, pool: Pool, base: tuple) -> None:
    """The pool's first-class MoE section; ``engine.extra.moe_config`` still merges over it (DYN109)."""
    moe = pool.moe
    if moe is None:
        return
    path = base + ("moe",)
    if moe.backend is not None:
        b.set("moe_config.backend", moe.backend, _user(path + ("backend",)))
    balancer = moe.load_balancer
    if balancer is not None:
        lb = path + ("load_balancer",)
        b.set("moe_config.load_balancer.num_slots", balancer.num_slots, _user(lb + ("num_slots",)))
        if balancer.updates_per_iter is not None:
            b.set(
                "moe_config.load_balancer.layer_updates_per_iter",
                balancer.updates_per_iter,
                _user(lb + ("updates_per_iter",)),
            )


_TYPED_PARENTS = {key.rsplit(".", i)[0] for key in TYPED_EXTRA_KEYS for i in range(1, key.count(".") + 1)}


def _without_bad_types(value: dict, prefix: str, type_errors: list[tuple[str, Any, str]]) -> dict:
    """``value`` (a mapping extra sets as a whole) minus the typed keys of a wrong type, which are recorded."""
    kept: dict[str, Any] = {}
    for key, item in value.items():
        dotted = f"{prefix}{key}"
        typed = TYPED_EXTRA_KEYS.get(dotted)
        if typed is not None and not typed[0](item):
            type_errors.append((dotted, item, typed[1]))
            continue
        if isinstance(item, dict) and dotted in _TYPED_PARENTS:
            item = _without_bad_types(item, dotted + ".", type_errors)
        kept[key] = item
    unchanged = len(kept) == len(value) and all(kept[k] is value[k] for k in value)
    return value if unchanged else kept  # the user's own object when nothing was dropped


def _merge_extra(b: _Builder, extra: dict, path: tuple) -> tuple[list, list, list]:
    overrides: list[tuple[str, Any, Any]] = []
    type_errors: list[tuple[str, Any, str]] = []
    conflicts = [key for key in extra if key in OWNED_KEYS]

    def merge(target: dict, incoming: dict, prefix: str) -> None:
        for key, value in incoming.items():
            dotted = f"{prefix}{key}"
            if not prefix and key in OWNED_KEYS:
                continue
            typed = TYPED_EXTRA_KEYS.get(dotted)
            if typed is not None and not typed[0](value):
                type_errors.append((dotted, value, typed[1]))
                continue
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                merge(target[key], value, dotted + ".")
                continue
            if isinstance(value, dict) and dotted in _TYPED_PARENTS:
                value = _without_bad_types(value, dotted + ".", type_errors)
            if key in target and target[key] != value:
                overrides.append((dotted, target[key], value))
            target[key] = value
            b.sources[dotted] = Provenance(
                "user", ".".join(map(str, path)) + f".{dotted}", path + tuple(dotted.split("."))
            )

    merge(b.config, extra, "")
    return overrides, conflicts, type_errors


def engine_yaml(
    role: str, config: dict[str, Any], spec_name: str, trtllm_version: str, keyset: str | None = None
) -> str:
    """The engine YAML file a worker reads with ``--extra-engine-args``; its header names the key set that
    checked it when that is not the pinned TensorRT-LLM's own."""
    from dyncc import __version__
    from dyncc.yaml_text import dump_yaml  # imported when a build needs it, not for `dyncc validate`

    return dump_yaml(
        config,
        f"# TensorRT-LLM {trtllm_version} engine config for the {role} pool of '{spec_name}'.\n"
        f"# Generated by dyncc {__version__}.\n"
        + (
            f"# Keys checked against TensorRT-LLM {keyset}'s set, the nearest dyncc has (DYN707).\n"
            if keyset not in (None, trtllm_version)
            else ""
        ),
    )


# Where the engine config names the Eagle draft model: TensorRT-LLM 1.3 and 1.1 spell it differently.
DRAFT_KEYS = ("speculative_model", "speculative_model_dir")


def draft_model(config: Mapping[str, Any]) -> str | None:
    """The Eagle draft model an engine config names."""
    speculative = config.get("speculative_config")
    if isinstance(speculative, dict):
        for key in DRAFT_KEYS:
            if isinstance(speculative.get(key), str):
                return str(speculative[key])
    return None


def with_draft_model(config: Mapping[str, Any], model: str, path: str) -> dict[str, Any]:
    """``config`` naming the draft model ``model`` at ``path`` instead (a target delivered it there)."""
    speculative = config.get("speculative_config")
    if not isinstance(speculative, dict):
        return dict(config)
    rewritten = {k: path if k in DRAFT_KEYS and v == model else v for k, v in speculative.items()}
    return {**config, "speculative_config": rewritten}


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def limits(engine: ResolvedConfig) -> WorkerLimits:
    """A worker's size as its engine config says it, for engines that stand in for this one."""
    return WorkerLimits(
        block_size=engine.get("kv_cache_config.tokens_per_block"),
        max_batch_size=_int_or_none(engine.get("max_batch_size")),
        max_num_tokens=_int_or_none(engine.get("max_num_tokens")),
        max_seq_len=_int_or_none(engine.get("max_seq_len")),
        data_parallel=engine.get("tensor_parallel_size") if engine.get("enable_attention_dp") else None,
    )
