"""Dynamo's mock engine standing in for a TensorRT-LLM worker, for targets that can run it.

The topology stays the plan's: same served name, block size, disaggregation mode, batch limits and
attention-DP size; only the process is ``python3 -m dynamo.mocker`` instead of ``dynamo.trtllm``.
"""

from __future__ import annotations

import itertools
from importlib import resources

from dyncc.compiler.plan import DeploymentPlan, PoolPlan, WorkerPlan
from dyncc.diagnostics import Diagnostic, DiagnosticError

MOCKER_MODES = {"agg", "prefill", "decode"}  # Dynamo's mocker has no encode mode
TINY_MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json")


def check_mockable(plan: DeploymentPlan, setting: tuple) -> None:
    modes = MOCKER_MODES if plan.profile.mocker_disaggregation else {plan.profile.agg_mode}
    unmockable = [p.role for p in plan.pools if p.disaggregation_mode not in modes]
    if unmockable:
        raise DiagnosticError(
            [
                Diagnostic(
                    "DYN503",
                    f"Dynamo {plan.dynamo_version}'s mock engine has no {', '.join(unmockable)} mode",
                    path=setting,
                    hint="build this spec with the trtllm engine, or drop the pool for a mock run",
                )
            ]
        )


def tiny_model_files() -> dict[str, str]:
    """The offline model dir (config, tokenizer, chat template) the mock loads when the spec's model isn't local."""
    here = resources.files(__package__).joinpath("local", "tiny_model")
    return {name: here.joinpath(name).read_text("utf-8") for name in TINY_MODEL_FILES}


def bootstrap_port(plan: DeploymentPlan, worker: WorkerPlan) -> int:
    """The mock's prefill->decode handoff port: past the workers' system ports, skipping the HTTP ports."""
    last_system_port = max(w.system_port for _, w in plan.workers)
    taken = {plan.local.http_port, plan.slurm.http_port}
    free = (port for port in itertools.count(last_system_port + 1) if port not in taken)
    return next(itertools.islice(free, worker.system_port - plan.local.system_port_base, None))


def mocker_args(
    plan: DeploymentPlan, pool: PoolPlan, worker: WorkerPlan, model_path, speedup_ratio: float, bootstrap: bool = True
) -> list:
    """The mock's flags; ``bootstrap=False`` leaves out the prefill->decode rendezvous port (and its listener)."""
    engine = pool.engine_config
    component = "prefill" if pool.role == "prefill" else "backend"
    args = [
        "--model-path",
        model_path,
        "--model-name",
        plan.served_name,
        "--endpoint",
        f"dyn://{plan.namespace}.{component}.generate",
        "--block-size",
        str(engine["kv_cache_config"]["tokens_per_block"]),
        "--speedup-ratio",
        repr(float(speedup_ratio)),
    ]
    disaggregating = plan.profile.mocker_disaggregation
    if disaggregating:
        args += ["--disaggregation-mode", pool.disaggregation_mode]
        if pool.role == "prefill" and bootstrap:
            args += ["--bootstrap-ports", str(bootstrap_port(plan, worker))]
    if engine.get("enable_attention_dp"):
        args += ["--data-parallel-size", str(engine["tensor_parallel_size"])]
    for key, flag in (
        ("max_batch_size", "--max-num-seqs"),
        ("max_num_tokens", "--max-num-batched-tokens"),
        ("max_seq_len", "--max-model-len"),
    ):
        if engine.get(key) is not None and (disaggregating or flag != "--max-model-len"):
            args += [flag, str(engine[key])]
    return args
