"""Every documented spec key, on every target: an effect in the output or a coded refusal, never silence;
and any valid value of any key ends in exit 0 or 1, never an internal error.

The keys are walked from the generated JSON Schema (the one editors and `dyncc schema` use), and the values
drawn from it with hypothesis-jsonschema, so a key added to the spec is covered without touching this file.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from dyncc.api import check, render_targets
from dyncc.compiler import compile_spec
from dyncc.deployment import load_spec_text
from dyncc.diagnostics import DiagnosticError

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "dyncc" / "spec" / "dyncc-v1.schema.json").read_text())
TARGETS = ("local", "slurm", "compose", "k8s")
BASE: dict[str, Any] = {
    "apiVersion": "dyncc/v1",
    "name": "every-key",
    "model": {"path": "Qwen/Qwen3-0.6B", "moe": False},
    "pools": {"prefill": {}, "decode": {}},
    "router": {"mode": "kv"},
}
# One pool stands for all: pools.agg/decode/encode are the same Pool model as pools.prefill (and so are
# the k8s per-pool settings), so walking one finds every key without building each four times.
ONE_OF_MANY = {("pools",): "prefill", ("k8s", "pools"): "prefill"}
# Values the schema cannot say: keys of maps whose names follow Kubernetes' or Linux's rules, objects with
# a one-of rule. Matched on the key's last name (or its whole dotted path).
SAMPLES: dict[str, Any] = {
    "env": {"MY_SETTING": "1"},
    "annotations": {"example.com/team": "llm"},
    "labels": {"team": "llm"},
    "node_selector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
    "limits": {"memory": "64Gi"},
    "requests": {"memory": "32Gi"},
    "volumes": [{"name": "scratch", "mount_path": "/scratch", "empty_dir": True}],
    "env_from": [{"secret": "llm-settings"}],
    "patches": [{"op": "add", "path": "/podTemplate/spec/terminationGracePeriodSeconds", "value": 33}],
    "merge": {"podTemplate": {"spec": {"terminationGracePeriodSeconds": 44}}},
    "sweep": {"router.mode": ["kv", "random"]},
    "node_groups": {"h100": {"gpu_type": "H100", "gpus_per_node": 8, "nodes": 1}},
    "k8s.api_version": "v1alpha1",
    "cuda_graphs.enabled": True,  # prefill runs without CUDA graphs by default: turning them on is the change
    "engine.overlap_scheduler": True,  # likewise off for prefill by default
    "image_pull_secrets": ["registry-login"],
    "publish_kv_events": False,  # on by default under the KV router
}
# What a key needs around it to mean anything (the section it belongs to turned on).
CONTEXT: dict[str, dict[str, Any]] = {
    "planner.": {"planner": {"enabled": True, "ttft_ms": 200.0, "itl_ms": 20.0}},
    "k8s.metrics.": {"k8s": {"metrics": {"pod_monitor": True}}},
    "migration.max_seq_len": {"migration": {"limit": 2}},
    "k8s.planner_image": {"planner": {"enabled": True, "ttft_ms": 200.0, "itl_ms": 20.0}},
    "planner.load.": {"planner": {"mode": "load", "load": {
        "prefill_scale_up_queue_tokens": 4000, "prefill_scale_down_queue_tokens": 1000,
        "decode_scale_up_kv_rate": 80.0, "decode_scale_down_kv_rate": 20.0}}},
    "speculative.one_model": {"speculative": {"mode": "eagle3", "draft_model": "org/eagle3-draft"}},
    "mocker_speedup_ratio": {"worker_runtime": "mocker"},
    "compose.nats_image": {"dynamo": {"version": "0.5.1"}},
    "k8s.runtime_version": {"image": "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:my-build"},
    "slurm.container": {"image": "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.6.1"},
    "slurm.mpi": {"pools": {"prefill": {"tensor_parallel": 2}}},
    "k8s.allow_in_patches": {"k8s": {"pools": {"prefill": {"patches": [
        {"op": "add", "path": "/podTemplate/spec/hostIPC", "value": True}]}}}},
}  # fmt: skip
# Keys that are facts the checks read, not features a target realizes: changing one alone changes no file
# (it changes what is checked). Each names what reads it. A key that appears here without being silent,
# or is silent without being here, fails the test.
FACTS = {
    "model.moe": "the MoE checks (DYN103, DYN107, DYN123)",
    "model.num_experts": "the expert-parallel check (DYN107)",
    "model.mtp_layers": "the MTP check (DYN105)",
    "model.attention_heads": "the TP-divides-heads check (DYN124)",
    "cluster.gpus_per_node": "placement and its checks (DYN403-DYN405); one worker of one GPU fits any node "
    "(Slurm writes it as the GPUs each node gives the job)",
    "cluster.nodes": "placement and its checks (DYN403, DYN409); this deployment fits one node",
    "cluster.pool_nodes": "placement (DYN409); one node's workers are placed alike either way",
    "cluster.node_groups": "placement per GPU type; k8s and Slurm select nodes by it, one machine has no choice",
    "cluster.gpu_type": "k8s ComputeDomain for GB200/GB300 only, and estimate's GPU; H100-like types change no file",
    "dynamo.trtllm": "DYN705: it must be the release's pinned TensorRT-LLM, so the only valid value is the default",
    "mocker_timing": "the mock engine's timing: worker_runtime mocker only (DYN910 refuses it otherwise)",
    "image": "the container of every target but local, which runs processes on this machine",
    "namespace": "the local, Slurm and compose --namespace; on k8s the operator derives it (documented)",
    "on_worker_exit": "k8s and compose restart workers themselves (restart policies); local and Slurm write it",
    "sweep": "`dyncc sweep` expands it; `build` builds the spec as written",
    "model.facts": "the memory-fit check (its numbers appear in diagnostics and `explain`, not in files)",
}


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return _resolve(SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[-1]])
    options = [o for o in node.get("anyOf", []) if o.get("type") != "null"]
    if len(options) == 1:
        merged = {k: v for k, v in node.items() if k != "anyOf"}
        return {**_resolve(options[0]), **merged}
    return node


def _leaves(node: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    node = _resolve(node)
    properties = node.get("properties")
    if not properties or path in ONE_OF_MANY:
        if path in ONE_OF_MANY:
            key = ONE_OF_MANY[path]
            yield from _leaves(properties[key] if properties else node["additionalProperties"], path + (key,))
            return
        yield path, node
        return
    for key, child in properties.items():
        if key in ("apiVersion", "name"):
            continue
        yield from _leaves(child, path + (key,))


LEAVES = dict(_leaves(SCHEMA))
QUIET = settings(
    database=None, derandomize=True, max_examples=300, suppress_health_check=list(HealthCheck), deadline=None
)


def _inlined(node: Any) -> Any:
    """``node`` with every $ref replaced by its definition (the spec's schema has no cycles): handing
    hypothesis-jsonschema a self-contained schema spares it canonicalising all of $defs for every key."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inlined(SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[-1]])
        return {k: _inlined(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_inlined(v) for v in node]
    return node


@functools.cache
def _strategy_for(schema_json: str) -> st.SearchStrategy[Any]:
    return from_schema(_inlined(json.loads(schema_json)))


def _strategy(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    return _strategy_for(json.dumps(schema, sort_keys=True))


def _schema_at(path: tuple[str, ...]) -> dict[str, Any]:
    node: dict[str, Any] = SCHEMA
    for part in path:
        node = _resolve(node)
        node = node["properties"][part] if part in node.get("properties", {}) else node["additionalProperties"]
    return _resolve(node)


def _minimal(path: tuple[str, ...]) -> dict[str, Any]:
    """The smallest valid object at ``path``: its required keys only, each at its simplest value."""
    schema = _schema_at(path)
    return {key: _simplest(path + (key,)) for key in schema.get("required", [])}


@functools.cache
def _simplest(path: tuple[str, ...]) -> Any:
    schema = _schema_at(path)
    if schema.get("properties"):
        return _minimal(path)
    return find(_strategy(schema), lambda v: v is not None, settings=QUIET)


@functools.cache
def _changed_value(path: tuple[str, ...]) -> Any:
    dotted = ".".join(path)
    for key in (dotted, ".".join(path[-2:]), path[-1]):
        if key in SAMPLES:
            return SAMPLES[key]
    return _simplest_other(path)


# Plain candidates tried before asking hypothesis (whose search for a string matching a pattern takes ~1 s).
_CANDIDATE_STRINGS = (
    "llm", "x1", "/models/x", "1.2.3", "H100", "example.com/llm:1.0", "8Gi", "30m", "16G", "01:00:00",
    "/images/llm.sqsh",
)  # fmt: skip


def _candidates(schema: dict[str, Any], before: Any) -> list[Any]:
    schema = _resolve(schema)
    kind = schema.get("type")
    if "enum" in schema:
        return list(schema["enum"])
    if kind == "boolean":
        return [not before] if isinstance(before, bool) else [True, False]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        start = before if isinstance(before, (int, float)) and not isinstance(before, bool) else low
        values = [start + 1, start * 2, low + 1, schema.get("maximum", start + 1), low]
        return [int(v) if kind == "integer" else float(v) for v in values]
    if kind == "string":
        return list(_CANDIDATE_STRINGS)
    if kind == "array" and isinstance(schema.get("items"), dict):
        return [[item] for item in _candidates(schema["items"], None)]
    return []


def _simplest_other(path: tuple[str, ...]) -> Any:
    """A valid value other than the one the base spec has there (its default when it has none)."""
    schema = LEAVES[path]
    present, now = _lookup(_context(".".join(path)), path)
    before = now if present else schema.get("default")
    validator = jsonschema.Draft202012Validator(_inlined(schema))
    for value in _candidates(schema, before):
        if value != before and validator.is_valid(value):
            return value
    return find(_strategy(schema), lambda v: v != before and v is not None and v != [] and v != {}, settings=QUIET)


def _lookup(spec: dict[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    node: Any = spec
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _with(spec: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(spec)
    node = out
    for i, part in enumerate(path[:-1]):
        if part not in node:
            node[part] = _minimal(path[: i + 1])
        node = node[part]
    node[path[-1]] = value
    return out


def _build(spec: dict[str, Any], target: str) -> tuple[dict[str, Any] | None, list[Any]]:
    """(the target's files, or None when refused; the diagnostics)."""
    text = yaml.safe_dump(spec, sort_keys=False)
    try:
        compilation = compile_spec(load_spec_text(text, "spec.yaml", ROOT))
        rendered, notes = render_targets(compilation, [target])
    except DiagnosticError as exc:
        return None, exc.diagnostics
    return rendered[target], list(compilation.diagnostics) + notes


@functools.cache
def _built(spec_json: str, target: str) -> dict[str, Any] | None:
    return _build(json.loads(spec_json), target)[0]


def _concerns(diagnostic: Any, path: tuple[str, ...]) -> bool:
    theirs = tuple(str(p) for p in diagnostic.path)
    return theirs[: len(path)] == path or path[: len(theirs)] == theirs


def _outcome(dotted: str, target: str) -> str:
    path = tuple(dotted.split("."))
    value = _changed_value(path)
    base = _context(dotted)
    before = _built(json.dumps(base, sort_keys=True), target)
    files, diagnostics = _build(_with(base, path, value), target)
    if files is None:
        errors = [d for d in diagnostics if d.is_error]
        shape = [d.code for d in errors if d.code in ("DYN010", "DYN011", "DYN012", "DYN013", "DYN014")]
        assert not shape, f"{dotted}={value!r}: the test built an invalid spec: {errors}"
        return "refused"
    if files != before:
        return "effect"
    if any(_concerns(d, path) for d in diagnostics if d.severity in ("warning", "error")):
        return "warned"
    return "silent"


def _merged(into: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(into)
    for key, value in extra.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _context(dotted: str) -> dict[str, Any]:
    spec = BASE
    for prefix, extra in CONTEXT.items():
        if dotted.startswith(prefix):
            spec = _merged(spec, extra)
    return spec


def _own_section(dotted: str, target: str) -> bool:
    """A target's own section (``k8s.*``) is that target's alone; the others never read it."""
    section = dotted.split(".", 1)[0]
    return section not in TARGETS or section == target


CASES = [(".".join(p), t) for p in LEAVES for t in TARGETS if _own_section(".".join(p), t)]


@pytest.mark.parametrize(("dotted", "target"), CASES, ids=[f"{t}:{k}" for k, t in CASES])
def test_every_key_has_an_effect_or_a_coded_refusal_on_every_target(dotted, target):
    outcome = _outcome(dotted, target)
    if dotted in FACTS or any(dotted.startswith(f + ".") for f in FACTS):
        assert outcome in ("silent", "refused", "effect", "warned")  # a fact: what reads it is named in FACTS
    else:
        assert outcome != "silent", f"{dotted} changes nothing on {target} and nothing says so"


def test_the_facts_list_holds_only_keys_that_exist():
    keys = {".".join(p) for p in LEAVES}
    assert all(f in keys or any(k.startswith(f + ".") for k in keys) for f in FACTS)


def test_the_walk_finds_the_spec():
    # It can fail: the keys a reader would look for are there, and per-pool keys are walked once.
    assert {"pools.prefill.replicas", "router.mode", "k8s.image_pull_policy", "model.chat_template"} <= {
        ".".join(p) for p in LEAVES
    }
    assert not any(p[:2] == ("pools", "decode") for p in LEAVES)


# Keys are set together with their siblings (the keys of one object): few builds, and each object's keys
# meet each other's values.
GROUPS = sorted({".".join(p[:-1]) or p[0] for p in LEAVES})


def _in_group(path: tuple[str, ...], group: str) -> bool:
    return (".".join(path[:-1]) or path[0]) == group


@pytest.mark.parametrize("group", GROUPS)
def test_every_key_set_to_any_valid_value_ends_in_exit_0_or_1(group):
    """Each key of an object at once, each drawn from its own schema: the spec loads, checks and renders on
    every target, or ends in coded diagnostics (exit 1) — never another exception (exit 3)."""
    paths = [p for p in LEAVES if _in_group(p, group)]
    values = st.fixed_dictionaries({p: _strategy(LEAVES[p]) for p in paths})

    @settings(QUIET, max_examples=3)
    @given(values)
    def run(drawn: dict[tuple[str, ...], Any]) -> None:
        spec = _context(".".join(paths[0]))
        for path, value in drawn.items():
            spec = _with(spec, path, value)
        try:
            loaded = load_spec_text(yaml.safe_dump(spec, sort_keys=False), "spec.yaml", ROOT)
            check(loaded)  # rules, placement and every target's checks and renders
            render_targets(compile_spec(loaded), ["all"])
        except DiagnosticError as exc:
            assert exc.diagnostics and all(d.code.startswith("DYN") for d in exc.diagnostics)

    run()
