"""Runs inside AIConfigurator's Python (its own venv): one JSON request on stdin, one JSON answer on stdout.

This file imports only the standard library and ``aiconfigurator`` (never dyncc): it is executed by path
with another interpreter. AIConfigurator prints warnings, changes warning filters and sets environment
variables when imported; all of that stays in this process. Anything it writes to stdout is sent to
stderr, so the one line on the real stdout is always the answer. Progress lines on stderr start with
``dyncc-progress`` so the runner can tell them from AIConfigurator's noise.

Answer: ``{"ok": true, "result": ...}`` or ``{"ok": false, "kind": KIND, "message": ..., "choices": [...]}``
with KIND one of not_installed, version_skew, unknown_model, unknown_system, unknown_backend_version,
no_feasible, bad_input, failed. Every request's args name the engine asked about as AIConfigurator does
(``backend``) and as messages do (``backend_label``); the runner adds both.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any


class Refusal(Exception):
    def __init__(self, kind: str, message: str, choices: list[str] | None = None):
        super().__init__(message)
        self.kind = kind
        self.choices = choices or []


def _progress(text: str) -> None:
    sys.stderr.write(f"dyncc-progress {text}\n")
    sys.stderr.flush()


def _plain(value: Any) -> Any:
    """JSON-safe copies of AIConfigurator's values (numpy scalars, NaN, tuples)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _aic_version() -> str:
    from importlib.metadata import version

    return version("aiconfigurator")


def _check_catalog(args: dict, system: str) -> None:
    """Refuse what AIConfigurator lacks before it tries (an unknown model would be fetched from the hub)."""
    model, backend, label, backend_version = (
        args["model"],
        args["backend"],
        args["backend_label"],
        args["backend_version"],
    )
    from aiconfigurator.sdk.common import DefaultHFModels
    from aiconfigurator.sdk.perf_database import get_supported_databases

    if model not in DefaultHFModels and not os.path.isdir(model):
        raise Refusal("unknown_model", f"AIConfigurator has no data for model {model!r}", sorted(DefaultHFModels))
    databases = get_supported_databases()
    systems = sorted(s for s, backends in databases.items() if backends.get(backend))
    if system not in systems:
        raise Refusal("unknown_system", f"AIConfigurator has no {label} data for system {system!r}", systems)
    versions = list(databases[system][backend])
    if backend_version not in versions:
        raise Refusal(
            "unknown_backend_version",
            f"AIConfigurator's data for {system} covers {label} {', '.join(versions)}, not {backend_version}",
            versions,
        )


def _rows(frame: Any) -> list[dict]:
    if frame is None:
        return []
    return [_plain(row) for row in frame.to_dict(orient="records")]


def _model_facts(model: str) -> dict:
    """What a spec's ``model:`` section needs: MoE or dense, experts, MTP layers (from AIConfigurator's copy)."""
    from aiconfigurator.sdk.utils import _load_model_config_from_model_path, get_model_config_from_model_path

    parsed = get_model_config_from_model_path(model)
    raw = _load_model_config_from_model_path(model)
    experts = int(parsed.get("num_experts") or 0)
    return {
        "architecture": parsed.get("architecture"),
        "moe": experts > 0,
        "num_experts": experts or None,
        "mtp_layers": int(raw.get("num_nextn_predict_layers") or 0),
    }


def op_catalog(args: dict) -> dict:
    from aiconfigurator.sdk.common import DefaultHFModels
    from aiconfigurator.sdk.perf_database import get_supported_databases

    databases = get_supported_databases()
    backend = args["backend"]
    return {
        "models": sorted(DefaultHFModels),
        "systems": {s: list(b.get(backend) or []) for s, b in sorted(databases.items()) if b.get(backend)},
    }


def op_search(args: dict) -> dict:
    from aiconfigurator.cli.api import cli_default

    _check_catalog(args, args["system"])
    kwargs: dict[str, Any] = {
        "model_path": args["model"],
        "total_gpus": args["total_gpus"],
        "system": args["system"],
        "backend": args["backend"],
        "backend_version": args["backend_version"],
        "isl": args["isl"],
        "osl": args["osl"],
        "ttft": args["ttft"],
        "tpot": args["tpot"],
        "top_n": args.get("top_n", 5),
    }
    if args.get("nextn"):
        kwargs["nextn"] = args["nextn"]
        kwargs["nextn_accepted"] = args["nextn_accepted"]
    result = cli_default(**kwargs)
    return {
        "chosen": result.chosen_exp,
        "rows": {mode: _rows(frame) for mode, frame in result.best_configs.items()},
        "model": _model_facts(args["model"]),
    }


ESTIMATE_KEYS = {
    "mode", "isl", "osl", "batch_size", "tp_size", "pp_size", "attention_dp_size", "moe_tp_size", "moe_ep_size",
    "prefill_tp_size", "prefill_pp_size", "prefill_attention_dp_size", "prefill_moe_tp_size", "prefill_moe_ep_size",
    "prefill_batch_size", "prefill_num_workers", "decode_tp_size", "decode_pp_size", "decode_attention_dp_size",
    "decode_moe_tp_size", "decode_moe_ep_size", "decode_batch_size", "decode_num_workers", "nextn", "nextn_accepted",
    "decode_system_name", "max_seq_len", "prefill_max_seq_len", "decode_max_seq_len", "free_gpu_memory_fraction",
    "prefill_free_gpu_memory_fraction", "decode_free_gpu_memory_fraction",
}  # fmt: skip


def _estimate(args: dict, **overrides: Any) -> Any:
    from aiconfigurator.cli.api import cli_estimate

    kwargs = {k: v for k, v in args.items() if k in ESTIMATE_KEYS}
    kwargs.update(overrides)
    return cli_estimate(
        args["model"], args["system"], backend_name=args["backend"], backend_version=args["backend_version"], **kwargs
    )


def op_estimate(args: dict) -> dict:
    _check_catalog(args, args["system"])
    if args.get("decode_system_name"):  # disaggregated pools on another GPU
        _check_catalog(args, args["decode_system_name"])
    result = _estimate(args)
    raw = _plain(result.get())
    return {
        "ttft": float(result.ttft),
        "tpot": float(result.tpot),
        "raw": raw,
        "warning": result.kv_cache_warning,
        "model": _model_facts(args["model"]),
    }


def op_static_grid(args: dict) -> dict:
    """Per-step latencies of one worker: prefill TTFT per ISL (batch 1) and decode ITL per (context, batch)."""
    _check_catalog(args, args["system"])
    prefill, decode = [], []
    total = len(args["prefill_isl"]) + len(args["decode_points"])
    done = 0
    for isl in args["prefill_isl"]:
        prefill.append(float(_estimate(args, mode="static_ctx", isl=int(isl), osl=1, batch_size=1).ttft))
        done += 1
        _progress(f"{done}/{total}")
    for context, batch in args["decode_points"]:
        result = _estimate(args, mode="static_gen", isl=int(context), osl=2, batch_size=int(batch))
        decode.append(float(result.tpot))
        done += 1
        _progress(f"{done}/{total}")
    return {"prefill_ttft_ms": prefill, "decode_itl_ms": decode}


OPS = {"catalog": op_catalog, "search": op_search, "estimate": op_estimate, "static_grid": op_static_grid}


def _classify(exc: BaseException) -> tuple[str, str]:
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else name
    if name == "NoFeasibleConfigError":
        return "no_feasible", text
    if name == "HuggingFaceDownloadError":
        return "unknown_model", text
    if isinstance(exc, ValueError) and "No database found" in text:
        return "unknown_system", text
    return "failed", f"{name}: {text}"


def handle(request: dict) -> dict:
    try:
        import aiconfigurator  # noqa: F401
    except ImportError as exc:
        return {"ok": False, "kind": "not_installed", "message": str(exc), "choices": []}
    found = _aic_version()
    expected = request.get("expect_version")
    if expected and found != expected:
        return {"ok": False, "kind": "version_skew", "message": f"aiconfigurator {found} found", "choices": [expected]}
    op = OPS.get(request.get("op", ""))
    if op is None:
        return {"ok": False, "kind": "bad_input", "message": f"no operation {request.get('op')!r}", "choices": []}
    started = time.monotonic()
    try:
        result = op(request.get("args") or {})
    except Refusal as exc:
        return {"ok": False, "kind": exc.kind, "message": str(exc), "choices": exc.choices}
    except Exception as exc:  # noqa: BLE001 - every failure goes back as data; the runner codes it
        kind, message = _classify(exc)
        return {"ok": False, "kind": kind, "message": message, "choices": []}
    return {"ok": True, "result": result, "seconds": round(time.monotonic() - started, 3), "aiconfigurator": found}


def main() -> None:
    answer_fd = os.dup(1)
    os.dup2(2, 1)  # whatever AIConfigurator prints (Python or C level) goes to stderr, never into the answer
    sys.stdout = sys.stderr
    request = json.loads(sys.stdin.read() or "{}")
    answer = handle(request)
    with os.fdopen(answer_fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(answer, allow_nan=False) + "\n")


if __name__ == "__main__":
    main()
