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

from dyncc.compiler.plan import DeploymentPlan, PoolPlan, WorkerPlan
from dyncc.targets.bench import bench_script
from dyncc.targets.mocker import check_mockable, mocker_args, tiny_model_files
from dyncc.targets.shell import Raw, ready_probe_text, shell_words, template_environment

NAME = "local"
MULTI_NODE = False


def http_url(plan: DeploymentPlan) -> str:
    host = {"0.0.0.0": "127.0.0.1", "::1": "[::1]"}.get(plan.local.http_host, plan.local.http_host)
    return f"http://{host}:{plan.local.http_port}"


def frontend_command(plan: DeploymentPlan) -> list:
    return [
        Raw('"$PYTHON"'),
        "-m",
        "dynamo.frontend",
        "--http-host",
        plan.local.http_host,
        "--http-port",
        str(plan.local.http_port),
        *plan.frontend.flags,
    ]


def worker_command(plan: DeploymentPlan, pool: PoolPlan, worker: WorkerPlan) -> list:
    devices = ",".join(str(gpu) for gpu in worker.placement.gpus_on(0))
    env = [
        f"CUDA_VISIBLE_DEVICES={devices}",
        f"DYN_SYSTEM_PORT={worker.system_port}",
        *(f"{k}={v}" for k, v in (*plan.profile.worker_env, *pool.env)),
    ]
    if plan.local.engine == "mocker":
        model = plan.model_local_dir or Raw('"$HERE/model"')
        return [
            "env",
            *env,
            Raw('"$PYTHON"'),
            "-m",
            "dynamo.mocker",
            *mocker_args(plan, pool, worker, model, plan.local.mocker_speedup_ratio),
        ]
    engine_path = Raw(f'"$HERE/engine/{pool.engine_file}"')
    return [
        "env",
        *env,
        Raw('"$PYTHON"'),
        "-m",
        "dynamo.trtllm",
        *pool.worker_args(plan.model_path, plan.served_name, engine_path),
    ]


def render(plan: DeploymentPlan) -> dict[str, str]:
    mocker = plan.local.engine == "mocker"
    if mocker:
        check_mockable(plan, ("local", "engine"))
    workers = plan.workers
    launch = (
        template_environment(__name__)
        .get_template("launch.sh.j2")
        .render(
            plan=plan,
            workers=workers,
            engine_label="mock-engine" if mocker else "TensorRT-LLM",
            dynamo_version=plan.dynamo_version,
            http_url=http_url(plan),
            # The mock tokenizes with a local model dir: nothing may be fetched from a hub.
            extra_env=[("HF_HUB_OFFLINE", "1")] if mocker else [],
            frontend_cmd=shell_words(frontend_command(plan)),
            worker_cmds={w.name: shell_words(worker_command(plan, p, w)) for p, w in workers},
        )
    )
    files = {"launch.sh": launch, "ready.py": ready_probe_text()}
    for pool in plan.pools:
        files[f"engine/{pool.engine_file}"] = pool.engine_yaml
    if plan.benchmark is not None:
        tokenizer = plan.model_local_dir or (Raw('"$HERE/model"') if mocker else plan.model_path)
        files["bench.sh"] = bench_script(plan, tokenizer, "$HERE/run/bench")
    if mocker and plan.model_local_dir is None:
        files.update({f"model/{name}": text for name, text in tiny_model_files().items()})
    return files
