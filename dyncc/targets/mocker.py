"""Dynamo's mock engine standing in for a TensorRT-LLM worker, for targets that can run it.

The topology stays the plan's: same served name, block size, disaggregation mode, batch limits and
attention-DP size; only the process is ``python3 -m dynamo.mocker`` instead of ``dynamo.trtllm``.
"""

from __future__ import annotations

import itertools
from importlib import resources

from dyncc.compiler.plan import DeploymentPlan, PoolPlan, WorkerPlan
from dyncc.diagnostics import Diagnostic
from dyncc.targets.release_flags import command_problems, has_flag
from dyncc.targets.shell import Raw

MOCKER_MODES = {"agg", "prefill", "decode"}  # Dynamo's mocker has no encode mode
TINY_MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json")


def mock_modes(plan: DeploymentPlan) -> set[str]:
    """The pool roles the release's mock engine can stand in for: its `--disaggregation-mode` choices, or
    aggregated serving alone where it has no such flag."""
    release = plan.profile.release
    choices = release.choices("mocker", "--disaggregation-mode") if release is not None else ()
    return (MOCKER_MODES & set(choices)) if choices else {"agg"}


def mock_problems(plan: DeploymentPlan, target: str = "mock") -> list[Diagnostic]:
    """DYN503 when the plan runs the mock engine and the version's mock lacks a pool's mode; DYN514 when
    its parser lacks a flag the mock's command line needs."""
    if plan.worker_runtime != "mocker":
        return []
    # One command per pool says what the release's mock parser lacks (the pool's workers differ in ports only).
    flag_problems = [
        d
        for pool in plan.pools
        for d in command_problems(plan, "mocker", mocker_args(plan, pool, pool.workers[0], "model", 1), target)
    ][:1]
    unmockable = [p.role for p in plan.pools if p.role not in mock_modes(plan)]
    if not unmockable:
        return kvbm_problems(plan) + flag_problems
    return (
        kvbm_problems(plan)
        + flag_problems
        + [
            Diagnostic(
                "DYN503",
                f"Dynamo {plan.dynamo_version}'s mock engine has no {', '.join(unmockable)} mode",
                path=("worker_runtime",),
                hint="build this spec with worker_runtime trtllm, or drop the pool for a mock run",
            )
        ]
    )


def kvbm_problems(plan: DeploymentPlan) -> list[Diagnostic]:
    """DYN582: KVBM under the mock engine, which has no KV block manager connector (nothing would run it)."""
    if plan.worker_runtime != "mocker" or not any("--connector" in p.flags for p in plan.pools):
        return []
    return [
        Diagnostic(
            "DYN582",
            f"Dynamo {plan.dynamo_version}'s mock engine has no KV block manager (KVBM) connector: "
            "kvbm.enabled would not run",
            path=("kvbm", "enabled"),
            hint="set kvbm.enabled: false for a mock run, or run the workers with worker_runtime: trtllm",
        )
    ]


def worker_revision_problems(plan: DeploymentPlan, target: str) -> list[Diagnostic]:
    """DYN563: workers that download the hub model themselves (local, compose) need the release's worker
    `--revision` to serve model.revision; without it they would serve the main branch."""
    if not plan.model_revision or plan.model_local_dir is not None or plan.worker_runtime == "mocker":
        return []
    if plan.profile.worker_revision_flag:
        return []
    return [
        Diagnostic(
            "DYN563",
            f"model.revision {plan.model_revision!r}: Dynamo {plan.dynamo_version}'s worker has no --revision, so "
            f"the {target} target's workers would download and serve the main branch instead",
            path=("model", "revision"),
            hint="download that revision yourself and give model.path as its directory, or build for -t k8s "
            "(model_cache) or -t slurm (its download step fetches the revision)",
        )
    ]


def tiny_model_files() -> dict[str, str]:
    """The offline model dir (config, tokenizer, chat template) the mock loads when the spec's model isn't local."""
    here = resources.files(__package__).joinpath("local", "tiny_model")
    return {name: here.joinpath(name).read_text("utf-8") for name in TINY_MODEL_FILES}


def bootstrap_port(plan: DeploymentPlan, worker: WorkerPlan, system_port_base: int, http_port: int) -> int:
    """The mock's prefill->decode handoff port: past the workers' system ports, skipping the HTTP port."""
    last_system_port = system_port_base + max(w.index for _, w in plan.workers)
    free = (port for port in itertools.count(last_system_port + 1) if port != http_port)
    return next(itertools.islice(free, worker.index, None))


def timing_file_name(pool: PoolPlan) -> str:
    return f"timing/{pool.role}.npz"


def timing_files(plan: DeploymentPlan) -> dict[str, bytes]:
    """The pools' mock-engine timing files (the timed twin), to be written beside the launch script."""
    return {timing_file_name(p): plan.mock_timing[p.role] for p in plan.pools if p.role in plan.mock_timing}


def mocker_args(
    plan: DeploymentPlan,
    pool: PoolPlan,
    worker: WorkerPlan,
    model_path: object,
    bootstrap: int | None = None,
    files_dir: str = "$HERE",
) -> list:
    """The mock's flags; ``bootstrap`` is the prefill->decode rendezvous port (None: no rendezvous, no listener);
    ``files_dir`` the shell variable naming the directory the target wrote :func:`timing_files` to."""
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
        repr(float(plan.mocker_speedup_ratio)),
    ]
    disaggregating = plan.profile.mocker_disaggregation
    if disaggregating:
        args += ["--disaggregation-mode", pool.role]
        if pool.role == "prefill" and bootstrap is not None:
            args += ["--bootstrap-ports", str(bootstrap)]
    if "--request-plane" in pool.flags:  # frontend and workers must agree on it; the mock takes the same flag
        at = pool.flags.index("--request-plane")
        args += list(pool.flags[at : at + 2])
    if engine.get("enable_attention_dp"):
        args += ["--data-parallel-size", str(engine["tensor_parallel_size"])]
    if pool.role in plan.mock_timing:  # step times from the file instead of the mock's own arbitrary ones
        args += ["--planner-profile-data", Raw(f'"{files_dir}/{timing_file_name(pool)}"')]
    for key, flag in (
        ("max_batch_size", "--max-num-seqs"),
        ("max_num_tokens", "--max-num-batched-tokens"),
        ("max_seq_len", "--max-model-len"),
    ):
        # --max-model-len came with the 1.4 mock engine; without it the mock bounds nothing by length.
        if engine.get(key) is not None and has_flag(plan, "mocker", flag):
            args += [flag, str(engine[key])]
    return args
