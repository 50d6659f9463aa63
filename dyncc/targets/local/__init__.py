"""Local target: one node, one bash launch script, one TensorRT-LLM engine YAML per pool.

With ``local.engine: mocker`` (or ``--engine mocker``) the topology stays identical — frontend flags,
router, discovery, ports, disaggregation modes, replicas, DP size — and only each worker runs
Dynamo's mock engine instead of TensorRT-LLM, so a deployment can be started on a machine without
GPUs. The mock loads a tiny offline model dir shipped with dyncc unless the spec's model is a local
checkpoint directory.

The script does what Dynamo 1.6.1's own ``examples/backends/trtllm/launch/*.sh`` do — frontend plus
``python3 -m dynamo.trtllm`` workers, file-based discovery, one ``CUDA_VISIBLE_DEVICES`` and one
``DYN_SYSTEM_PORT`` per worker — and adds what they lack: readiness by polling instead of sleeping,
a log per process, and stopping everything (non-zero) when any process dies.
"""

from __future__ import annotations

import functools
import shlex
from importlib import resources

import jinja2

from dyncc.compiler.plan import DYNAMO_VERSION, DeploymentPlan, PoolPlan, WorkerPlan
from dyncc.diagnostics import Diagnostic, DiagnosticError

NAME = "local"
MULTI_NODE = False
TINY_MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json")
MOCKER_MODES = {"agg", "prefill", "decode"}  # Dynamo's mocker has no encode mode


class Raw(str):
    """A shell word the template writes unquoted because it must expand (``"$HERE/..."``)."""


def quote(word: object) -> str:
    return str(word) if isinstance(word, Raw) else shlex.quote(str(word))


def shell_words(words: list) -> str:
    return " ".join(quote(w) for w in words)


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: resources.files(__name__).joinpath("templates", name).read_text("utf-8")),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["q"] = quote
    return env


def http_url(plan: DeploymentPlan) -> str:
    host = {"0.0.0.0": "127.0.0.1", "::1": "[::1]"}.get(plan.local.http_host, plan.local.http_host)
    return f"http://{host}:{plan.local.http_port}"


def frontend_command(plan: DeploymentPlan) -> list:
    return [Raw('"$PYTHON"'), "-m", "dynamo.frontend", "--http-host", plan.local.http_host,
            "--http-port", str(plan.local.http_port), *plan.frontend.flags]


def worker_command(plan: DeploymentPlan, pool: PoolPlan, worker: WorkerPlan) -> list:
    devices = ",".join(str(gpu) for gpu in worker.placement.gpus_on(0))
    env = [f"CUDA_VISIBLE_DEVICES={devices}", f"DYN_SYSTEM_PORT={worker.system_port}",
           *(f"{k}={v}" for k, v in pool.env)]
    if plan.local.engine == "mocker":
        return ["env", *env, Raw('"$PYTHON"'), "-m", "dynamo.mocker", *mocker_args(plan, pool, worker)]
    engine_path = Raw(f'"$HERE/engine/{pool.engine_file}"')
    return ["env", *env, Raw('"$PYTHON"'), "-m", "dynamo.trtllm",
            *pool.worker_args(plan.model_path, plan.served_name, engine_path)]


def mocker_args(plan: DeploymentPlan, pool: PoolPlan, worker: WorkerPlan) -> list:
    """The mock engine's flags for what the TensorRT-LLM worker would have been."""
    engine = pool.engine_config
    model = plan.model_local_dir or Raw('"$HERE/model"')
    component = "prefill" if pool.role == "prefill" else "backend"
    args = ["--model-path", model, "--model-name", plan.served_name,
            "--endpoint", f"dyn://{plan.namespace}.{component}.generate",
            "--block-size", str(engine["kv_cache_config"]["tokens_per_block"]),
            "--disaggregation-mode", pool.disaggregation_mode,
            "--speedup-ratio", repr(float(plan.local.mocker_speedup_ratio))]
    if pool.role == "prefill":
        args += ["--bootstrap-ports", str(bootstrap_port(plan, worker))]
    if engine.get("enable_attention_dp"):
        args += ["--data-parallel-size", str(engine["tensor_parallel_size"])]
    for key, flag in (("max_batch_size", "--max-num-seqs"), ("max_num_tokens", "--max-num-batched-tokens"),
                      ("max_seq_len", "--max-model-len")):
        if engine.get(key) is not None:
            args += [flag, str(engine[key])]
    return args


def bootstrap_port(plan: DeploymentPlan, worker: WorkerPlan) -> int:
    # The mock's prefill->decode handoff listens here: just past the last worker's system port.
    last_system_port = max(w.system_port for _, w in plan.workers)
    return last_system_port + 1 + worker.system_port - plan.local.system_port_base


def _check_mockable(plan: DeploymentPlan) -> None:
    unmockable = [p.role for p in plan.pools if p.disaggregation_mode not in MOCKER_MODES]
    if unmockable:
        raise DiagnosticError([Diagnostic(
            "DYN503", f"Dynamo's mock engine has no {', '.join(unmockable)} mode", path=("local", "engine"),
            hint="build this spec with the trtllm engine, or drop the pool for a mock run")])


def render(plan: DeploymentPlan) -> dict[str, str]:
    mocker = plan.local.engine == "mocker"
    if mocker:
        _check_mockable(plan)
    workers = plan.workers
    launch = _environment().get_template("launch.sh.j2").render(
        plan=plan,
        workers=workers,
        engine_label="mock-engine" if mocker else "TensorRT-LLM",
        dynamo_version=DYNAMO_VERSION,
        http_url=http_url(plan),
        # The mock tokenizes with a local model dir: nothing may be fetched from a hub.
        extra_env=[("HF_HUB_OFFLINE", "1")] if mocker else [],
        frontend_cmd=shell_words(frontend_command(plan)),
        worker_cmds={w.name: shell_words(worker_command(plan, p, w)) for p, w in workers},
    )
    here = resources.files(__name__)
    files = {"launch.sh": launch, "ready.py": here.joinpath("templates", "ready.py").read_text("utf-8")}
    for pool in plan.pools:
        files[f"engine/{pool.engine_file}"] = pool.engine_yaml
    if mocker and plan.model_local_dir is None:
        for name in TINY_MODEL_FILES:
            files[f"model/{name}"] = here.joinpath("tiny_model", name).read_text("utf-8")
    return files
