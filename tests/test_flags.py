"""Every command line any example compiles to is accepted by Dynamo 1.6.1's own argument parsers."""

from __future__ import annotations

import pytest
from command_lines import plan_worker_args
from conftest import VALID_EXAMPLES
from dynamo_parsers import DYNAMO_AVAILABLE, ArgvRejected, parse_frontend, parse_mocker, parse_trtllm

from dyncc.api import with_engine
from dyncc.compiler import compile_spec
from dyncc.deployment import load_spec
from dyncc.targets.local import frontend_command, worker_command
from dyncc.targets.local.settings import LocalSettings
from dyncc.targets.ports import bootstrap_port

pytestmark = pytest.mark.skipif(not DYNAMO_AVAILABLE, reason="Dynamo 1.6.1 is installed by scripts/setup.sh")


def _args_after_module(command: list, module: str) -> list[str]:
    return [str(w) for w in command[command.index(module) + 1 :]]


@pytest.mark.parametrize("example", VALID_EXAMPLES, ids=lambda p: p.name)
def test_frontend_and_worker_flags_parse(example):
    plan = compile_spec(load_spec(example)).plan
    frontend = parse_frontend(_args_after_module(frontend_command(plan, LocalSettings()), "dynamo.frontend"))
    assert frontend.router_mode == plan.frontend.router_mode
    for pool, _worker in plan.workers:
        argv = plan_worker_args(plan, pool, model=plan.model_path)
        config = parse_trtllm(argv)
        # Dynamo's enum keeps the 0.x spelling internally (AGGREGATED = "prefill_and_decode").
        expected = {"agg": "AGGREGATED"}.get(pool.disaggregation_mode, pool.disaggregation_mode.upper())
        assert config.disaggregation_mode.name == expected
        assert config.publish_kv_events == pool.publish_kv_events
        assert config.kv_block_size == pool.engine_config["kv_cache_config"]["tokens_per_block"]


def test_local_worker_command_is_the_plan_command():
    plan = compile_spec(load_spec(VALID_EXAMPLES[0])).plan
    pool, worker = plan.workers[0]
    command = worker_command(plan, LocalSettings(), pool, worker)
    assert _args_after_module(command, "dynamo.trtllm")[:4] == [
        "--model",  # 1.0 renamed --model-path (kept as a deprecated alias)
        plan.model_path,
        "--served-model-name",
        plan.served_name,
    ]


def test_parsers_reject_what_dynamo_1_6_removed():
    # The check can fail: flags Dynamo 1.6 dropped are refused by the same parsers.
    with pytest.raises(ArgvRejected):
        parse_trtllm(["--model-path", "m", "--migration-limit", "3"])
    with pytest.raises(ArgvRejected):
        parse_trtllm(["--model-path", "m", "--disaggregation-mode", "prefill_and_decode"])
    with pytest.raises(ArgvRejected):
        parse_frontend(["--router-mode", "kv", "--no-such-flag"])


@pytest.mark.parametrize("example", VALID_EXAMPLES, ids=lambda p: p.name)
def test_mocker_flags_parse_and_keep_the_topology(example):
    plan = with_engine(compile_spec(load_spec(example)), "mocker").plan
    for pool, worker in plan.workers:
        args = parse_mocker(plan_worker_args(plan, pool, bootstrap=bootstrap_port(plan, worker, 8081, 8000)))
        assert args.model_name == plan.served_name
        assert args.block_size == pool.engine_config["kv_cache_config"]["tokens_per_block"]
        assert args.disaggregation_mode == pool.disaggregation_mode
        expected_dp = pool.engine_config["tensor_parallel_size"] if pool.engine_config["enable_attention_dp"] else 1
        assert (args.dp_size or 1) == expected_dp  # unset means 1
