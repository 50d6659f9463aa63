#!/usr/bin/env python3
"""dyncc's GPU memory verdicts (DYN140) against AIConfigurator's on a grid of configurations.

Each configuration is a dyncc spec (one aggregated pool: model, GPU, TP with EP = TP for MoE models or
attention DP, and a token budget: max_batch_size, max_seq_len = ISL + OSL, max_num_tokens 8192 as
AIConfigurator's TensorRT-LLM backend assumes). dyncc's verdict is its memory rule's (does one GPU of the
worker fit?); AIConfigurator's is what ``dyncc estimate`` gets from it for the same spec: an estimate, or
its "OOM: the model does not fit" refusal. Runs serially (each AIConfigurator call takes a few seconds of
one core) and writes benchmarks/memory_agreement.md and .json.

    python3 benchmarks/memory_agreement.py [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dyncc.compiler.graph import build_graph  # noqa: E402
from dyncc.compiler.rules.memory import pool_budgets  # noqa: E402
from dyncc.deployment import load_spec  # noqa: E402
from dyncc.diagnostics import DiagnosticError  # noqa: E402
from dyncc.facts.memory import gib  # noqa: E402
from dyncc.tools.sla import estimate  # noqa: E402

MOE = {
    "deepseek-ai/DeepSeek-R1",
    "Qwen/Qwen3-235B-A22B-FP8",
    "openai/gpt-oss-120b",
    "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "Qwen/Qwen3-30B-A3B",
}
MODELS = [
    "deepseek-ai/DeepSeek-R1",  # FP8 MoE, MLA
    "Qwen/Qwen3-235B-A22B-FP8",  # FP8 MoE, GQA
    "openai/gpt-oss-120b",  # MXFP4 experts, sliding-window layers
    "meta-llama/Llama-4-Scout-17B-16E-Instruct",  # BF16 MoE
    "nvidia/Llama-3.1-70B-Instruct-FP8",  # FP8 dense
    "Qwen/Qwen3-32B",  # BF16 dense
    "Qwen/Qwen3-30B-A3B",  # BF16 small MoE
]
GPUS = ["H100", "H200", "B200"]
TPS = [1, 2, 4, 8]
# (max_batch_size, ISL, OSL): a short chat budget, a long-context one, and a large batch of long requests.
BUDGETS = [(16, 1024, 1024), (64, 4096, 1024), (256, 8192, 2048)]
EXTRA = [  # other GPUs and attention DP
    ("deepseek-ai/DeepSeek-R1", "GB200", 4, True, (32, 4096, 1024)),
    ("deepseek-ai/DeepSeek-R1", "GB200", 8, True, (64, 4096, 1024)),
    ("deepseek-ai/DeepSeek-R1", "H200", 8, True, (64, 4096, 1024)),
    ("deepseek-ai/DeepSeek-R1", "B200", 8, True, (128, 8192, 2048)),
    ("Qwen/Qwen3-32B", "L40S", 1, False, (16, 1024, 1024)),
    ("Qwen/Qwen3-32B", "L40S", 2, False, (16, 1024, 1024)),
    ("Qwen/Qwen3-30B-A3B", "L40S", 1, False, (16, 1024, 1024)),
    ("Qwen/Qwen3-30B-A3B", "L40S", 2, False, (64, 4096, 1024)),
    ("openai/gpt-oss-120b", "L40S", 2, False, (16, 1024, 1024)),
    ("openai/gpt-oss-120b", "L40S", 4, False, (16, 1024, 1024)),
]


def grid() -> list[tuple[str, str, int, bool, tuple[int, int, int]]]:
    configs = []
    i = 0
    for model in MODELS:
        for gpu in GPUS:
            for tp in TPS:
                configs.append((model, gpu, tp, False, BUDGETS[i % len(BUDGETS)]))
                i += 1
    return configs + EXTRA


def spec_for(model: str, gpu: str, tp: int, adp: bool, budget: tuple[int, int, int]) -> dict:
    batch, isl, osl = budget
    pool: dict = {"tensor_parallel": tp}
    if model in MOE and tp > 1:
        pool.update(expert_parallel=tp, moe_tensor_parallel=1)
    if adp:
        pool["attention_dp"] = True
    pool["engine"] = {"max_batch_size": batch, "max_num_tokens": 8192, "max_seq_len": isl + osl}
    return {
        "apiVersion": "dyncc/v1",
        "name": "grid",
        "model": {"path": model, "moe": model in MOE},
        "cluster": {"gpu_type": gpu, "gpus_per_node": max(8, tp), "nodes": 1},
        "benchmark": {"isl": isl, "osl": osl},
        "pools": {"agg": pool},
    }


def dyncc_verdict(path: Path) -> dict:
    graph = build_graph(load_spec(path))
    gpu, b = pool_budgets(graph)["agg"]
    return {
        "fits": b.fits,
        # The whole token budget: no DYN140, and the KV cache holds max_batch_size requests of max_seq_len
        # (no DYN141 for a capped batch).
        "budget_fits": b.fits and b.sequences >= b.batch,
        "tight": b.tight,
        "weights_gib": round(b.weights / 2**30, 1),
        "before_kv_gib": round(b.before_kv / 2**30, 1),
        "kv_gib": round(b.kv_cache / 2**30, 1),
        "capacity_gib": round(b.capacity / 2**30, 1),
        "batch_kv_gib": round(b.sequence_bytes * b.batch / 2**30, 1),
        "summary": f"{gib(b.before_kv)} before KV of {gib(b.capacity)}; KV cache {gib(b.kv_cache)}, "
        f"{b.sequences} x {b.sequence_tokens} tokens",
    }


def aic_verdict(path: Path) -> dict:
    try:
        result = estimate(path, timeout=300)
    except DiagnosticError as exc:
        message = exc.diagnostics[0].message
        if "OOM:" in message:
            return {"fits": False, "message": message[:200]}
        return {"fits": None, "message": f"{exc.diagnostics[0].code}: {message[:200]}"}
    warning = next((n for n in result.notes if "exceeds estimated KV cache" in n), None)
    return {"fits": True, "kv_warning": warning is not None, "tpot_ms": round(result.tpot, 3)}


def reason(row: dict) -> str:
    """Why the two disagree on the whole token budget, from the numbers."""
    d, a = row["dyncc"], row["aic"]
    if d["budget_fits"] and not aic_budget_fits(row):
        return f"dyncc's estimate is below AIConfigurator's near the limit ({d['summary']})"
    if d["fits"] and not a["fits"]:
        if d["before_kv_gib"] + d["batch_kv_gib"] >= d["capacity_gib"]:
            return (
                f"AIConfigurator counts the KV cache of the whole batch ({d['batch_kv_gib']} GiB for max_batch_size "
                f"requests of max_seq_len) as needed memory; TensorRT-LLM allocates what is free and caps the batch, "
                f"so dyncc lets the worker start and warns (DYN141: {d['summary']})"
            )
        return f"the working-set or weight estimates differ near the limit ({d['summary']})"
    return f"dyncc's estimate is above AIConfigurator's near the limit ({d['summary']})"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--rescore", action="store_true", help="recompute dyncc's verdicts over the saved results")
    args = parser.parse_args()
    if args.rescore:
        return rescore()
    configs = grid()[: args.limit]
    rows = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for i, (model, gpu, tp, adp, budget) in enumerate(configs):
            path = Path(tmp) / f"grid-{i}.yaml"
            path.write_text(yaml.safe_dump(spec_for(model, gpu, tp, adp, budget), sort_keys=False))
            row = {
                "model": model,
                "gpu": gpu,
                "tp": tp,
                "ep": tp if model in MOE and tp > 1 else 1,
                "attention_dp": adp,
                "max_batch_size": budget[0],
                "isl": budget[1],
                "osl": budget[2],
                "dyncc": dyncc_verdict(path),
                "aic": aic_verdict(path),
            }
            rows.append(row)
            print(
                f"{i + 1}/{len(configs)} {model} {gpu} TP{tp}: dyncc {row['dyncc']['fits']}, AIC {row['aic']['fits']}",
                flush=True,
            )
    seconds = time.monotonic() - started
    for r in rows:
        r["grid_seconds"] = round(seconds)
    write_results(rows, seconds)
    return 0


def aic_budget_fits(row: dict) -> bool | None:
    """AIConfigurator's verdict on the whole token budget: no OOM and no KV cache warning."""
    aic = row["aic"]
    return None if aic["fits"] is None else bool(aic["fits"] and not aic.get("kv_warning"))


def write_results(rows: list[dict], seconds: float) -> tuple[int, int]:
    compared = [r for r in rows if r["aic"]["fits"] is not None]
    same = [r for r in compared if aic_budget_fits(r) == r["dyncc"]["budget_fits"]]
    for r in compared:
        r.pop("reason", None)
        if r not in same:
            r["reason"] = reason(r)
    out = ROOT / "benchmarks"
    (out / "memory_agreement.json").write_text(json.dumps(rows, indent=1) + "\n")
    (out / "memory_agreement.md").write_text(render(rows, compared, same, seconds))
    print(f"{len(same)}/{len(compared)} agree; {len(rows) - len(compared)} without an AIConfigurator verdict")
    return len(same), len(compared)


def rescore() -> int:
    """dyncc's side again (no AIConfigurator run) over the committed results, after a change to dyncc."""
    rows = json.loads((ROOT / "benchmarks" / "memory_agreement.json").read_text())
    seconds = float(rows[0].get("grid_seconds", 0)) if rows else 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i, r in enumerate(rows):
            path = Path(tmp) / f"grid-{i}.yaml"
            budget = (r["max_batch_size"], r["isl"], r["osl"])
            path.write_text(yaml.safe_dump(spec_for(r["model"], r["gpu"], r["tp"], r["attention_dp"], budget)))
            r["dyncc"] = dyncc_verdict(path)
    write_results(rows, seconds)
    return 0


def render(rows: list[dict], compared: list[dict], same: list[dict], seconds: float) -> str:
    share = 100.0 * len(same) / len(compared) if compared else 0.0
    start_same = [r for r in compared if r["aic"]["fits"] == r["dyncc"]["fits"]]
    lines = [
        "# GPU memory: dyncc's verdicts against AIConfigurator's",
        "",
        "Generated by `python3 benchmarks/memory_agreement.py` (AIConfigurator 0.12.0 through `dyncc estimate`, "
        "its TensorRT-LLM 1.3.0rc20 data; one configuration after another"
        + (f", {seconds:.0f} s" if seconds else "")
        + "). `--rescore` recomputes dyncc's side over the saved AIConfigurator verdicts.",
        "",
        f"**Whole token budget: {len(same)} of {len(compared)} configurations agree ({share:.1f}%).** "
        "Fits means the worker starts and its KV cache holds max_batch_size requests of max_seq_len tokens: "
        "for dyncc, neither DYN140 nor DYN141's capped batch; for AIConfigurator, `cli_estimate` neither "
        "raises its OOM error nor warns that the batch exceeds its KV cache capacity.",
        "",
        f"**Start-up only: {len(start_same)} of {len(compared)} agree.** dyncc refuses (DYN140) only what "
        "cannot start or cannot hold one max_seq_len request, and warns (DYN141) when the KV cache caps the "
        "batch; AIConfigurator's OOM error already counts the KV cache of the whole batch as needed. The "
        "configurations where that is the only difference are listed under start-up differences.",
        "",
        f"{len(rows) - len(compared)} configurations got no verdict from AIConfigurator (listed below).",
        "",
        "## Disagreements on the whole token budget",
        "",
    ]
    differing = [r for r in compared if r not in same]
    lines += [_line(r, "budget_fits", aic_budget_fits(r)) for r in differing] or ["None."]
    start = [r for r in compared if r not in start_same]
    lines += ["", "## Start-up differences (DYN140 against AIConfigurator's OOM error)", ""]
    lines += [_line(r, "fits", r["aic"]["fits"]) for r in start] or ["None."]
    missing = [r for r in rows if r["aic"]["fits"] is None]
    if missing:
        lines += ["", "## No AIConfigurator verdict", ""]
        lines += [f"- {r['model']} on {r['gpu']} TP{r['tp']}: {r['aic']['message']}" for r in missing]
    lines += [
        "",
        "## All configurations",
        "",
        "| model | GPU | TP | EP | attn DP | batch | ISL+OSL | dyncc | before KV / GPU (GiB) | KV cache (GiB) | AIConfigurator |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        d, a = r["dyncc"], r["aic"]
        aic = (
            "—"
            if a["fits"] is None
            else ("fits" + (" (KV warning)" if a.get("kv_warning") else "") if a["fits"] else "OOM")
        )
        ours = "DYN140" if not d["fits"] else ("fits" if d["budget_fits"] else "fits (DYN141: batch capped)")
        lines.append(
            f"| {r['model']} | {r['gpu']} | {r['tp']} | {r['ep']} | {'yes' if r['attention_dp'] else ''} | "
            f"{r['max_batch_size']} | {r['isl']}+{r['osl']} | {ours} | {d['before_kv_gib']} / {d['capacity_gib']} | "
            f"{d['kv_gib']} | {aic} |"
        )
    return "\n".join(lines) + "\n"


def _line(r: dict, key: str, aic: bool | None) -> str:
    return (
        f"- {r['model']} on {r['gpu']}, TP{r['tp']} EP{r['ep']}{' attention DP' if r['attention_dp'] else ''}, "
        f"batch {r['max_batch_size']}, ISL {r['isl']} + OSL {r['osl']}: dyncc "
        f"{'fits' if r['dyncc'][key] else 'does not fit'}, AIConfigurator {'fits' if aic else 'does not fit'}. "
        f"Reason: {r.get('reason') if key == 'budget_fits' else _start_reason(r)}."
    )


def _start_reason(r: dict) -> str:
    d = r["dyncc"]
    if d["fits"] and not r["aic"]["fits"] and d["before_kv_gib"] + d["batch_kv_gib"] >= d["capacity_gib"]:
        return (
            f"the whole batch's KV cache ({d['batch_kv_gib']} GiB) does not fit beside the weights, which "
            f"AIConfigurator counts as out of memory; TensorRT-LLM starts and caps the batch ({d['summary']}), "
            "so dyncc warns (DYN141)"
        )
    return f"the estimates differ near the limit ({d['summary']})"


if __name__ == "__main__":
    sys.exit(main())
