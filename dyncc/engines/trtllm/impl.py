"""The TensorRT-LLM engine's work: each pool's ``python3 -m dynamo.trtllm`` command line, as the deployed
release's worker parser spells it, and its engine config (resolved, written, checked by :mod:`.rules`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dyncc.diagnostics import Diagnostic
from dyncc.engines.base import Engine, PoolWorkers, ResolvedConfig, Slot, Word, WorkerCommand, WorkerLimits
from dyncc.engines.trtllm import ENGINE
from dyncc.engines.trtllm import engine_config as _config
from dyncc.engines.trtllm.engine_config import resolve_engine
from dyncc.engines.trtllm.memory import memory_budget as memory_budget
from dyncc.engines.trtllm.reading import READING as READING
from dyncc.engines.trtllm.reading import read_config as read_config
from dyncc.engines.trtllm.release import TrtllmRelease
from dyncc.engines.trtllm.release import release_view as release_view
from dyncc.engines.trtllm.rules import RULES as _RULES
from dyncc.spec.model import CoreSpec, Pool, Role

RULES = tuple(_RULES)

# The worker's limit flags and the engine-config keys they repeat (see TrtllmRelease.limits_as_flags).
LIMIT_FLAGS = (
    ("max_batch_size", "--max-batch-size"),
    ("max_num_tokens", "--max-num-tokens"),
    ("max_seq_len", "--max-seq-len"),
)


def worker_command(pool: PoolWorkers, view: TrtllmRelease) -> WorkerCommand:
    """The pool's worker command line; identical on every target but for the slots (model, engine files,
    the revision a target's workers download at)."""
    flags: list[str] = []
    mode = view.agg_mode if pool.role == "agg" else pool.role
    if pool.role != "agg" or view.agg_mode != "agg":
        flags += ["--disaggregation-mode", mode]
    if pool.disaggregation_strategy is not None and pool.role in ("prefill", "decode"):
        flags += ["--disaggregation-strategy", pool.disaggregation_strategy]
    if pool.publish_kv_events:
        flags += list(view.kv_event_flags)
    flags += _multimodal_flags(pool, view)
    if pool.migration is not None:
        limit, max_seq_len = pool.migration
        flags += ["--migration-limit", str(limit)]
        if max_seq_len is not None:
            flags += ["--migration-max-seq-len", str(max_seq_len)]
    flags += ["--kv-block-size", str(pool.limits.block_size)]
    if view.limits_as_flags:
        flags += _limit_flags(pool.limits)
    if pool.kvbm:
        flags += ["--connector", "kvbm"]
    if view.namespace_flag:
        flags += ["--namespace", pool.namespace]
    if pool.request_plane is not None:
        flags += ["--request-plane", pool.request_plane]
    # Every worker parses replies the same way: the parsers are the model's, not a pool's (DYN125).
    if pool.tool_call_parser:
        flags += ["--dyn-tool-call-parser", pool.tool_call_parser]
    if pool.reasoning_parser:
        flags += ["--dyn-reasoning-parser", pool.reasoning_parser]
    args: list[Word] = [
        view.model_flag,
        Slot("model"),
        "--served-model-name",
        pool.served_name,
        "--extra-engine-args",
        Slot("engine_file", pool.engine_file),
        *flags,
    ]
    if pool.chat_template is not None:
        args.append(Slot("engine_file", pool.chat_template, flag="--custom-jinja-template"))
    if view.revision_flag:  # where the target's workers download the model themselves (DYN563 elsewhere)
        args.append(Slot("revision", flag="--revision"))
    return WorkerCommand(ENGINE.module, tuple(args), tuple(flags), mode)


def _limit_flags(limits: WorkerLimits) -> list[str]:
    """The engine config's limits again as worker flags (see TrtllmRelease.limits_as_flags)."""
    flags: list[str] = []
    for key, flag in LIMIT_FLAGS:
        value = getattr(limits, key)
        if value is not None:
            flags += [flag, str(value)]
    return flags


def _multimodal_flags(pool: PoolWorkers, view: TrtllmRelease) -> list[str]:
    """An encode pool is wired as Dynamo's EPD launch scripts do: every worker multimodal, and the pool
    that calls the encoder told its endpoint — without it the encode pool idles."""
    if not pool.multimodal:
        return []
    flags = ["--modality", "multimodal"]
    if pool.calls_encoder:
        assert view.encode_endpoint is not None  # DYN703 refuses an encode pool where the worker has none
        flags += ["--encode-endpoint", view.encode_endpoint.format(namespace=pool.namespace)]
    return flags


def problems(pools: Sequence[PoolWorkers], view: TrtllmRelease, configuring: Engine) -> list[Diagnostic]:
    """Nothing a target could fail on that the rules have not refused already."""
    return []


def resolve_config(spec: CoreSpec, role: Role, pool: Pool, moe: bool | None, view: TrtllmRelease) -> ResolvedConfig:
    return resolve_engine(spec, role, pool, moe, view)


def limits(config: ResolvedConfig) -> WorkerLimits:
    return _config.limits(config)


def config_text(role: str, config: Mapping[str, Any], spec_name: str, view: TrtllmRelease) -> str:
    return _config.engine_yaml(role, dict(config), spec_name, view.version, view.keyset)


def draft_model(config: Mapping[str, Any]) -> str | None:
    return _config.draft_model(config)


def with_draft_model(config: Mapping[str, Any], model: str, path: str) -> dict[str, Any]:
    return _config.with_draft_model(config, model, path)


def version_note(view: TrtllmRelease) -> str:
    """The header's words for the engine: its version, and the key set that checked it when not its own."""
    nearest = "" if view.keyset_exact else f", engine keys of TensorRT-LLM {view.keyset}"
    return f"TensorRT-LLM {view.version}{nearest}"
