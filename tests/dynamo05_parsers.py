"""Run by ai-dynamo 0.5.1's Python (a venv scripts/setup.sh makes): parse command lines with 0.5.1's own
argument parsers. Reads [{"kind": "frontend"|"trtllm", "argv": [...]}, ...] as JSON on stdin and prints
[{"ok": bool, "error": str, "disaggregation_mode": ..., ...}] as JSON.

0.5.1's trtllm parser imports TensorRT-LLM only for BuildConfig defaults (a stand-in provides them) and
two enums from a module that also imports torch: those two class definitions are taken from 0.5.1's own
source file, so every value the parser checks is 0.5.1's."""

import ast
import contextlib
import importlib.util
import io
import json
import os
import sys
import types


class BuildConfig:  # TensorRT-LLM defaults for the fields 0.5.1's parser reads
    max_batch_size = 2048
    max_num_tokens = 8192
    max_seq_len = None
    max_beam_width = 1


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dynamo_parsers import install_tensorrt_llm_standin  # noqa: E402  (the same stand-in as for 1.6.1)

install_tensorrt_llm_standin(BuildConfig)


def _enums_from_source(module: str, names: set[str]) -> types.ModuleType:
    spec = importlib.util.find_spec("dynamo.trtllm")
    path = spec.submodule_search_locations[0] + "/request_handlers/handler_base.py"
    tree = ast.parse(open(path).read())
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name in names]
    stub = types.ModuleType(module)
    exec(
        compile(ast.Module([ast.parse("from enum import Enum").body[0], *classes], type_ignores=[]), path, "exec"),
        stub.__dict__,
    )
    return stub


sys.modules["dynamo.trtllm.request_handlers.handler_base"] = _enums_from_source(
    "dynamo.trtllm.request_handlers.handler_base", {"DisaggregationMode", "DisaggregationStrategy"}
)


def parse(kind, argv):
    if kind == "frontend":
        from dynamo.frontend.main import parse_args
    else:
        from dynamo.trtllm.utils.trtllm_utils import cmd_line_args as parse_args
    sys.argv = [kind, *argv]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            config = parse_args()
    except SystemExit:
        return {"ok": False, "error": err.getvalue().strip()[-400:]}
    out = {"ok": True, "error": ""}
    for field in (
        "disaggregation_mode",
        "disaggregation_strategy",
        "publish_events_and_metrics",
        "migration_limit",
        "router_mode",
        "kv_block_size",
        "max_batch_size",  # what 0.5.1 puts into build_config, which TRT-LLM 1.1.0rc5 copies over the YAML's
        "max_num_tokens",
        "max_seq_len",
        "tool_call_parser",
        "reasoning_parser",
        "router_reset_states",
    ):
        value = getattr(config, field, None)
        out[field] = getattr(value, "value", value) if value is not None else None
    return out


print(json.dumps([parse(item["kind"], item["argv"]) for item in json.load(sys.stdin)]))
