"""The issue's "must show" list, on the shipped examples, through the CLI (in process: `cli`)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from conftest import (
    EXAMPLES,
    INVALID_EXAMPLES,
    REFERENCE,
    SINGLE_NODE_EXAMPLES,
    VALID_EXAMPLES,
    assert_no_traceback,
    cli,
    expected_failure,
)
from ruamel.yaml import YAML


def test_there_are_examples_for_every_documented_topology():
    names = {p.name for p in VALID_EXAMPLES}
    assert {
        "agg.yaml",
        "agg_router.yaml",
        "disagg.yaml",
        "disagg_router.yaml",
        "deepseek_r1_mtp_disagg.yaml",
        "llama4_eagle.yaml",
        "wide_ep.yaml",
    } <= names


def test_every_example_validates():
    proc = cli("validate", "--format", "json", *VALID_EXAMPLES)
    report = json.loads(proc.stdout)
    failures = {
        f["file"]: [d for d in f["diagnostics"] if d["severity"] == "error"] for f in report["files"] if not f["valid"]
    }
    assert proc.returncode == 0 and report["valid"], failures


@pytest.mark.parametrize("example", SINGLE_NODE_EXAMPLES, ids=lambda p: p.name)
def test_single_node_example_builds_for_local(example, tmp_out):
    proc = cli("build", example, "-t", "local", "-o", tmp_out)
    assert proc.returncode == 0, proc.stderr
    local = tmp_out / "local"
    assert (local / "launch.sh").stat().st_mode & 0o111
    assert sorted(p.name for p in (local / "engine").iterdir())


def test_multi_node_spec_for_local_is_a_coded_error_naming_capable_targets(tmp_out):
    proc = cli("build", EXAMPLES / "wide_ep.yaml", "-t", "local", "-o", tmp_out)
    assert proc.returncode == 1
    assert_no_traceback(proc)
    assert "error DYN501" in proc.stderr and "6 nodes" in proc.stderr
    assert "-t k8s" in proc.stderr  # names the targets that can run it
    assert not tmp_out.exists(), "a refused build must write nothing"


@pytest.mark.parametrize("example", INVALID_EXAMPLES, ids=lambda p: p.name)
def test_invalid_example_fails_with_its_code_at_its_line(example, tmp_out):
    from dyncc.codes import lookup

    code, line, target = expected_failure(example)
    warning = lookup(code).severity == "warning"
    if target and not warning:
        proc = cli("build", example, "-t", target, "-o", tmp_out)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert_no_traceback(proc)
        assert f"{example.relative_to(EXAMPLES.parent)}:{line}:" in proc.stderr and f"error {code}" in proc.stderr, (
            proc.stderr
        )
        return
    proc = cli("validate", "--format", "json", example, *(("-t", target) if target else ()))
    assert_no_traceback(proc)
    if warning:  # a warning example: valid (exit 0), and warned about at its line (for its target, if it names one)
        warnings = [d for d in json.loads(proc.stdout)["files"][0]["diagnostics"] if d["severity"] == "warning"]
        assert proc.returncode == 0 and (code, line) in {(d["code"], d["line"]) for d in warnings}, proc.stdout
        return
    assert proc.returncode == 1, proc.stdout
    errors = [d for d in json.loads(proc.stdout)["files"][0]["diagnostics"] if d["severity"] == "error"]
    assert {d["code"] for d in errors} == {code}, errors
    assert line in {d["line"] for d in errors}, errors
    assert all(d["column"] >= 1 and d["path"] and d["hint"] is not None or d["code"] == "DYN001" for d in errors)


def test_every_rule_code_has_an_invalid_example():
    from dyncc.compiler import RULES

    covered = {expected_failure(p)[0] for p in INVALID_EXAMPLES}
    warnings_only = {
        "DYN104",
        "DYN109",
        "DYN142",
        "DYN206",
        "DYN704",
    }  # they never fail a spec; tests/test_rules.py covers them
    assert {r.code for r in RULES} - warnings_only <= covered


@pytest.mark.parametrize("example", SINGLE_NODE_EXAMPLES, ids=lambda p: p.name)
def test_build_is_byte_identical_twice(example, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert cli("build", example, "-o", first).returncode == 0
    assert cli("build", example, "-o", second).returncode == 0
    files_a = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert files_a == files_b and files_a
    for rel in files_a:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


@pytest.fixture(scope="module")
def built_local(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    for example in SINGLE_NODE_EXAMPLES:
        proc = cli("build", example, "-t", "local", "-o", out / example.stem)
        assert proc.returncode == 0, proc.stderr
    return out


def test_generated_scripts_pass_bash_n(built_local):
    scripts = sorted(built_local.rglob("launch.sh"))
    assert len(scripts) == len(SINGLE_NODE_EXAMPLES)
    for script in scripts:
        proc = subprocess.run(["bash", "-n", script], capture_output=True, text=True)
        assert proc.returncode == 0, (script, proc.stderr)


def test_generated_scripts_pass_shellcheck(built_local):
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is installed by scripts/setup.sh"
    scripts = sorted(built_local.rglob("launch.sh"))
    proc = subprocess.run([shellcheck, "-S", "warning", *scripts], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def _bundled_keys() -> dict:
    """The key sets dyncc ships (dyncc/engines/trtllm/data), which its own rules check engine values against."""
    from dyncc.engines.trtllm.keys import accepted_keys

    data = accepted_keys()
    return {
        "top": data["top"],
        "nested": data["nested"],
        "speculative": data["speculative_config"],
        "enums": data["enums"],
    }


TRTLLM_KEYS = "trtllm-1.3.0rc2x-llm-args-keys.json"


def _reference_keys() -> dict:
    """TRT-LLM's accepted keys from the shared reference: an independent copy of the facts."""
    raw = json.loads((REFERENCE / TRTLLM_KEYS).read_text())
    nested = dict(raw["nested"])
    return {"top": raw["top"], "nested": nested, "speculative": nested.pop("speculative_config"), "enums": raw["enums"]}


def _unaccepted(config: dict, keys: dict) -> list[str]:
    bad = [k for k in config if k not in keys["top"]]
    for section, value in config.items():
        if not isinstance(value, dict):
            continue
        if section == "speculative_config":
            allowed = keys["speculative"][value["decoding_type"]]
        elif section == "cuda_graph_config":
            allowed = keys["nested"]["cuda_graph_config"]
        else:
            allowed = keys["nested"].get(section)
        bad += [f"{section}.{k}" for k in value if allowed is not None and k not in allowed]
        for key, sub in value.items():
            enum = keys["enums"].get(f"{section}.{key}")
            if enum is not None and sub not in enum:
                bad.append(f"{section}.{key}={sub}")
            nested = keys["nested"].get(f"{section}.{key}")
            if isinstance(sub, dict) and nested is not None:
                bad += [f"{section}.{key}.{k}" for k in sub if k not in nested]
    return bad


def _engine_configs(built_local) -> list:
    configs = sorted(built_local.rglob("engine/*.yaml"))
    assert len(configs) >= len(SINGLE_NODE_EXAMPLES)
    return configs


def test_engine_yamls_hold_only_keys_dyncc_knows_trtllm_accepts(built_local):
    keys = _bundled_keys()
    for path in _engine_configs(built_local):
        assert _unaccepted(YAML(typ="safe").load(path.read_text()), keys) == [], path


@pytest.mark.reference(TRTLLM_KEYS)
def test_engine_yamls_hold_only_keys_the_reference_says_trtllm_accepts(built_local):
    keys = _reference_keys()
    for path in _engine_configs(built_local):
        assert _unaccepted(YAML(typ="safe").load(path.read_text()), keys) == [], path
