"""Local target: one node, one bash launch script, one TensorRT-LLM engine YAML per pool.

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

NAME = "local"
MULTI_NODE = False


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
    engine_path = Raw(f'"$HERE/engine/{pool.engine_file}"')
    return ["env", *env, Raw('"$PYTHON"'), "-m", "dynamo.trtllm",
            *pool.worker_args(plan.model_path, plan.served_name, engine_path)]


def render(plan: DeploymentPlan) -> dict[str, str]:
    workers = plan.workers
    launch = _environment().get_template("launch.sh.j2").render(
        plan=plan,
        workers=workers,
        engine_label="TensorRT-LLM",
        dynamo_version=DYNAMO_VERSION,
        http_url=http_url(plan),
        extra_env=[],
        frontend_cmd=shell_words(frontend_command(plan)),
        worker_cmds={w.name: shell_words(worker_command(plan, p, w)) for p, w in workers},
    )
    files = {"launch.sh": launch, "ready.py": resources.files(__name__).joinpath("templates", "ready.py").read_text("utf-8")}
    for pool in plan.pools:
        files[f"engine/{pool.engine_file}"] = pool.engine_yaml
    return files
